// The keys file on a real disk: only hashes at rest, the first start, live reloads.
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiKeysError, createKeyRing, ensureApiKeysFile, hashSecret, readApiKeysFile, writeApiKeysFile } from './api-keys.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'cm-keys-'));
  dirs.push(d);
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('the first start', () => {
  it('creates an admin key once, keeping only its hash, readable by the owner only', () => {
    const path = join(tempDir(), 'data', 'api-keys.json');
    const created = ensureApiKeysFile(path);
    expect(created?.name).toBe('admin');
    expect(created!.secret).toMatch(/^cm_[A-Za-z0-9_-]{43}$/);
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain(created!.secret);
    expect(readApiKeysFile(path).keys).toEqual([expect.objectContaining({ name: 'admin', role: 'admin', sha256: hashSecret(created!.secret) })]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(ensureApiKeysFile(path)).toBeNull();
    expect(readFileSync(path, 'utf8')).toBe(text);
  });
});

describe('reading a keys file', () => {
  it.each([
    ['{not json', /not valid JSON/],
    ['{"keys":[{"name":"a","role":"owner","sha256":"' + 'a'.repeat(64) + '"}]}', /keys\.0\.role/],
    ['{"keys":[{"name":"mfa","role":"editor","sha256":"' + 'a'.repeat(64) + '"}]}', /keys\.0\.parties an editor key needs at least one party/],
    ['{"keys":[{"name":"mfa","role":"viewer","sha256":"secret-in-clear"}]}', /keys\.0\.sha256 must be the lowercase hex SHA-256/],
    ['{"keys":[{"name":"a","role":"viewer","sha256":"' + 'b'.repeat(64) + '"},{"name":"b","role":"viewer","sha256":"' + 'b'.repeat(64) + '"}]}', /listed twice/],
  ])('refuses %s with one line naming the file and the field', (content, message) => {
    const path = join(tempDir(), 'keys.json');
    writeFileSync(path, content);
    expect(() => readApiKeysFile(path)).toThrow(ApiKeysError);
    expect(() => readApiKeysFile(path)).toThrow(message);
    expect(() => readApiKeysFile(path)).toThrow(path);
  });

  it('says how to create a missing file', () => {
    expect(() => readApiKeysFile(join(tempDir(), 'none.json'))).toThrow(/ENOENT.*pnpm keys add/);
  });
});

describe('a key ring', () => {
  it('follows the file: a new key works and a removed one stops, without a restart; a broken edit keeps the last good keys', async () => {
    const path = join(tempDir(), 'keys.json');
    writeApiKeysFile(path, { keys: [{ name: 'mfa-ven', role: 'editor', parties: ['VEN'], sha256: hashSecret('cm_first') }] });
    const errors: string[] = [];
    const ring = createKeyRing(path, { recheckMs: 0, onError: (e) => errors.push(e.message) });
    expect(ring.lookup('cm_first')).toEqual({ name: 'mfa-ven', role: 'editor', parties: ['VEN'] });
    expect(ring.lookup('cm_second')).toBeNull();

    writeApiKeysFile(path, { keys: [{ name: 'audit', role: 'auditor', parties: [], sha256: hashSecret('cm_second') }] });
    expect(ring.lookup('cm_second')?.name).toBe('audit');
    expect(ring.lookup('cm_first')).toBeNull();

    writeFileSync(path, '{"keys": [');
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    expect(ring.lookup('cm_second')?.name).toBe('audit');
    expect(ring.lookup('cm_second')?.name).toBe('audit');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/not valid JSON/);
  });

  it.each([
    ['a file the service started with', false],
    ['the file its first start wrote', true],
  ])('refuses every key once %s is deleted, says so once, and takes the keys back when it returns', (_what, missingIsEmpty) => {
    const path = join(tempDir(), 'keys.json');
    const keys = { keys: [{ name: 'ops-admin', role: 'admin' as const, parties: [], sha256: hashSecret('cm_admin_key') }] };
    if (!missingIsEmpty) writeApiKeysFile(path, keys);
    const missing: string[] = [];
    const errors: string[] = [];
    const ring = createKeyRing(path, { recheckMs: 0, missingIsEmpty, onMissing: (p) => missing.push(p), onError: (e) => errors.push(e.message) });
    if (missingIsEmpty) writeApiKeysFile(path, keys);
    expect(ring.lookup('cm_admin_key')?.name).toBe('ops-admin');

    rmSync(path);
    expect(ring.lookup('cm_admin_key')).toBeNull();
    expect(ring.lookup('cm_admin_key')).toBeNull();
    expect(ring.size).toBe(0);
    expect(missing).toEqual([path]);
    expect(errors).toEqual([]);

    writeApiKeysFile(path, keys);
    expect(ring.lookup('cm_admin_key')?.name).toBe('ops-admin');
  });
});
