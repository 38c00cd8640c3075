// Access control with real processes: the safe first start (an admin key made once, only its
// hash kept), keys added, rotated and revoked with the operator's CLI reaching a running service
// without a restart, the AUTH=off warning on loopback, the rate limit per key, a bad keys file
// stopping the start, and the examples loader sending CM_API_KEY.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { client, type Reply } from './support/http.js';
import { ROOT, freePort, killAllServices, makeDataDir, removeDataDir, runUntilExit, serviceEnv, spawnService, startService } from './support/service-process.js';

const dirs: string[] = [];
afterEach(killAllServices);
afterAll(() => dirs.forEach(removeDataDir));

const SECRET = /cm_[A-Za-z0-9_-]{43}/g;
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function dataDir(): string {
  const d = makeDataDir('cm-e2e-security-');
  dirs.push(d);
  return d;
}

/** The distinct secrets a process printed. */
const secretsIn = (text: string) => [...new Set(text.match(SECRET) ?? [])];

type Run = { code: number | null; stdout: string; stderr: string };

/** A command from the repository root, as an operator types it, with only the variables given. */
function run(command: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Run> {
  const { PATH, HOME } = process.env;
  const child = spawn(command, args, { cwd: ROOT, env: { PATH: PATH ?? '', HOME: HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((ok) => child.once('close', (code) => {
    clearTimeout(timer);
    ok({ code, stdout, stderr });
  }));
}

const keys = (args: string[], env: Record<string, string>) => run('pnpm', ['keys', ...args], env);

/** The one secret `keys add` or `keys rotate` printed. */
function secretOf(r: Run): string {
  expect(r.code, r.stderr).toBe(0);
  const found = secretsIn(r.stdout);
  expect(found, r.stdout).toHaveLength(1);
  return found[0]!;
}

/** Polls `probe` until it answers `status`; fails after `withinMs`. Answers the last reply and the time taken. */
async function until(status: number, probe: () => Promise<Reply>, withinMs: number): Promise<{ reply: Reply; ms: number }> {
  const started = Date.now();
  for (;;) {
    const reply = await probe();
    const ms = Date.now() - started;
    if (reply.status === status) return { reply, ms };
    if (ms > withinMs) throw new Error(`still ${reply.status} (not ${status}) after ${ms} ms: ${JSON.stringify(reply.body)}`);
    await sleep(100);
  }
}

const agreement = (id: string, commitmentParty: string) => ({
  id,
  title: `Agreement ${id}`,
  kind: 'agreement',
  sector: 'health',
  parties: ['VEN', 'RUS'],
  signedAt: '2025-11-28',
  commitments: [{ id: 'c-1', title: 'Open the joint laboratory', dueDate: '2099-06-30', responsible: { party: commitmentParty, institution: 'Ministry of Health' } }],
});

// The key ring re-reads the file at most once per second; "within ~2 s" with room for a loaded machine.
const PICKUP_MS = 3_000;

describe('the safe first start', () => {
  it('prints a new admin secret once, keeps only its hash, and asks every request for it', async () => {
    const dir = dataDir();
    const first = await startService({ dataDir: dir, env: { AUTH: 'on' } });
    const printed = secretsIn(first.stderr());
    expect(printed, first.stderr()).toHaveLength(1);
    const secret = printed[0]!;
    expect(first.stderr().split(secret)).toHaveLength(2); // printed exactly once
    // A plain banner on stderr, never inside the JSON log lines on stdout.
    expect(first.stdout()).not.toContain(secret);
    expect(first.stderr()).toContain('pnpm keys add --name <name> --role admin');

    const file = join(dir, 'api-keys.json');
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(secret);
    expect(text).not.toContain(secret.slice(3));
    expect(text).toContain(sha256(secret));
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const api = client(first.url);
    expect((await api.get('/v1/agreements', bearer(secret))).status).toBe(200);
    const none = await api.get('/v1/agreements');
    expect(none.status).toBe(401);
    expect(none.contentType).toMatch(/^application\/problem\+json/);
    expect(none.body).toMatchObject({ status: 401, code: 'credentials_required' });
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
    const wrong = await api.get('/v1/agreements', bearer(`cm_${'A'.repeat(43)}`));
    expect(wrong.status).toBe(401);
    expect(wrong.contentType).toMatch(/^application\/problem\+json/);
    expect(wrong.body).toMatchObject({ status: 401, code: 'invalid_credentials' });
    expect(wrong.headers.get('www-authenticate')).toContain('error="invalid_token"');
    // Probes stay open to load balancers.
    expect((await api.get('/health')).status).toBe(200);
    await first.stop();

    const again = await startService({ dataDir: dir, env: { AUTH: 'on' } });
    expect(again.stdout() + again.stderr()).not.toMatch(/cm_/);
    expect(again.stderr()).not.toContain('First start');
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect((await client(again.url).get('/v1/agreements', bearer(secret))).status).toBe(200);
    await again.stop();
  }, 90_000);
});

describe('a first start that fails', () => {
  it('creates no key and prints no secret; the next start that listens does', async () => {
    const dir = dataDir();
    // Somebody already listens on the port: the start fails with EADDRINUSE.
    const taken = createServer();
    await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
    const port = (taken.address() as AddressInfo).port;
    const child = spawnService(serviceEnv({ PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dir, AUTH: 'on', LOG_LEVEL: 'warn' }));
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d));
    child.stderr!.on('data', (d: Buffer) => (output += d));
    const code = await new Promise<number | null>((ok) => child.once('exit', ok));
    await new Promise((ok) => taken.close(ok));
    expect(code, output).not.toBe(0);
    expect(output).toContain('EADDRINUSE');
    expect(secretsIn(output), output).toHaveLength(0);
    expect(existsSync(join(dir, 'api-keys.json'))).toBe(false);

    const next = await startService({ dataDir: dir, env: { AUTH: 'on' } });
    const [secret] = secretsIn(next.stderr());
    expect(secret, next.stderr()).toBeDefined();
    expect((await client(next.url).get('/v1/agreements', bearer(secret!))).status).toBe(200);
    await next.stop();
  }, 90_000);
});

describe('keys from the CLI reach a running service without a restart', () => {
  it('an editor commands within its parties and is the actor; a viewer may not; rotation and revocation take effect', async () => {
    const dir = dataDir();
    const svc = await startService({ dataDir: dir, env: { AUTH: 'on' } });
    const admin = secretsIn(svc.stderr())[0]!;
    const api = client(svc.url);
    const cli = { DATA_DIR: dir };

    // An editor for VEN.
    const editor = secretOf(await keys(['add', '--name', 'mfa-ven', '--role', 'editor', '--parties', 'VEN'], cli));
    const created = await until(201, () => api.post('/v1/agreements', agreement('oil-protocol', 'VEN'), bearer(editor)), PICKUP_MS);
    expect(created.reply.body).toMatchObject({ id: 'oil-protocol', parties: ['VEN', 'RUS'] });
    const history = await api.get('/v1/agreements/oil-protocol/history', bearer(admin));
    expect(history.status).toBe(200);
    const actors = (history.body as { events: { actor: string }[] }).events.map((e) => e.actor);
    expect(actors.length).toBeGreaterThan(0);
    expect(new Set(actors)).toEqual(new Set(['mfa-ven']));
    // Not a commitment of another party, and not the audit trail.
    const outside = await api.post('/v1/agreements', agreement('rus-only', 'RUS'), bearer(editor));
    expect(outside.status).toBe(403);
    expect(outside.contentType).toMatch(/^application\/problem\+json/);
    expect((await api.get('/v1/agreements/oil-protocol/history', bearer(editor))).status).toBe(403);

    // A viewer reads and may not command.
    const viewer = secretOf(await keys(['add', '--name', 'press-office', '--role', 'viewer'], cli));
    await until(200, () => api.get('/v1/agreements/oil-protocol', bearer(viewer)), PICKUP_MS);
    const refused = await api.post('/v1/agreements', agreement('by-viewer', 'VEN'), bearer(viewer));
    expect(refused.status).toBe(403);
    expect(refused.contentType).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ status: 403, code: 'role_not_allowed' });

    // Rotation as the help describes it: a second secret, both work, then the old id is revoked.
    const rotated = secretOf(await keys(['rotate', 'mfa-ven'], cli));
    await until(200, () => api.get('/v1/agreements', bearer(rotated)), PICKUP_MS);
    expect((await api.get('/v1/agreements', bearer(editor))).status).toBe(200);
    expect((await keys(['revoke', sha256(editor).slice(0, 12)], cli)).code).toBe(0);
    await until(401, () => api.get('/v1/agreements', bearer(editor)), PICKUP_MS);
    expect((await api.get('/v1/agreements', bearer(rotated))).status).toBe(200);

    // Revoking the name ends every secret of it; the other keys are untouched.
    const revoked = await keys(['revoke', 'mfa-ven'], cli);
    expect(revoked.code, revoked.stderr).toBe(0);
    const gone = await until(401, () => api.get('/v1/agreements', bearer(rotated)), PICKUP_MS);
    expect(gone.reply.body).toMatchObject({ status: 401, code: 'invalid_credentials' });
    expect((await api.get('/v1/agreements', bearer(viewer))).status).toBe(200);
    expect((await api.get('/v1/agreements', bearer(admin))).status).toBe(200);
  }, 180_000);
});

describe('AUTH=off', () => {
  it('starts on loopback and warns at every start that every caller is anonymous', async () => {
    const dir = dataDir();
    for (let start = 1; start <= 2; start++) {
      const svc = await startService({ dataDir: dir, env: { AUTH: 'off', HOST: '127.0.0.1', LOG_LEVEL: 'warn' } });
      const warnings = svc.stdout().split('\n').filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string })
        .filter((l) => l.level === 40 && l.msg.includes('AUTH=off'));
      expect(warnings, `start ${start}, stdout:\n${svc.stdout()}`).toHaveLength(1);
      expect((await client(svc.url).get('/v1/agreements')).status).toBe(200);
      await svc.stop();
    }
    // No key was made, so no secret was printed.
    expect(existsSync(join(dir, 'api-keys.json'))).toBe(false);
  }, 90_000);
  // AUTH=off with HOST=0.0.0.0 is refused at start: tests/e2e/config.e2e.spec.ts.
});

describe('the rate limit', () => {
  it('answers the 6th request of one key in the window with 429 and Retry-After, while another key is served', async () => {
    const dir = dataDir();
    const busy = 'cm_busy-tool-secret-0000000000000000000000000000';
    const quiet = 'cm_quiet-tool-secret-000000000000000000000000000';
    const file = join(dir, 'keys.json');
    writeFileSync(file, JSON.stringify({ keys: [
      { name: 'busy-tool', role: 'viewer', sha256: sha256(busy) },
      { name: 'quiet-tool', role: 'viewer', sha256: sha256(quiet) },
    ] }), { mode: 0o600 });
    const svc = await startService({ dataDir: dir, env: { AUTH: 'on', API_KEYS_FILE: file, RATE_LIMIT: '5/1m' } });
    const api = client(svc.url);

    for (let i = 1; i <= 5; i++) expect((await api.get('/v1/agreements', bearer(busy))).status, `request ${i}`).toBe(200);
    const sixth = await api.get('/v1/agreements', bearer(busy));
    expect(sixth.status).toBe(429);
    expect(sixth.contentType).toMatch(/^application\/problem\+json/);
    expect(sixth.body).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(Number(sixth.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await api.get('/v1/agreements', bearer(quiet))).status).toBe(200);
    // Probes are not counted against anyone.
    expect((await api.get('/ready')).status).toBe(200);
  }, 60_000);
});

describe('a bad keys file', () => {
  // [what, file contents]
  const cases: [string, string][] = [
    ['invalid JSON', '{"keys": [ {"name": "x",'],
    ['an editor without parties', JSON.stringify({ keys: [{ name: 'x', role: 'editor', sha256: sha256('x') }] })],
  ];
  it.concurrent.each(cases)('(%s) stops the start with exit 78 and one line naming the file', async (_what, contents) => {
    const dir = dataDir();
    const file = join(dir, 'keys.json');
    writeFileSync(file, contents);
    const result = await runUntilExit({ HOST: '127.0.0.1', PORT: String(await freePort()), DATA_DIR: dir, LOG_LEVEL: 'warn', AUTH: 'on', API_KEYS_FILE: file });
    expect(result.signal).toBeNull();
    expect(result.code).toBe(78);
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines, `stderr was:\n${result.stderr}`).toHaveLength(1);
    expect(lines[0]).toContain(file);
    // Refused before any store was opened.
    expect(existsSync(join(dir, 'events.sqlite'))).toBe(false);
  }, 60_000);
});

describe('the examples loader', () => {
  it('says to set CM_API_KEY when refused, and loads the dataset with it as the key\'s actor', async () => {
    const dir = dataDir();
    const svc = await startService({ dataDir: dir, env: { AUTH: 'on' } });
    const admin = secretsIn(svc.stderr())[0]!;
    // No URL given: the loader finds the service from PORT, as the service itself reads it.
    const load = (env: Record<string, string>) => run(join(ROOT, 'node_modules/.bin/tsx'), ['examples/load.ts'], { PORT: String(svc.port), ...env }, 120_000);

    const refused = await load({});
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain('401');
    expect(refused.stderr).toContain('set CM_API_KEY to an editor or admin key');

    const loaded = await load({ CM_API_KEY: admin });
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.stdout).toContain('agreements: 42 created, 0 skipped');
    const api = client(svc.url);
    const list = await api.get('/v1/agreements?limit=1', bearer(admin));
    expect(list.body).toMatchObject({ total: 42 });
    const id = (list.body as { items: { id: string }[] }).items[0]!.id;
    const history = await api.get(`/v1/agreements/${id}/history`, bearer(admin));
    expect(new Set((history.body as { events: { actor: string }[] }).events.map((e) => e.actor))).toEqual(new Set(['admin']));
  }, 180_000);
});
