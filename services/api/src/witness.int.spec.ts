// A witness (pnpm witness, services/cli/src/witness-command.ts) against the real service over real
// HTTP: it co-signs the first checkpoint, then each later one only with a consistency proof from
// the last it co-signed; a forked or shrunk checkpoint, and a log whose event was rewritten and
// whose tree was rebuilt to match, are refused with why, and its state is left as it was.
import { createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { cosignatureLine, cosignerKey, keyId, loadOrCreateNoteSigner } from '@cm/event-store';
import { runWitness, type WitnessState } from '../../cli/src/witness-command.js';
import { agreementInput, errorPaths, expectNothingAppended, expectProblem, get, post } from './testing/api-fixtures.js';
import { bearer, createTestApp, type TestApp, type TestKey } from './testing/test-app.js';

const auditor: TestKey = { name: 'rus-witness', role: 'auditor', secret: 'cm_witness_auditor_01' };
const admin: TestKey = { name: 'ops', role: 'admin', secret: 'cm_admin_secret_0001' };
const START = Date.parse('2026-03-01T10:00:00.000Z');

let t: TestApp;
let url: string;
let minutes = 0;
const dir = mkdtempSync(join(tmpdir(), 'cm-witness-'));
const witnessKeyFile = join(dir, 'witness.pem');
beforeAll(async () => {
  // The deployment knows the witness's cosigner key (WITNESS_KEYS).
  const w = loadOrCreateNoteSigner(witnessKeyFile, 'rus-mfa');
  t = await createTestApp({ keys: [auditor, admin], now: new Date(START).toISOString(), logOrigin: 'ledger.example.org', witnessKeys: [cosignerKey(w)] });
  url = await t.app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

const grow = async (n: number) => {
  for (let i = 0; i < n; i++) expect((await post(t, '/v1/agreements', agreementInput(), bearer(admin))).statusCode).toBe(201);
  t.setNow(new Date(START + ++minutes * 61_000).toISOString());
};
const witness = (stateFile: string) => runWitness({ logUrl: url, keyFile: witnessKeyFile, stateFile, name: 'rus-mfa', apiKey: auditor.secret, now: () => new Date(START) });

describe('pnpm witness', () => {
  it('co-signs the first checkpoint, then only a later one proven consistent with it, with a tlog-cosignature/v1 that verifies', async () => {
    const state = join(t.dir, 'witness-state.json');
    await grow(3);
    const first = await witness(state);
    expect(first).toMatchObject({ outcome: 'cosigned', size: 3, previous: null });
    await grow(4);
    const second = await witness(state);
    expect(second).toMatchObject({ outcome: 'cosigned', size: 7, previous: 3 });
    const saved = JSON.parse(readFileSync(state, 'utf8')) as WitnessState;
    expect(saved.size).toBe(7);
    // The cosignature: key id (algorithm 0x04) || 8-byte time || Ed25519 over "cosignature/v1\ntime <t>\n" + checkpoint.
    if (second.outcome !== 'cosigned') throw new Error('not co-signed');
    const m = /^\u2014 rus-mfa (\S+)\n$/.exec(second.cosignature)!;
    const blob = Buffer.from(m[1]!, 'base64');
    const w = loadOrCreateNoteSigner(witnessKeyFile, 'rus-mfa');
    expect(blob.subarray(0, 4).equals(keyId('rus-mfa', w.publicKey, 0x04))).toBe(true);
    expect(blob.readBigUInt64BE(4)).toBe(BigInt(START / 1000));
    const body = `ledger.example.org\n7\n${saved.root}\n`;
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: w.publicKey.toString('base64url') }, format: 'jwk' });
    expect(verify(null, Buffer.from(`cosignature/v1\ntime ${START / 1000}\n${body}`), key, blob.subarray(12))).toBe(true);
    // Handed back: the checkpoint served carries the service's signature, then the witness's.
    expect(second.posted).toBe('accepted by the log');
    const served = (await get(t, '/v1/log/checkpoint', bearer(auditor))).body;
    expect(served.startsWith(`${body}\n\u2014 ledger.example.org `)).toBe(true);
    expect(served.endsWith(second.cosignature)).toBe(true);
  });

  it('takes only cosignatures that verify, from witnesses the deployment knows', async () => {
    const as = bearer(auditor);
    const stranger = loadOrCreateNoteSigner(join(dir, 'stranger.pem'), 'stranger');
    const w = loadOrCreateNoteSigner(witnessKeyFile, 'rus-mfa');
    const size = Number((await get(t, '/v1/log/checkpoint', as)).body.split('\n')[1]);
    const root = (await get(t, '/v1/log/checkpoint', as)).body.split('\n')[2];
    const unknown = await post(t, '/v1/log/cosignatures', { size, cosignature: cosignatureLine(stranger, `ledger.example.org\n${size}\n${root}\n`, 1) }, as);
    expect(expectProblem(unknown, 403).code).toBe('unknown_witness');
    // Signed over another size's checkpoint: refused, naming the field.
    const wrong = await post(t, '/v1/log/cosignatures', { size: size - 1, cosignature: cosignatureLine(w, `ledger.example.org\n${size}\n${root}\n`, 1) }, as);
    const body = expectProblem(wrong, 400);
    expect(body.code).toBe('cosignature_invalid');
    expect(errorPaths(body)).toEqual(['cosignature']);
    await expectNothingAppended(t, async () => {
      const bad = expectProblem(await post(t, '/v1/log/cosignatures', { size: 'x', cosignature: '' }, as), 400);
      expect(errorPaths(bad).sort()).toEqual(['cosignature', 'size']);
    });
  });

  it('refuses a fork (same size, another root) and a log that shrank, leaving its state as it was', async () => {
    const state = join(t.dir, 'fork-state.json');
    await grow(1);
    expect((await witness(state)).outcome).toBe('cosigned');
    const saved = JSON.parse(readFileSync(state, 'utf8')) as WitnessState;
    const forged = { ...saved, root: Buffer.alloc(32, 7).toString('base64') };
    const { writeFileSync } = await import('node:fs');
    writeFileSync(state, JSON.stringify(forged));
    const fork = await witness(state);
    expect(fork.outcome).toBe('refused');
    expect(fork.outcome === 'refused' && fork.reason).toMatch(/^fork: size \d+ with root/);
    expect(JSON.parse(readFileSync(state, 'utf8'))).toEqual(forged);
    writeFileSync(state, JSON.stringify({ ...saved, size: saved.size + 5 }));
    const shrank = await witness(state);
    expect(shrank.outcome === 'refused' && shrank.reason).toMatch(/the log shrank/);
  });

  it('refuses a log with a rewritten event whose tree was rebuilt to match it', async () => {
    const state = join(t.dir, 'rewrite-state.json');
    await grow(1);
    expect((await witness(state)).outcome).toBe('cosigned');
    // The operator rewrites an old event (new hash) and rebuilds the tree from the rewritten log.
    const db = t.eventStore.db;
    const victim = db.prepare<[], { event_id: string }>('SELECT event_id FROM events ORDER BY position LIMIT 1 OFFSET 1').get()!;
    db.prepare('UPDATE events SET hash = ? WHERE event_id = ?').run('cd'.repeat(32), victim.event_id);
    db.exec('DELETE FROM merkle_leaves; DELETE FROM merkle_nodes;');
    await grow(2);
    const r = await witness(state);
    expect(r.outcome).toBe('refused');
    expect(r.outcome === 'refused' && r.reason).toMatch(/^inconsistent: the log of size \d+ does not extend the one of size \d+/);
  });
});
