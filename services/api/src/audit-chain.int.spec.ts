// What the hash chain covers, checked by editing the SQLite file under a running app: rows of
// two streams exchanged (scheme 2 binds each event to its stream, id and revision), a stream's
// last events removed (compared with its head row), the unhashed recorded_at column moved
// (asOf reads the hashed copy; /integrity reports the edit), a log written under scheme 1 still
// verifying, and asOf under a clock that runs behind the log's recordedAt.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventHash, genesisHash, type StoredEvent } from '@cm/event-store';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { command, commitmentInput, createAgreement, get, sleep, type Json } from './testing/api-fixtures.js';

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp();
});
afterEach(async () => {
  await t.close();
});

const integrity = async (id: string) => {
  const res = await get(t, `/v1/agreements/${id}/integrity`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Json>();
};
const history = async (id: string) => (await get(t, `/v1/agreements/${id}/history`)).json<Json>().events as Json[];
const q = encodeURIComponent;

async function twoAgreements(): Promise<void> {
  for (const id of ['ag-a', 'ag-b']) {
    await createAgreement(t, { id, title: `Agreement ${id}`, commitments: [commitmentInput({ id: 'plant', dueDate: '2030-06-30' })] });
    await command(t, `/v1/agreements/${id}/commitments/plant/progress`, { percent: 40 });
  }
}

describe('scheme 2: each event is bound to its stream, id and revision', () => {
  it('reports both streams invalid after their rows are exchanged in the SQLite file', async () => {
    await twoAgreements();
    expect(await integrity('ag-a')).toMatchObject({ valid: true, schemes: { 2: 3 } });
    const db = t.eventStore.db;
    db.transaction(() => {
      for (const table of ['events', 'streams']) {
        db.prepare(`UPDATE ${table} SET stream = 'tmp' WHERE stream = 'agreement-ag-a'`).run();
        db.prepare(`UPDATE ${table} SET stream = 'agreement-ag-a' WHERE stream = 'agreement-ag-b'`).run();
        db.prepare(`UPDATE ${table} SET stream = 'agreement-ag-b' WHERE stream = 'tmp'`).run();
      }
    })();
    // agreement ag-a now holds ag-b's rows, head row included: each chain is whole, but not its stream's.
    expect((await history('ag-a'))[0]!.data).toMatchObject({ title: 'Agreement ag-b' });
    for (const id of ['ag-a', 'ag-b']) {
      const r = await integrity(id);
      expect(r).toMatchObject({ valid: false, firstInvalidRevision: 0 });
      expect(r.reason).toMatch(new RegExp(`genesis hash of stream agreement-${id}`));
    }
  });

  it('starts each stream from a genesis derived from its name, and says the scheme of each event in the history', async () => {
    await twoAgreements();
    const events = await history('ag-a');
    expect(events[0]!.prevHash).toBe(genesisHash(2, 'agreement-ag-a'));
    expect(events.map((e) => e.hashScheme)).toEqual([2, 2, 2]);
  });

  it('still verifies a log written under scheme 1', async () => {
    await twoAgreements();
    // The same events as a log of scheme 1 held them: no hashScheme, 64 zeros, the old hash.
    const genuine = await t.eventStore.readAll({ after: null, limit: 100 });
    const prev = new Map<string, string>();
    const v1 = genuine.map((e): StoredEvent => {
      const { hashScheme: _dropped, ...metadata } = e.metadata;
      const prevHash = prev.get(e.stream) ?? '0'.repeat(64);
      const event = { ...e, metadata, prevHash };
      const hash = eventHash(event);
      prev.set(e.stream, hash);
      return { ...event, hash };
    });
    await t.close();
    t = await createTestApp();
    await t.eventStore.importEvents(v1);
    const r = await integrity('ag-a');
    expect(r).toMatchObject({ valid: true, events: 3, schemes: { 1: 3 }, reason: null });
    expect((await history('ag-a')).map((e) => e.hashScheme)).toEqual([1, 1, 1]);
  });
});

describe('/integrity against the head row', () => {
  it("reports a stream whose last events were removed from the SQLite file", async () => {
    await twoAgreements();
    await command(t, '/v1/agreements/ag-a/commitments/plant/progress', { percent: 60 });
    const removed = t.eventStore.db.prepare("DELETE FROM events WHERE stream = 'agreement-ag-a' AND revision >= 2").run().changes;
    expect(removed).toBe(2);
    const r = await integrity('ag-a');
    expect(r).toMatchObject({ valid: false, events: 2, firstInvalidRevision: 2 });
    expect(r.reason).toMatch(/head says revision 3 but its events end at revision 1: events are missing/);
  });
});

describe('asOf reads the hashed recordedAt', () => {
  it('is not moved by an edit of the recorded_at column, and /integrity reports the edit', async () => {
    await twoAgreements();
    await sleep(20);
    await command(t, '/v1/agreements/ag-a/commitments/plant/progress', { percent: 60 });
    const events = await history('ag-a');
    const last = events[3]!.recordedAt as string;
    t.eventStore.db.prepare("UPDATE events SET recorded_at = '2027-01-01T00:00:00.000Z' WHERE stream = 'agreement-ag-a' AND revision = 3").run();
    const at = await get(t, `/v1/agreements/ag-a?asOf=${q(last)}`);
    expect(at.statusCode, at.body).toBe(200);
    expect(at.json()).toMatchObject({ revision: 3, progress: 60 });
    const r = await integrity('ag-a');
    expect(r).toMatchObject({ valid: false, firstInvalidRevision: 3 });
    expect(r.reason).toMatch(/recorded_at column \(2027-01-01T00:00:00.000Z\) of revision 3 is not the recordedAt its hash covers/);
  });
});

describe('asOf under a clock behind the log', () => {
  it('answers asOf=<the recordedAt just returned> when this process\'s clock runs an hour behind it', async () => {
    await twoAgreements();
    const events = await history('ag-b');
    const recordedAt = events.at(-1)!.recordedAt as string;
    t.setNow(new Date(Date.parse(recordedAt) - 3600_000).toISOString());
    const res = await get(t, `/v1/agreements/ag-b?asOf=${q(recordedAt)}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ revision: 2, asOf: recordedAt, progress: 40 });
    // Beyond the log's last recordedAt the cap is that recordedAt: nothing later exists to show.
    expect((await get(t, `/v1/agreements/ag-b?asOf=2999-01-01T00:00:00Z`)).json()).toMatchObject({ revision: 2, asOf: recordedAt });
  });
});
