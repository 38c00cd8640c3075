// The memory store's indexes against the reference scan, over random ledgers changed between
// reads: single writes (lists settled by binary search), large batches (settled by merge) and
// writes piling up unread. Every commitment list, page by page, and the dashboard must match.
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '@cm/event-store';
import type { AgreementDoc, ReviewDoc } from './documents.js';
import { projectBatch } from './ledger-projection.js';
import { commitmentFilter, createScanQueries, type CommitmentFilter, type Page } from './queries.js';
import { createMemoryReadStore } from './read-store.js';
import { createRandom } from './testing/mixed-ledger.js';
import { createEventLog } from './testing/stored-events.js';

const SECTORS = ['health', 'energy', 'science'];
const PARTIES = ['VEN', 'RUS', 'CUB'];
const INSTITUTIONS = ['Ministerio de Salud', 'Ministry of Energy', 'Academia de Ciencias', 'Unión Eléctrica'];
const DATES = ['2026-01-31', '2026-03-01', '2026-03-02', '2026-06-30', '2026-12-31'];

function randomLedger(seed: number, agreements: number, steps: number): StoredEvent[] {
  const rnd = createRandom(seed);
  const log = createEventLog();
  const events: StoredEvent[] = [];
  const state = new Map<string, { parties: string[]; commitments: { id: string; due: string; closed: boolean }[] }>();
  for (let i = 0; i < steps; i++) {
    const id = `agr-${rnd.int(0, agreements - 1)}`;
    const a = state.get(id);
    if (!a) {
      const parties = ['VEN', rnd.pick(PARTIES.slice(1))];
      state.set(id, { parties, commitments: [] });
      events.push(log.signed(id, { sector: rnd.pick(SECTORS), parties, signedAt: `2025-0${rnd.int(1, 9)}-1${rnd.int(0, 9)}` }));
      continue;
    }
    const open = a.commitments.filter((c) => !c.closed);
    const roll = rnd.next();
    if (a.commitments.length < 6 && (roll < 0.3 || open.length === 0)) {
      // Few ids and dates, so keys collide across agreements and within a date.
      const c = { id: `c-${rnd.int(0, 9)}`, due: rnd.pick(DATES), closed: false };
      if (a.commitments.some((x) => x.id === c.id)) continue;
      a.commitments.push(c);
      events.push(log.added(id, c.id, { dueDate: c.due, party: rnd.pick(a.parties), institution: rnd.pick(INSTITUTIONS) }));
    } else if (open.length > 0) {
      const c = rnd.pick(open);
      if (roll < 0.6) events.push(log.progress(id, c.id, rnd.int(1, 99)));
      else if (roll < 0.75) {
        const due = rnd.pick(DATES);
        events.push(log.delayed(id, c.id, c.due, due));
        c.due = due;
      } else if (roll < 0.85) {
        c.closed = true;
        events.push(log.implemented(id, c.id));
      } else if (roll < 0.92) {
        c.closed = true;
        events.push(log.cancelled(id, c.id));
      } else if (roll < 0.95) events.push(log.terminated(id));
    }
  }
  return events;
}

async function walk<T>(page: (cursor: string | undefined) => Promise<Page<T>>): Promise<Page<T>[]> {
  const pages: Page<T>[] = [];
  let cursor: string | undefined;
  do {
    const p = await page(cursor);
    pages.push(p);
    cursor = p.nextCursor ?? undefined;
  } while (cursor !== undefined && pages.length < 500);
  return pages;
}

const FILTERS: Record<string, unknown>[] = [
  {},
  ...['pending', 'in_progress', 'delayed', 'implemented', 'cancelled'].map((status) => ({ status })),
  { overdue: 'true' }, { overdue: 'false' },
  ...PARTIES.map((party) => ({ party })),
  ...SECTORS.map((sector) => ({ sector })),
  { agreementId: 'agr-3' }, { agreementId: 'agr-none' },
  { institution: 'ministerio' }, { institution: 'UNION' }, { institution: 'nobody' },
  { dueBefore: '2026-03-02' }, { dueAfter: '2026-03-01' }, { dueAfter: '2026-01-31', dueBefore: '2026-12-31' },
  { status: 'delayed', overdue: 'true' }, { overdue: 'false', sector: 'health', dueAfter: '2026-02-01' },
  { party: 'RUS', overdue: 'true', institution: 'min' }, { status: 'in_progress', sector: 'energy', party: 'VEN' },
  { agreementId: 'agr-5', overdue: 'false' },
];
const NOWS = ['2026-01-01T00:00:00.000Z', '2026-03-02T10:00:00.000Z', '2027-01-01T00:00:00.000Z'];

describe('memory read store indexes', () => {
  it.each([
    { seed: 1, batch: 1, reads: 6 },
    { seed: 2, batch: 7, reads: 4 },
    { seed: 3, batch: 400, reads: 3 },
  ])('answer commitment lists and the dashboard as the reference scan does (seed $seed, batches of $batch)', async ({ seed, batch, reads }) => {
    const events = randomLedger(seed, 40, 1600);
    const store = createMemoryReadStore();
    const docs = { agreements: new Map<string, AgreementDoc>(), reviews: new Map<string, ReviewDoc>() };
    const reference = createScanQueries({ allAgreements: async () => [...docs.agreements.values()], allReviews: async () => [] });
    const checkEvery = Math.max(1, Math.floor(events.length / batch / reads));
    let batches = 0;
    for (let i = 0; i < events.length; i += batch) {
      const slice = events.slice(i, i + batch);
      const changes = projectBatch(docs, slice);
      for (const [id, d] of changes.agreements) docs.agreements.set(id, d);
      await store.commit(changes, slice.at(-1)!.position, { from: events[i - 1]?.position ?? null });
      if (++batches % checkEvery !== 0 && i + batch < events.length) continue;
      for (const now of NOWS) {
        expect(await store.dashboard(now), `dashboard as of ${now}`).toEqual(await reference.dashboard(now));
        for (const f of FILTERS) {
          const list = (cursor: string | undefined, q: typeof store | typeof reference) =>
            q.listCommitments(commitmentFilter.parse({ ...f, limit: 9, cursor }) as CommitmentFilter, now);
          const label = `${JSON.stringify(f)} as of ${now} after ${i + slice.length} events`;
          expect(await walk((c) => list(c, store)), label).toEqual(await walk((c) => list(c, reference)));
        }
      }
    }
    expect([...docs.agreements.values()].flatMap((d) => d.agreement.commitments).length).toBeGreaterThan(100);
  });
});
