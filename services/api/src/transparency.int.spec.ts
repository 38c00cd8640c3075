// The log as a transparency log, through the real app on a real SQLite file: signed checkpoints
// (C2SP signed note, verified here with node:crypto alone against the served key), inclusion and
// consistency proofs that recompute the checkpoints' roots, leafIndex in histories, a cached
// checkpoint under a flood of requests, and refusals that name the field.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessOf } from './access.js';
import { agreementInput, errorPaths, expectNothingAppended, expectProblem, get, post, type Json } from './testing/api-fixtures.js';
import { bearer, createTestApp, type TestApp, type TestKey } from './testing/test-app.js';

const auditor: TestKey = { name: 'court-of-audit', role: 'auditor', secret: 'cm_all_auditor_0001' };
const viewer: TestKey = { name: 'press', role: 'viewer', secret: 'cm_all_viewer_0001' };
const admin: TestKey = { name: 'ops', role: 'admin', secret: 'cm_admin_secret_0001' };

const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
const leafOf = (eventHash: string) => sha(Buffer.from([0]), Buffer.from(eventHash, 'hex'));
const node = (l: Buffer, r: Buffer) => sha(Buffer.from([1]), l, r);
/** MTH of RFC 9162 2.1.1, written out again here so the test does not lean on the code it checks. */
const mth = (d: Buffer[]): Buffer => {
  if (d.length === 0) return sha();
  if (d.length === 1) return d[0]!;
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return node(mth(d.slice(0, k)), mth(d.slice(k)));
};
/** RFC 9162 2.1.3.2, written out again. */
function rootFromInclusion(index: number, size: number, leaf: Buffer, proof: Buffer[]): Buffer | null {
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = node(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = node(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

let t: TestApp;
const as = bearer(auditor);
beforeAll(async () => {
  t = await createTestApp({ keys: [auditor, viewer, admin], now: '2026-03-01T10:00:00.000Z', publicUrl: 'https://ledger.example.org/monitor/' });
  for (let i = 0; i < 5; i++) expect((await post(t, '/v1/agreements', agreementInput({ id: `tl-${i}` }), bearer(admin))).statusCode).toBe(201);
});
afterAll(async () => t.close());

const later = (ms: number) => t.setNow(new Date(Date.parse('2026-03-01T10:00:00.000Z') + ms).toISOString());

function parseNote(note: string) {
  const [text, sigs] = [note.slice(0, note.indexOf('\n\n') + 1), note.slice(note.indexOf('\n\n') + 2)];
  const [origin, size, root] = text.split('\n');
  return { text, origin: origin!, size: Number(size), root: Buffer.from(root!, 'base64'), lines: sigs.split('\n').filter(Boolean) };
}

async function checkpoint() {
  const r = await get(t, '/v1/log/checkpoint', as);
  expect(r.statusCode, r.body).toBe(200);
  expect(r.headers['content-type']).toMatch(/^text\/plain/);
  return { raw: r.body, ...parseNote(r.body) };
}

async function allLeaves(): Promise<Buffer[]> {
  return (await t.eventStore.readAll({ after: null, limit: 100_000 })).map((e) => leafOf(e.hash));
}

/** `<name>+<hex id>+<base64>`: split on the first two '+' only (standard base64 may hold '+'). */
function splitVerifierKey(text: string): [string, string, string] {
  const m = /^([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(text.trim());
  if (!m) throw new Error(`not a note verifier key: ${text}`);
  return [m[1]!, m[2]!, m[3]!];
}

describe('signed checkpoints', () => {
  it('serves the verifier key, public, as <name>+<hex key id>+<base64(0x01 || Ed25519 key)>', async () => {
    const r = await get(t, '/v1/log/key');
    expect(r.statusCode).toBe(200);
    const [name, id, key] = splitVerifierKey(r.body);
    expect(name).toBe('ledger.example.org/monitor');
    const raw = Buffer.from(key, 'base64');
    expect(raw.length).toBe(33);
    expect(raw[0]).toBe(1);
    expect(id).toBe(sha(Buffer.from(name), Buffer.from([0x0a, 0x01]), raw.subarray(1)).subarray(0, 4).toString('hex'));
  });

  it('is a C2SP signed note over origin, size and root, whose Ed25519 signature verifies against the served key', async () => {
    const c = await checkpoint();
    expect(c.origin).toBe('ledger.example.org/monitor');
    expect(c.size).toBe(5);
    expect(c.root.equals(mth(await allLeaves()))).toBe(true);
    expect(c.lines).toHaveLength(1);
    const m = /^\u2014 (\S+) (\S+)$/.exec(c.lines[0]!)!;
    expect(m[1]).toBe('ledger.example.org/monitor');
    const [, id, key] = splitVerifierKey((await get(t, '/v1/log/key')).body);
    const blob = Buffer.from(m[2]!, 'base64');
    expect(blob.subarray(0, 4).toString('hex')).toBe(id);
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(key, 'base64').subarray(1).toString('base64url') }, format: 'jwk' });
    expect(verify(null, Buffer.from(c.text), publicKey, blob.subarray(4))).toBe(true);
    // One byte of the body changed: the signature no longer holds.
    expect(verify(null, Buffer.from(c.text.replace('\n5\n', '\n6\n')), publicKey, blob.subarray(4))).toBe(false);
  });

  it('keeps its private key in a file of mode 0600 under the data folder, not in the log nor in exports', async () => {
    const file = join(t.dir, 'log-signing-key.pem');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const pem = readFileSync(file, 'utf8');
    const secret = pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    const exported = await get(t, '/v1/agreements/tl-0/history?format=ndjson', as);
    expect(exported.statusCode).toBe(200);
    expect(exported.body).not.toContain(secret);
    const events = await t.eventStore.readAll({ after: null, limit: 1000 });
    expect(JSON.stringify(events)).not.toContain(secret);
    expect(readdirSync(t.dir)).toContain('log-signing-key.pem');
  });

  it('signs nothing new under a flood of requests, nor within a minute of the last while the log grows; a minute later it covers the new events', async () => {
    const first = await checkpoint();
    const signed = t.transparency.signed();
    const flood = await Promise.all(Array.from({ length: 50 }, () => get(t, '/v1/log/checkpoint', as)));
    expect(new Set(flood.map((r) => r.body))).toEqual(new Set([first.raw]));
    expect(t.transparency.signed()).toBe(signed);
    expect((await post(t, '/v1/agreements', agreementInput({ id: 'tl-grow' }), bearer(admin))).statusCode).toBe(201);
    later(30_000);
    expect((await checkpoint()).raw).toBe(first.raw);
    later(61_000);
    const next = await checkpoint();
    expect(next.size).toBe(first.size + 1);
    expect(t.transparency.signed()).toBe(signed + 1);
    expect(next.root.equals(mth(await allLeaves()))).toBe(true);
  });
});

describe('proofs', () => {
  it('proves every event of a history in the checkpoint by its leafIndex', async () => {
    const c = await checkpoint();
    const history = (await get(t, '/v1/agreements/tl-3/history', as)).json<Json>();
    const all = await t.eventStore.readAll({ after: null, limit: 1000 });
    for (const e of history.events) {
      expect(all[e.leafIndex]!.hash).toBe(e.hash);
      const r = await get(t, `/v1/log/proofs/inclusion?leafIndex=${e.leafIndex}&treeSize=${c.size}`, as);
      expect(r.statusCode, r.body).toBe(200);
      const body = r.json<Json>();
      expect(body).toMatchObject({ leafIndex: e.leafIndex, treeSize: c.size });
      const proof = body.hashes.map((h: string) => Buffer.from(h, 'base64'));
      expect(rootFromInclusion(e.leafIndex, c.size, leafOf(e.hash), proof)?.equals(c.root)).toBe(true);
      // A rewritten event does not verify with the same proof.
      expect(rootFromInclusion(e.leafIndex, c.size, leafOf(e.prevHash), proof)?.equals(c.root) ?? false).toBe(false);
    }
  });

  it('proves an older checkpoint consistent with a newer one', async () => {
    const old = await checkpoint();
    expect((await post(t, '/v1/agreements', agreementInput({ id: 'tl-more' }), bearer(admin))).statusCode).toBe(201);
    later(200_000);
    const now = await checkpoint();
    expect(now.size).toBe(old.size + 1);
    const r = await get(t, `/v1/log/proofs/consistency?from=${old.size}&to=${now.size}`, as);
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json<Json>();
    expect(body).toMatchObject({ from: old.size, to: now.size });
    expect(body.hashes.length).toBeGreaterThan(0);
    // from = to and from = 0: empty proofs.
    expect((await get(t, `/v1/log/proofs/consistency?from=${now.size}&to=${now.size}`, as)).json<Json>().hashes).toEqual([]);
    expect((await get(t, `/v1/log/proofs/consistency?from=0&to=${now.size}`, as)).json<Json>().hashes).toEqual([]);
  });

  it.each([
    ['/v1/log/proofs/inclusion?leafIndex=abc&treeSize=3', 'leafIndex', 'invalid_input'],
    ['/v1/log/proofs/inclusion?treeSize=3', 'leafIndex', 'invalid_input'],
    ['/v1/log/proofs/inclusion?leafIndex=-1&treeSize=3', 'leafIndex', 'invalid_input'],
    ['/v1/log/proofs/inclusion?leafIndex=3&treeSize=3', 'leafIndex', 'invalid_input'],
    ['/v1/log/proofs/inclusion?leafIndex=0&treeSize=1000', 'treeSize', 'tree_size_beyond_log'],
    ['/v1/log/proofs/consistency?from=1.5&to=3', 'from', 'invalid_input'],
    ['/v1/log/proofs/consistency?from=4&to=3', 'from', 'invalid_input'],
    ['/v1/log/proofs/consistency?from=1&to=1000', 'to', 'tree_size_beyond_log'],
  ])('refuses %s with 400 naming %s', async (url, field, code) => {
    const body = await expectNothingAppended(t, async () => expectProblem(await get(t, url, as), 400));
    expect(body.code).toBe(code);
    expect(errorPaths(body)).toContain(field);
  });

  it('is for auditors and admins: a viewer key is refused, the key is public', async () => {
    expect(accessOf('GET', '/v1/log/checkpoint')).toBe('audit');
    expect(accessOf('GET', '/v1/log/key')).toBe('public');
    for (const url of ['/v1/log/checkpoint', '/v1/log/proofs/inclusion?leafIndex=0&treeSize=1', '/v1/log/proofs/consistency?from=0&to=1']) {
      expectProblem(await get(t, url, bearer(viewer)), 403);
      expect((await get(t, url, bearer(admin))).statusCode).toBe(200);
    }
  });
});
