// Reads a running service's whole state over HTTP, for comparisons across restarts, and checks
// the log behind it: every stream gap-free and hash-chained, the global log without holes.
import { expect } from 'vitest';
import type { Client, Reply } from './http.js';

export type HistoryEvent = {
  revision: number;
  position: string;
  type: string;
  occurredAt: string;
  recordedAt: string;
  actor: string;
  data: any;
  prevHash: string;
  hash: string;
};

/** The full history of an agreement stream, following `nextFromRevision`. */
export async function readHistory(api: Client, id: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let from: number | null = 0;
  while (from !== null) {
    const page: Reply = await api.get(`/v1/agreements/${id}/history?fromRevision=${from}&limit=1000`);
    expect(page.status, `history of ${id}`).toBe(200);
    events.push(...page.body.events);
    from = page.body.nextFromRevision;
  }
  return events;
}

/**
 * Everything the read models answer: the agreement list, each agreement (body and ETag), the
 * commitment list and the dashboard. With `after`, only once the read models include it.
 */
export async function snapshot(api: Client, after?: string) {
  const q = after ? `after=${after}&` : '';
  const list = await api.get(`/v1/agreements?${q}limit=500`);
  expect(list.status).toBe(200);
  expect(list.body.items.length, 'every agreement fits one page').toBe(list.body.total);
  const details: Record<string, { etag: string | null; body: unknown }> = {};
  await Promise.all(
    list.body.items.map(async (a: { id: string }) => {
      const d = await api.get(`/v1/agreements/${a.id}`);
      expect(d.status).toBe(200);
      details[a.id] = { etag: d.headers.get('etag'), body: d.body };
    }),
  );
  const commitments = await api.get(`/v1/commitments?${q}limit=500`);
  expect(commitments.status).toBe(200);
  const dashboard = await api.get(`/v1/dashboard?${q}`);
  expect(dashboard.status).toBe(200);
  return { list: list.body, details, commitments: commitments.body, dashboard: dashboard.body };
}
export type Snapshot = Awaited<ReturnType<typeof snapshot>>;

/**
 * Every agreement stream has revisions 0..n (n = the read model's revision), strictly rising
 * positions and a valid hash chain; together the streams cover global positions 1..head.
 * Returns each agreement's history.
 */
export async function checkLog(api: Client): Promise<Map<string, HistoryEvent[]>> {
  const list = await api.get('/v1/agreements?limit=500');
  expect(list.status).toBe(200);
  const histories = new Map<string, HistoryEvent[]>();
  const positions: number[] = [];
  for (const a of list.body.items as { id: string; revision: number }[]) {
    const events = await readHistory(api, a.id);
    histories.set(a.id, events);
    expect(events.map((e) => e.revision), `revisions of ${a.id}`).toEqual(events.map((_, i) => i));
    expect(events.length - 1, `${a.id}: the read model's revision is the stream's last`).toBe(a.revision);
    const ps = events.map((e) => Number(e.position));
    expect(ps, `positions of ${a.id} rise`).toEqual([...ps].sort((x, y) => x - y));
    expect(new Set(ps).size).toBe(ps.length);
    positions.push(...ps);
    const integrity = await api.get(`/v1/agreements/${a.id}/integrity`);
    expect(integrity.status).toBe(200);
    expect(integrity.body, `integrity of ${a.id}`).toEqual({ valid: true, events: events.length, lastHash: events.at(-1)!.hash, firstInvalidRevision: null, reason: null, schemes: { 2: events.length } });
  }
  const ready = await api.get('/ready');
  expect(ready.status).toBe(200);
  const head = Number(ready.body.projections[0].head ?? 0);
  positions.sort((x, y) => x - y);
  expect(positions, 'the agreement streams cover the global log 1..head without a hole').toEqual(Array.from({ length: head }, (_, i) => i + 1));
  return histories;
}
