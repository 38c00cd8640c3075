// The list, calendar and dashboard queries over a memory store filled the way the projector
// fills it: filters, ordering, cursor pagination and counts as of an instant.
import { beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '@cm/domain';
import { agreementFilter, commitmentFilter, createQueries, reviewFilter, type Queries } from './queries.js';
import { createMemoryReadStore, type ReadStore } from './read-store.js';
import { projectInto } from './testing/project-into.js';
import { createEventLog, type EventLog } from './testing/stored-events.js';

const NOW = '2026-03-15T12:00:00.000Z';
const CIAN_XIX = { name: 'CIAN XIX', date: '2025-11-28' };
const CIAN_XVIII = { name: 'CIAN XVIII', date: '2025-06-15' };

const MARCH = '2026-03-10T09:00:00.000Z';
const APRIL = '2026-04-20T09:00:00.000Z';
const MAY = '2026-05-15T09:00:00.000Z';
const JUNE = '2026-06-01T09:00:00.000Z';

/**
 * Seven agreements; as of NOW:
 *   health-protocol    2026-01-20 health        RUS BLR       implemented
 *   air-services       2025-11-28 air_transport VEN RUS  XIX  signed
 *   health-cooperation 2025-11-28 health        VEN RUS  XIX  delayed (vaccines overdue)
 *   science-programme  2025-11-28 science       VEN RUS  XIX  in_implementation
 *   culture-exchange   2025-06-15 culture       VEN CUB  XVIII signed (exhibit cancelled)
 *   energy-memorandum  2025-06-15 energy        VEN CUB  XVIII delayed (pipeline delayed)
 *   trade-contract     2024-10-01 economy       VEN RUS  XVII terminated
 * Signed in the log in another order than any listing, so order is the query's doing.
 */
function ledger(log: EventLog) {
  return [
    log.signed('science-programme', { title: 'Programme of Scientific Cooperation', sector: 'science', signedAt: '2025-11-28', session: CIAN_XIX }),
    log.added('science-programme', 'lab', { dueDate: '2026-12-31', party: 'RUS', institution: 'Russian Academy of Sciences' }),
    log.added('science-programme', 'clinic', { dueDate: '2026-06-30', party: 'RUS', institution: 'Ministry of Health of Russia' }),
    log.progress('science-programme', 'lab', 20),

    log.signed('trade-contract', { title: 'Contract on Grain Supply', sector: 'economy', signedAt: '2024-10-01', session: { name: 'CIAN XVII', date: '2024-10-01' } }),
    log.added('trade-contract', 'grain', { dueDate: '2025-12-31', institution: 'Corporación Venezolana de Comercio Exterior' }),
    log.terminated('trade-contract'),

    log.signed('health-cooperation', { title: 'Acuerdo de Cooperación en Salud', sector: 'health', signedAt: '2025-11-28', session: CIAN_XIX }),
    log.added('health-cooperation', 'clinic', { dueDate: '2026-06-30', institution: 'Ministerio del Poder Popular para la Salud' }),
    log.added('health-cooperation', 'vaccines', { dueDate: '2026-02-28', party: 'RUS', institution: 'Gamaleya Centre' }),
    log.progress('health-cooperation', 'clinic', 40),

    log.signed('energy-memorandum', { title: 'Memorandum on Energy', sector: 'energy', parties: ['VEN', 'CUB'], signedAt: '2025-06-15', session: CIAN_XVIII }),
    log.added('energy-memorandum', 'pipeline', { dueDate: '2026-01-31', institution: 'PDVSA' }),
    log.added('energy-memorandum', 'study', { dueDate: '2025-12-15', party: 'CUB', institution: 'Unión Eléctrica' }),
    log.delayed('energy-memorandum', 'pipeline', '2026-01-31', '2026-10-31'),
    log.implemented('energy-memorandum', 'study'),

    log.signed('health-protocol', { title: 'Protocol on Medicines', sector: 'health', parties: ['RUS', 'BLR'], signedAt: '2026-01-20' }),
    log.added('health-protocol', 'registry', { dueDate: '2026-05-31', party: 'RUS', institution: 'Roszdravnadzor' }),
    log.implemented('health-protocol', 'registry'),

    log.signed('air-services', { title: 'Air Services Agreement', sector: 'air_transport', signedAt: '2025-11-28', session: CIAN_XIX }),
    log.added('air-services', 'route', { dueDate: '2026-09-30', institution: 'Instituto Nacional de Aeronáutica Civil' }),

    log.signed('culture-exchange', { title: 'Programa de intercambio cultural', sector: 'culture', parties: ['VEN', 'CUB'], signedAt: '2025-06-15', session: CIAN_XVIII }),
    log.added('culture-exchange', 'festival', { dueDate: '2026-06-30', institution: 'Ministerio de Cultura' }),
    log.added('culture-exchange', 'exhibit', { dueDate: '2026-04-30', party: 'CUB', institution: 'Museo Nacional' }),
    log.cancelled('culture-exchange', 'exhibit'),

    // Reviews, scheduled in another order than their dates; june-review moved from March to June.
    log.scheduled('june-review', '2026-03-30T09:00:00.000Z', ['science-programme', 'health-cooperation']),
    log.scheduled('march-review', MARCH, ['health-cooperation']),
    log.scheduled('april-review', APRIL, ['health-cooperation', 'air-services']),
    log.scheduled('may-review', MAY, ['energy-memorandum']),
    log.rescheduled('june-review', '2026-03-30T09:00:00.000Z', JUNE),
    log.held('march-review', MARCH, [{ agreementId: 'health-cooperation', rating: 'at_risk' }]),
    log.reviewCancelled('may-review'),
    log.reminderSent('april-review', APRIL, 'desk@example.org', '2026-04-13T09:00:00.000Z'),
  ];
}

const ALL_AGREEMENTS = [
  'health-protocol',
  'air-services', 'health-cooperation', 'science-programme',
  'culture-exchange', 'energy-memorandum',
  'trade-contract',
];

const ALL_COMMITMENTS = [
  'energy-memorandum/study', // 2025-12-15
  'trade-contract/grain', // 2025-12-31
  'health-cooperation/vaccines', // 2026-02-28
  'culture-exchange/exhibit', // 2026-04-30
  'health-protocol/registry', // 2026-05-31
  'health-cooperation/clinic', // 2026-06-30
  'science-programme/clinic', // 2026-06-30, same id and date: agreementId decides
  'culture-exchange/festival', // 2026-06-30
  'air-services/route', // 2026-09-30
  'energy-memorandum/pipeline', // 2026-10-31
  'science-programme/lab', // 2026-12-31
];

let store: ReadStore;
let queries: Queries;
let log: EventLog;

beforeEach(async () => {
  log = createEventLog();
  store = createMemoryReadStore();
  // Two batches, as a projector would commit them.
  const events = ledger(log);
  await projectInto(store, events.slice(0, 20));
  await projectInto(store, events.slice(20));
  queries = createQueries(store);
});

const agreements = (f: Record<string, unknown>, now = NOW) => queries.listAgreements(agreementFilter.parse(f), now);
const agreementIds = async (f: Record<string, unknown>, now = NOW) => (await agreements(f, now)).items.map((a) => a.id);
const commitments = (f: Record<string, unknown>, now = NOW) => queries.listCommitments(commitmentFilter.parse(f), now);
const commitmentKeys = async (f: Record<string, unknown>, now = NOW) =>
  (await commitments(f, now)).items.map((c) => `${c.agreementId}/${c.id}`);
const reviewIds = async (f: Record<string, unknown>) => (await queries.listReviews(reviewFilter.parse(f))).items.map((r) => r.id);

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('listAgreements', () => {
  it('lists the newest signature first, then by id, with the total', async () => {
    const page = await agreements({});
    expect(page.items.map((a) => a.id)).toEqual(ALL_AGREEMENTS);
    expect(page.total).toBe(7);
    expect(page.nextCursor).toBeNull();
  });

  it('shows each agreement with its status as of the instant asked', async () => {
    const page = await agreements({});
    const status = Object.fromEntries(page.items.map((a) => [a.id, a.status]));
    expect(status).toEqual({
      'health-protocol': 'implemented',
      'air-services': 'signed',
      'health-cooperation': 'delayed',
      'science-programme': 'in_implementation',
      'culture-exchange': 'signed',
      'energy-memorandum': 'delayed',
      'trade-contract': 'terminated',
    });
    expect(page.items.find((a) => a.id === 'health-cooperation')!.nextReviewAt).toBe(APRIL);
  });

  it('filters by sector, party and session', async () => {
    expect(await agreementIds({ sector: 'health' })).toEqual(['health-protocol', 'health-cooperation']);
    expect(await agreementIds({ party: 'CUB' })).toEqual(['culture-exchange', 'energy-memorandum']);
    expect(await agreementIds({ party: 'BLR' })).toEqual(['health-protocol']);
    expect(await agreementIds({ session: 'CIAN XIX' })).toEqual(['air-services', 'health-cooperation', 'science-programme']);
    expect(await agreementIds({ session: 'CIAN XVIII', party: 'CUB', sector: 'energy' })).toEqual(['energy-memorandum']);
    expect(await agreementIds({ sector: 'mining' })).toEqual([]);
  });

  it('filters by status as of the instant asked', async () => {
    expect(await agreementIds({ status: 'delayed' })).toEqual(['health-cooperation', 'energy-memorandum']);
    expect(await agreementIds({ status: 'signed' })).toEqual(['air-services', 'culture-exchange']);
    expect(await agreementIds({ status: 'terminated' })).toEqual(['trade-contract']);
    // Before the vaccines fell due, health-cooperation was only in implementation.
    expect(await agreementIds({ status: 'delayed' }, '2026-02-01T00:00:00.000Z')).toEqual(['energy-memorandum']);
    expect(await agreementIds({ status: 'in_implementation' }, '2026-02-01T00:00:00.000Z')).toEqual(['health-cooperation', 'science-programme']);
    const page = await agreements({ status: 'delayed', sector: 'health' });
    expect(page.total).toBe(1);
  });

  it('matches q in the title whatever the accents and case', async () => {
    expect(await agreementIds({ q: 'cooperacion' })).toEqual(['health-cooperation']);
    expect(await agreementIds({ q: 'COOPERACIÓN' })).toEqual(['health-cooperation']);
    expect(await agreementIds({ q: 'cooperati' })).toEqual(['science-programme']);
    expect(await agreementIds({ q: 'coopera' })).toEqual(['health-cooperation', 'science-programme']);
    // Folding applies to the title too: an accent typed where the title has none still matches.
    expect(await agreementIds({ q: 'Médicines' })).toEqual(['health-protocol']);
    expect(await agreementIds({ q: 'SALUD' })).toEqual(['health-cooperation']);
    expect(await agreementIds({ q: 'intercambio Cultural' })).toEqual(['culture-exchange']);
    expect(await agreementIds({ q: 'aeronáutica' })).toEqual([]);
  });

  it('walks every page with the cursor, without duplicates or gaps', async () => {
    const seen: string[] = [];
    const pages: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await agreements({ limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.total).toBe(7);
      seen.push(...page.items.map((a) => a.id));
      pages.push(page.items.length);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);

    expect(seen).toEqual(ALL_AGREEMENTS);
    expect(pages).toEqual([2, 2, 2, 1]);
  });

  it('gives no next cursor when the page holds the last item', async () => {
    expect((await agreements({ limit: 7 })).nextCursor).toBeNull();
    expect((await agreements({ limit: 6 })).nextCursor).not.toBeNull();
  });

  it('continues after the last item seen when agreements arrive between pages', async () => {
    const first = await agreements({ limit: 3 });
    expect(first.items.map((a) => a.id)).toEqual(['health-protocol', 'air-services', 'health-cooperation']);

    // One sorts before the cursor (newer), one after it (same date, later id).
    await projectInto(store, [
      log.signed('aaa-newest', { signedAt: '2026-02-01' }),
      log.signed('health-zeta', { signedAt: '2025-11-28' }),
    ]);
    const second = await agreements({ limit: 3, cursor: first.nextCursor });

    expect(second.items.map((a) => a.id)).toEqual(['health-zeta', 'science-programme', 'culture-exchange']);
    expect(second.total).toBe(9);
  });

  it('refuses a cursor it did not hand out, naming the cursor', async () => {
    const commitmentCursor = (await commitments({ limit: 1 })).nextCursor!;
    const bad = [
      'not a cursor',
      Buffer.from('{"a":1}').toString('base64url'),
      Buffer.from('[1,2]').toString('base64url'),
      commitmentCursor,
    ];
    for (const cursor of bad) {
      const err = await caught(agreements({ cursor }));
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).errors.map((e) => e.path)).toEqual(['cursor']);
    }
  });
});

describe('listCommitments', () => {
  it('lists every commitment by due date, then id, then agreement, with agreement title and sector', async () => {
    const page = await commitments({});
    expect(page.items.map((c) => `${c.agreementId}/${c.id}`)).toEqual(ALL_COMMITMENTS);
    expect(page.total).toBe(11);
    const vaccines = page.items[2]!;
    expect(vaccines).toMatchObject({ id: 'vaccines', agreementTitle: 'Acuerdo de Cooperación en Salud', sector: 'health', overdue: true, status: 'pending' });
  });

  it('filters by status, party, sector and agreement', async () => {
    expect(await commitmentKeys({ status: 'pending' })).toEqual([
      'trade-contract/grain', 'health-cooperation/vaccines', 'science-programme/clinic', 'culture-exchange/festival', 'air-services/route',
    ]);
    expect(await commitmentKeys({ status: 'delayed' })).toEqual(['energy-memorandum/pipeline']);
    expect(await commitmentKeys({ party: 'CUB' })).toEqual(['energy-memorandum/study', 'culture-exchange/exhibit']);
    expect(await commitmentKeys({ sector: 'health' })).toEqual(['health-cooperation/vaccines', 'health-protocol/registry', 'health-cooperation/clinic']);
    expect(await commitmentKeys({ agreementId: 'energy-memorandum' })).toEqual(['energy-memorandum/study', 'energy-memorandum/pipeline']);
    expect(await commitmentKeys({ party: 'RUS', status: 'in_progress' })).toEqual(['science-programme/lab']);
  });

  it('filters by overdue as of the instant asked', async () => {
    expect(await commitmentKeys({ overdue: 'true' })).toEqual(['trade-contract/grain', 'health-cooperation/vaccines']);
    expect(await commitmentKeys({ overdue: 'false' })).toHaveLength(9);
    expect(await commitmentKeys({ overdue: 'true' }, '2026-07-01T00:00:00.000Z')).toEqual([
      'trade-contract/grain', 'health-cooperation/vaccines', 'health-cooperation/clinic', 'science-programme/clinic', 'culture-exchange/festival',
    ]);
  });

  it('matches the institution whatever the accents and case', async () => {
    expect(await commitmentKeys({ institution: 'MINISTERIO' })).toEqual(['health-cooperation/clinic', 'culture-exchange/festival']);
    expect(await commitmentKeys({ institution: 'union electrica' })).toEqual(['energy-memorandum/study']);
    expect(await commitmentKeys({ institution: 'Corporacion' })).toEqual(['trade-contract/grain']);
  });

  it('filters by due date, dueBefore and dueAfter excluding the date itself', async () => {
    expect(await commitmentKeys({ dueBefore: '2026-04-30' })).toEqual(['energy-memorandum/study', 'trade-contract/grain', 'health-cooperation/vaccines']);
    expect(await commitmentKeys({ dueAfter: '2026-06-30' })).toEqual(['air-services/route', 'energy-memorandum/pipeline', 'science-programme/lab']);
    expect(await commitmentKeys({ dueAfter: '2026-01-01', dueBefore: '2026-06-01' })).toEqual([
      'health-cooperation/vaccines', 'culture-exchange/exhibit', 'health-protocol/registry',
    ]);
  });

  it('pages through commitments with the same date and id without duplicates or gaps', async () => {
    const first = await commitments({ limit: 6 });
    expect(first.items.at(-1)).toMatchObject({ agreementId: 'health-cooperation', id: 'clinic' });
    const second = await commitments({ limit: 6, cursor: first.nextCursor });
    expect(second.items[0]).toMatchObject({ agreementId: 'science-programme', id: 'clinic' });
    expect(second.nextCursor).toBeNull();
    expect([...first.items, ...second.items].map((c) => `${c.agreementId}/${c.id}`)).toEqual(ALL_COMMITMENTS);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await commitments({ limit: 4, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((c) => `${c.agreementId}/${c.id}`));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(ALL_COMMITMENTS);
  });

  it('refuses a cursor it did not hand out, naming the cursor', async () => {
    const agreementCursor = (await agreements({ limit: 1 })).nextCursor!;
    for (const cursor of ['%%%', agreementCursor]) {
      const err = await caught(commitments({ cursor }));
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).errors.map((e) => e.path)).toEqual(['cursor']);
    }
  });
});

describe('listReviews', () => {
  it('lists every review by its current date', async () => {
    expect(await reviewIds({})).toEqual(['march-review', 'april-review', 'may-review', 'june-review']);
  });

  it('filters from and to, both inclusive, whatever the offset the instant is written in', async () => {
    expect(await reviewIds({ from: APRIL })).toEqual(['april-review', 'may-review', 'june-review']);
    expect(await reviewIds({ to: MAY })).toEqual(['march-review', 'april-review', 'may-review']);
    expect(await reviewIds({ from: '2026-04-20T11:00:00+02:00', to: '2026-05-15T09:00Z' })).toEqual(['april-review', 'may-review']);
    expect(await reviewIds({ from: '2026-04-20T09:00:01Z' })).toEqual(['may-review', 'june-review']);
  });

  it('filters by status and by agreement in scope', async () => {
    expect(await reviewIds({ status: 'scheduled' })).toEqual(['april-review', 'june-review']);
    expect(await reviewIds({ status: 'held' })).toEqual(['march-review']);
    expect(await reviewIds({ status: 'cancelled' })).toEqual(['may-review']);
    expect(await reviewIds({ agreementId: 'health-cooperation' })).toEqual(['march-review', 'april-review', 'june-review']);
    expect(await reviewIds({ agreementId: 'health-cooperation', status: 'scheduled', to: MAY })).toEqual(['april-review']);
  });
});

describe('reviewDetail', () => {
  it('shows the agenda and the reminders sent, and null for an unknown review', async () => {
    const detail = await queries.reviewDetail('april-review', NOW);
    expect(detail!.agenda.map((a) => a.agreementId)).toEqual(['health-cooperation', 'air-services']);
    expect(detail!.agenda[0]!.commitments.map((c) => c.id)).toEqual(['vaccines']);
    expect(detail!.reminders).toEqual([{ offset: '7d', email: 'desk@example.org', scheduledFor: APRIL, sentAt: '2026-04-13T09:00:00.000Z' }]);
    expect(await queries.reviewDetail('no-such-review', NOW)).toBeNull();
  });
});

describe('dashboard', () => {
  it('counts agreements by status and sector, and commitments by status and overdue, as of the instant', async () => {
    const d = await queries.dashboard(NOW);

    expect(d.agreements.total).toBe(7);
    expect(d.agreements.byStatus).toEqual({ signed: 2, in_implementation: 1, delayed: 2, implemented: 1, cancelled: 0, terminated: 1 });
    expect(d.agreements.bySector.health).toEqual({ total: 2, byStatus: { signed: 0, in_implementation: 0, delayed: 1, implemented: 1, cancelled: 0, terminated: 0 } });
    expect(Object.keys(d.agreements.bySector).sort()).toEqual(['air_transport', 'culture', 'economy', 'energy', 'health', 'science']);
    expect(d.commitments).toEqual({
      total: 11,
      byStatus: { pending: 5, in_progress: 2, delayed: 1, implemented: 2, cancelled: 1 },
      overdue: 2,
    });
  });

  it('lists the upcoming scheduled reviews, soonest first, up to the number asked', async () => {
    expect((await queries.dashboard(NOW)).upcomingReviews.map((r) => r.id)).toEqual(['april-review', 'june-review']);
    expect((await queries.dashboard(NOW, 1)).upcomingReviews.map((r) => r.id)).toEqual(['april-review']);
    expect((await queries.dashboard('2026-05-01T00:00:00.000Z')).upcomingReviews.map((r) => r.id)).toEqual(['june-review']);
  });
});
