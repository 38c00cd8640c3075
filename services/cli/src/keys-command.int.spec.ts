// The keys command as an operator runs it: a real process writing a real keys file in a temp
// folder, read back with the same reader the service uses.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { hashSecret, keyId, readApiKeysFile } from '@cm/platform';
import { runCli } from './testing/run-cli.js';

const dirs: string[] = [];
let dir: string;

const SECRET = /cm_[A-Za-z0-9_-]{43}/g;

const keys = (args: string[], env: Record<string, string> = { DATA_DIR: dir }) => runCli(['keys', ...args], env);

/** The one secret an add or rotate printed (it must print exactly one, exactly once). */
function secretOf(stdout: string): string {
  const found = stdout.match(SECRET) ?? [];
  expect(found, stdout).toHaveLength(1);
  return found[0]!;
}

const file = () => join(dir, 'api-keys.json');

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cm-keys-'));
  dirs.push(dir);
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

// Every case spawns the CLI (a few seconds each on a loaded machine).
describe('keys add', { timeout: 120_000 }, () => {
  it('creates the file, owner-only, with the hash of the secret it prints once and never the secret', () => {
    const r = keys(['add', '--name', 'mfa-ven', '--role', 'editor', '--parties', 'VEN,RUS']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const secret = secretOf(r.stdout);
    expect(r.stdout).toContain('Authorization: Bearer');
    // It names the file it changed, and claims nothing about a service it cannot see.
    expect(r.stdout).toContain(`a service whose keys file is ${file()} picks the change up`);
    expect(r.stdout).not.toMatch(/the running service accepts/i);

    const text = readFileSync(file(), 'utf8');
    expect(text).not.toContain(secret);
    expect(text).not.toContain(secret.slice(3));
    expect(statSync(file()).mode & 0o777).toBe(0o600);
    const stored = readApiKeysFile(file()).keys;
    expect(stored).toEqual([{ name: 'mfa-ven', role: 'editor', parties: ['VEN', 'RUS'], sha256: hashSecret(secret), createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) }]);
    expect(r.stdout).toContain(`id ${keyId(stored[0]!)}`);
    // The operator learns that the service's first-start admin key will not be made now.
    expect(r.stdout).toContain('first-start admin key');
  });

  it('appends to the file the service created, keeping its keys', () => {
    writeFileSync(file(), JSON.stringify({ keys: [{ name: 'admin', role: 'admin', parties: [], sha256: hashSecret('cm_first'), createdAt: '2026-01-01T00:00:00.000Z' }] }));
    const r = keys(['add', '--name=reader', '--role=viewer']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('first-start admin key');
    expect(readApiKeysFile(file()).keys.map((k) => [k.name, k.role])).toEqual([['admin', 'admin'], ['reader', 'viewer']]);
    expect(statSync(file()).mode & 0o777).toBe(0o600);
  });

  it('gives a viewer or auditor key parties, which limit what it reads', () => {
    expect(keys(['add', '--name', 'ven-viewer', '--role', 'viewer', '--parties', 'VEN']).code).toBe(0);
    expect(keys(['add', '--name', 'ven-auditor', '--role', 'auditor', '--parties', 'VEN,RUS']).code).toBe(0);
    expect(readApiKeysFile(file()).keys.map((k) => [k.name, k.role, k.parties])).toEqual([['ven-viewer', 'viewer', ['VEN']], ['ven-auditor', 'auditor', ['VEN', 'RUS']]]);
  });

  it('uses API_KEYS_FILE when it is set, rather than DATA_DIR', () => {
    const elsewhere = join(dir, 'etc', 'keys.json');
    const r = keys(['add', '--name', 'audit-office', '--role', 'auditor'], { DATA_DIR: join(dir, 'data'), API_KEYS_FILE: elsewhere });
    expect(r.code).toBe(0);
    expect(readApiKeysFile(elsewhere).keys.map((k) => k.name)).toEqual(['audit-office']);
    expect(() => statSync(join(dir, 'data', 'api-keys.json'))).toThrow();
  });

  // [what, arguments, the line on stderr]
  const refusals: [string, string[], RegExp][] = [
    ['an editor without parties', ['--name', 'ed', '--role', 'editor'], /^an editor key needs --parties/],
    ['a lower-case party', ['--name', 'ed', '--role', 'editor', '--parties', 'VEN,rus'], /^--parties: "rus" is not an ISO 3166-1 alpha-3 code/],
    ['a party that is no alpha-3 code', ['--name', 'ed', '--role', 'editor', '--parties', 'VENEZUELA'], /^--parties: "VENEZUELA" is not an ISO 3166-1 alpha-3 code/],
    ['an unknown role', ['--name', 'x', '--role', 'owner'], /^--role "owner" must be one of viewer, editor, auditor, admin/],
    ['a name with a space', ['--name', 'mfa ven', '--role', 'viewer'], /^--name "mfa ven" must be 1-64 letters/],
  ];
  it.each(refusals)('refuses %s with one line and exit 64, writing nothing', (_what, args, line) => {
    const r = keys(['add', ...args]);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(line);
    expect(() => statSync(file())).toThrow();
  });

  it('refuses a name already in use, pointing at rotate, and leaves the file as it was', () => {
    expect(keys(['add', '--name', 'mfa-ven', '--role', 'editor', '--parties', 'VEN']).code).toBe(0);
    const before = readFileSync(file(), 'utf8');
    const r = keys(['add', '--name', 'mfa-ven', '--role', 'admin']);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('a key named mfa-ven exists already: use keys rotate mfa-ven for a new secret, or another name\n');
    expect(readFileSync(file(), 'utf8')).toBe(before);
  });

  it('answers a malformed command line with the usage, exit 64', () => {
    const r = keys(['add', '--name', 'x', '--role', 'viewer', '--colour', 'red']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/^unknown option: --colour\nusage: cli keys add/);
    expect(keys([]).code).toBe(64);
  });
});

describe('keys list, rotate, revoke', { timeout: 120_000 }, () => {
  it('walks the rotation procedure: both secrets valid after rotate, the old id revoked, then the name', () => {
    const first = secretOf(keys(['add', '--name', 'mfa-ven', '--role', 'editor', '--parties', 'VEN']).stdout);
    expect(keys(['add', '--name', 'press', '--role', 'viewer']).code).toBe(0);
    const oldId = hashSecret(first).slice(0, 12);

    const rotated = keys(['rotate', 'mfa-ven']);
    expect(rotated.code).toBe(0);
    const second = secretOf(rotated.stdout);
    expect(second).not.toBe(first);
    // It says which id to revoke once the tool has switched over.
    expect(rotated.stdout).toContain(`keys revoke ${oldId}`);
    const afterRotate = readApiKeysFile(file()).keys;
    expect(afterRotate.filter((k) => k.name === 'mfa-ven').map((k) => [k.role, k.parties, k.sha256])).toEqual([
      ['editor', ['VEN'], hashSecret(first)],
      ['editor', ['VEN'], hashSecret(second)],
    ]);
    const text = readFileSync(file(), 'utf8');
    expect(text).not.toContain(first);
    expect(text).not.toContain(second);

    const list = keys(['list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(`3 keys in ${file()}`);
    expect(list.stdout).toMatch(new RegExp(`mfa-ven +editor +VEN +${oldId} +\\d{4}-`));
    expect(list.stdout).toMatch(new RegExp(`mfa-ven +editor +VEN +${hashSecret(second).slice(0, 12)} `));
    expect(list.stdout).toMatch(/press +viewer +- +[0-9a-f]{12} /);
    // Ids only: no secret and no full hash.
    expect(list.stdout).not.toMatch(/cm_/);
    expect(list.stdout).not.toMatch(/[0-9a-f]{13}/);

    const byId = keys(['revoke', oldId]);
    expect(byId.code).toBe(0);
    expect(byId.stdout).toContain(`revoked key "mfa-ven" id ${oldId}`);
    expect(readApiKeysFile(file()).keys.map((k) => [k.name, keyId(k)])).toEqual([
      ['press', expect.stringMatching(/^[0-9a-f]{12}$/)],
      ['mfa-ven', hashSecret(second).slice(0, 12)],
    ]);

    const byName = keys(['revoke', 'mfa-ven']);
    expect(byName.code).toBe(0);
    expect(readApiKeysFile(file()).keys.map((k) => k.name)).toEqual(['press']);
    expect(statSync(file()).mode & 0o777).toBe(0o600);
    // The last admin is gone (there was none here): the operator is told.
    expect(byName.stdout).toContain('no admin key is left');
  });

  it('rotate and revoke of an unknown key exit 1 and change nothing', () => {
    expect(keys(['add', '--name', 'press', '--role', 'viewer']).code).toBe(0);
    const before = readFileSync(file(), 'utf8');
    const revoke = keys(['revoke', 'nobody']);
    expect(revoke.code).toBe(1);
    expect(revoke.stderr).toMatch(/^no key named nobody or with id nobody in .*nothing revoked/);
    const rotate = keys(['rotate', 'nobody']);
    expect(rotate.code).toBe(1);
    expect(rotate.stdout).toBe('');
    expect(readFileSync(file(), 'utf8')).toBe(before);
  });

  it('lists an empty file, and refuses with 78 a missing or invalid one', () => {
    const none = keys(['list']);
    expect(none.code).toBe(78);
    expect(none.stderr).toBe(`no API keys file at ${file()}: set API_KEYS_FILE or DATA_DIR to the service's, or create it with keys add\n`);

    writeFileSync(file(), '{"keys": []}');
    expect(keys(['list']).stdout).toBe(`no keys in ${file()}\n`);

    writeFileSync(file(), '{"keys": [');
    const broken = keys(['add', '--name', 'x', '--role', 'viewer']);
    expect(broken.code).toBe(78);
    expect(broken.stderr).toBe(`API_KEYS_FILE ${file()} is not valid JSON\n`);
    expect(readFileSync(file(), 'utf8')).toBe('{"keys": [');
  });
});
