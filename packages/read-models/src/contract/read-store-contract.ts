// The contract every ReadStore adapter passes. Written once; each adapter's spec calls it with a
// factory handing out an empty store of its own (its own key namespace, on a shared server) and a
// cleanup. Stores are filled only through the port: events decided by the domain deciders, folded
// by projectBatch, committed with their checkpoint. Expected answers are written out by hand for a
// small ledger and, for a generated one, taken from the reference scan queries over the very
// documents committed. Nothing relies on the adapter keeping state in this process except
// onCommit, which the port defines as same-process.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '@cm/domain';
import { comparePositions, type Position } from '@cm/event-store';
import type { AgreementDoc, ProjectionChanges, ReviewDoc } from '../documents.js';
import { agreementFilter, commitmentFilter, createScanQueries, reviewFilter, type Page } from '../queries.js';
import { CheckpointMismatchError, type ReadStore } from '../read-store.js';
import { createDecidedLedger, type DecidedLedger } from '../testing/decided-ledger.js';

export type ReadStoreFactory = () => Promise<{ store: ReadStore; cleanup(): Promise<void> }>;

const NOW = '2026-03-15T12:00:00.000Z';
const JULY = '2026-07-01T00:00:00.000Z';
const CIAN_XIX = { name: 'CIAN XIX', date: '2025-11-28' };
const CIAN_XVIII = { name: 'CIAN XVIII', date: '2025-06-15' };

const MARCH = '2026-03-10T09:00:00.000Z';
const APRIL = '2026-04-20T09:00:00.000Z';
const MAY = '2026-05-15T09:00:00.000Z';
const JUNE = '2026-06-01T09:00:00.000Z';

/**
 * Seven agreements and five reviews; as of NOW:
 *   health-protocol    2026-01-20 health        RUS BLR        implemented
 *   air-services       2025-11-28 air_transport VEN RUS  XIX   signed
 *   health-cooperation 2025-11-28 health        VEN RUS  XIX   delayed (vaccines overdue since 2026-03-01)
 *   science-programme  2025-11-28 science       VEN RUS  XIX   in_implementation
 *   culture-exchange   2025-06-15 culture       VEN CUB  XVIII signed (exhibit cancelled)
 *   energy-memorandum  2025-06-15 energy        VEN CUB  XVIII delayed (pipeline delayed)
 *   trade-contract     2024-10-01 economy       VEN RUS  XVII  terminated
 * Written in another order than any listing, so order is the store's doing; committed in two
 * batches, as a projector would.
 */
async function writeSmallLedger(l: DecidedLedger): Promise<void> {
  await l.sign('science-programme', {
    title: 'Programme of Scientific Cooperation', sector: 'science', parties: ['VEN', 'RUS'], signedAt: '2025-11-28', session: CIAN_XIX,
    commitments: [
      { id: 'lab', dueDate: '2026-12-31', party: 'RUS', institution: 'Russian Academy of Sciences' },
      { id: 'clinic', dueDate: '2026-06-30', party: 'RUS', institution: 'Ministry of Health of Russia' },
    ],
  });
  await l.progress('science-programme', 'lab', 20);

  await l.sign('trade-contract', {
    title: 'Contract on Grain Supply', sector: 'economy', parties: ['VEN', 'RUS'], signedAt: '2024-10-01', session: { name: 'CIAN XVII', date: '2024-10-01' },
    commitments: [{ id: 'grain', dueDate: '2025-12-31', institution: 'Corporación Venezolana de Comercio Exterior' }],
  });
  await l.terminate('trade-contract');

  await l.sign('health-cooperation', {
    title: 'Acuerdo de Cooperación en Salud', sector: 'health', parties: ['VEN', 'RUS'], signedAt: '2025-11-28', session: CIAN_XIX,
    commitments: [
      { id: 'clinic', dueDate: '2026-06-30', institution: 'Ministerio del Poder Popular para la Salud' },
      { id: 'vaccines', dueDate: '2026-02-28', party: 'RUS', institution: 'Gamaleya Centre' },
    ],
  });
  await l.progress('health-cooperation', 'clinic', 40);

  await l.sign('energy-memorandum', {
    title: 'Memorandum on Energy', kind: 'memorandum', sector: 'energy', parties: ['VEN', 'CUB'], signedAt: '2025-06-15', session: CIAN_XVIII,
    commitments: [
      { id: 'pipeline', dueDate: '2026-01-31', institution: 'PDVSA' },
      { id: 'study', dueDate: '2025-12-15', party: 'CUB', institution: 'Unión Eléctrica' },
    ],
  });
  await l.delay('energy-memorandum', 'pipeline', '2026-10-31');
  await l.implement('energy-memorandum', 'study');

  await l.sign('health-protocol', {
    title: 'Protocol on Medicines', kind: 'protocol', sector: 'health', parties: ['RUS', 'BLR'], signedAt: '2026-01-20',
    commitments: [{ id: 'registry', dueDate: '2026-05-31', party: 'RUS', institution: 'Roszdravnadzor' }],
  });
  await l.implement('health-protocol', 'registry');

  await l.sign('air-services', {
    title: 'Air Services Agreement', sector: 'air_transport', parties: ['VEN', 'RUS'], signedAt: '2025-11-28', session: CIAN_XIX,
    commitments: [{ id: 'route', dueDate: '2026-09-30', institution: 'Instituto Nacional de Aeronáutica Civil' }],
  });

  await l.sign('culture-exchange', {
    title: 'Programa de intercambio cultural', kind: 'programme', sector: 'culture', parties: ['VEN', 'CUB'], signedAt: '2025-06-15', session: CIAN_XVIII,
    commitments: [
      { id: 'festival', dueDate: '2026-06-30', institution: 'Ministerio de Cultura' },
      { id: 'exhibit', dueDate: '2026-04-30', party: 'CUB', institution: 'Museo Nacional' },
    ],
  });
  await l.cancel('culture-exchange', 'exhibit');

  // june-review moves from March to June; april-board shares april-review's instant and sorts first by id.
  await l.schedule('june-review', '2026-03-30T09:00:00.000Z', ['science-programme', 'health-cooperation']);
  await l.schedule('march-review', MARCH, ['health-cooperation']);
  await l.schedule('april-review', APRIL, ['health-cooperation', 'air-services']);
  await l.schedule('may-review', MAY, ['energy-memorandum']);
  await l.schedule('april-board', APRIL, ['trade-contract', 'culture-exchange']);
  await l.reschedule('june-review', JUNE);
  await l.hold('march-review', MARCH, [{ agreementId: 'health-cooperation', rating: 'at_risk' }]);
  await l.cancelReview('may-review');
  await l.remind('april-review', APRIL, 'desk@example.org', '2026-04-13T09:00:00.000Z');
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

const ALL_REVIEWS = ['march-review', 'april-board', 'april-review', 'may-review', 'june-review'];

const ZERO_AGREEMENTS = { signed: 0, in_implementation: 0, delayed: 0, implemented: 0, cancelled: 0, terminated: 0 };
const ZERO_COMMITMENTS = { pending: 0, in_progress: 0, delayed: 0, implemented: 0, cancelled: 0 };
const NO_CHANGES = (): ProjectionChanges => ({ agreements: new Map(), reviews: new Map() });

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function waitUntil(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Every page of a list, following nextCursor; bounded, so a cursor that never runs out fails. */
async function walk<T>(page: (cursor: string | undefined) => Promise<Page<T>>): Promise<{ pages: T[][]; totals: number[] }> {
  const pages: T[][] = [];
  const totals: number[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const p = await page(cursor);
    pages.push(p.items);
    totals.push(p.total);
    if (p.nextCursor === null) return { pages, totals };
    cursor = p.nextCursor;
  }
  throw new Error('the cursor never ran out');
}

/** Page sizes of a full walk: full pages, then the rest; never an empty page after a full one. */
const pageSizes = (n: number, limit: number) => (n === 0 ? [0] : Array.from({ length: Math.ceil(n / limit) }, (_, i) => Math.min(limit, n - i * limit)));

const byAgreementId = (docs: AgreementDoc[]) => [...docs].sort((a, b) => (a.agreement.id < b.agreement.id ? -1 : 1));
const byReviewId = (docs: ReviewDoc[]) => [...docs].sort((a, b) => (a.review.id < b.review.id ? -1 : 1));

export function readStoreContract(name: string, factory: ReadStoreFactory): void {
  describe(`ReadStore contract: ${name}`, () => {
    let store: ReadStore;
    let cleanup: () => Promise<void>;
    let ledger: DecidedLedger;

    beforeEach(async () => {
      ({ store, cleanup } = await factory());
      ledger = createDecidedLedger();
    });
    afterEach(async () => {
      await cleanup();
    });

    const agreements = (f: Record<string, unknown>, now = NOW) => store.listAgreements(agreementFilter.parse(f), now);
    const agreementIds = async (f: Record<string, unknown>, now = NOW) => (await agreements(f, now)).items.map((a) => a.id);
    const commitments = (f: Record<string, unknown>, now = NOW) => store.listCommitments(commitmentFilter.parse(f), now);
    const commitmentKeys = async (f: Record<string, unknown>, now = NOW) =>
      (await commitments(f, now)).items.map((c) => `${c.agreementId}/${c.id}`);
    const reviewIds = async (f: Record<string, unknown>) => (await store.listReviews(reviewFilter.parse(f))).items.map((r) => r.id);
    const upcoming = async (now: string, n?: number) => (await store.dashboard(now, n)).upcomingReviews.map((r) => r.id);
    /** The reference semantics over the documents committed, not over what the store hands back. */
    const reference = () => createScanQueries({
      allAgreements: async () => [...ledger.documents.agreements.values()],
      allReviews: async () => [...ledger.documents.reviews.values()],
    });

    describe('an empty store', () => {
      it('has no checkpoint, no documents, empty lists and a dashboard of zeros', async () => {
        expect(await store.checkpoint()).toBeNull();
        expect(await store.allAgreements()).toEqual([]);
        expect(await store.allReviews()).toEqual([]);
        expect((await store.getAgreements(['air-services'])).size).toBe(0);
        expect((await store.getReviews(['april-review'])).size).toBe(0);
        expect(await agreements({})).toEqual({ items: [], total: 0, nextCursor: null });
        expect(await agreements({ status: 'signed', sector: 'health' })).toEqual({ items: [], total: 0, nextCursor: null });
        expect(await commitments({})).toEqual({ items: [], total: 0, nextCursor: null });
        expect(await commitments({ overdue: 'true' })).toEqual({ items: [], total: 0, nextCursor: null });
        expect(await store.listReviews(reviewFilter.parse({}))).toEqual({ items: [] });
        expect(await store.dashboard(NOW)).toEqual({
          agreements: { total: 0, byStatus: ZERO_AGREEMENTS, bySector: {} },
          commitments: { total: 0, byStatus: ZERO_COMMITMENTS, overdue: 0 },
          upcomingReviews: [],
          awaitingRatification: {},
          milestones: { total: 0, scheduled: 0, met: 0, partially_met: 0, not_met: 0 },
        });
      });
    });

    describe('lifecycle and relative due dates', () => {
      const VEN_RUS = { sector: 'energy', parties: ['VEN', 'RUS'], signedAt: '2025-11-28' };
      const ninety = { relativeTo: 'entry_into_force' as const, days: 90 };
      /**
       * awaiting   signed, VEN ratified (RUS awaited), one commitment due 90 days after entry into force
       * ratified   in force on the last ratification (2025-12-10): its commitment due 2026-03-10
       * provisional applied provisionally, nobody ratified
       * paused     in force on signature, suspended
       * ended      in force on signature, expired
       * noticed    in force on signature, denounced by RUS (the ledger's notices take effect in the year 9000)
       * over       in force on signature, terminated by both parties
       */
      async function writeLifecycles(): Promise<void> {
        await ledger.sign('awaiting', { ...VEN_RUS, title: 'Awaiting', commitments: [{ id: 'later', dueDate: ninety }, { id: 'dated', dueDate: '2026-02-01' }] });
        await ledger.ratify('awaiting', 'VEN', '2025-12-01');
        await ledger.sign('ratified', { ...VEN_RUS, title: 'Ratified', commitments: [{ id: 'later', dueDate: ninety }] });
        await ledger.ratify('ratified', 'RUS', '2025-12-02');
        await ledger.ratify('ratified', 'VEN', '2025-12-10');
        await ledger.sign('provisional', { ...VEN_RUS, title: 'Provisional' });
        await ledger.applyProvisionally('provisional', '2025-12-01');
        await ledger.sign('paused', { ...VEN_RUS, title: 'Paused', entryIntoForce: 'on_signature' });
        await ledger.suspend('paused', '2025-12-15');
        await ledger.sign('ended', { ...VEN_RUS, title: 'Ended', entryIntoForce: 'on_signature' });
        await ledger.expire('ended', '2025-12-20');
        await ledger.sign('noticed', { ...VEN_RUS, title: 'Noticed', entryIntoForce: 'on_signature' });
        await ledger.denounce('noticed', 'RUS');
        await ledger.sign('over', { ...VEN_RUS, title: 'Over', entryIntoForce: 'on_signature' });
        await ledger.terminate('over');
        await ledger.commitTo(store, { batchSize: 4 });
      }

      it('filters by lifecycle, a denunciation ending an agreement in force by the clock alone', async () => {
        await writeLifecycles();
        const byLifecycle = async (now: string) => Object.fromEntries(await Promise.all(
          ['signed', 'provisionally_applied', 'in_force', 'suspended', 'terminated', 'expired'].map(async (lc) => [lc, (await agreementIds({ lifecycle: lc }, now)).sort()]),
        ));
        expect(await byLifecycle(NOW)).toEqual({
          signed: ['awaiting'], provisionally_applied: ['provisional'], in_force: ['noticed', 'ratified'], suspended: ['paused'], terminated: ['over'], expired: ['ended'],
        });
        const effect = '9000-07-01T00:00:00.000Z';
        expect(await byLifecycle(effect)).toMatchObject({ in_force: ['ratified'], terminated: ['noticed', 'over'] });
        expect(await agreementIds({ lifecycle: 'in_force', sector: 'energy' }, effect)).toEqual(['ratified']);
        for (const now of [NOW, effect]) {
          for (const lifecycle of ['in_force', 'terminated', 'signed']) {
            const f = agreementFilter.parse({ lifecycle });
            expect(await store.listAgreements(f, now)).toEqual(await reference().listAgreements(f, now));
          }
        }
      });

      it('counts milestones by status on the dashboard, across commits that change them', async () => {
        await writeLifecycles();
        await ledger.milestone('ratified', 'later', 'design', 40);
        await ledger.milestone('ratified', 'later', 'build', 60);
        await ledger.milestone('awaiting', 'dated', 'survey', 100);
        await ledger.commitTo(store);
        await ledger.milestoneStatus('ratified', 'later', 'design', 'met');
        await ledger.milestoneStatus('awaiting', 'dated', 'survey', 'partially_met');
        await ledger.commitTo(store, { batchSize: 1 });
        await ledger.milestoneStatus('awaiting', 'dated', 'survey', 'not_met');
        await ledger.commitTo(store);
        const dash = await store.dashboard(NOW);
        expect(dash.milestones).toEqual({ total: 3, scheduled: 1, met: 1, partially_met: 0, not_met: 1 });
        expect(dash).toEqual(await reference().dashboard(NOW));
        const later = (await commitments({ agreementId: 'ratified' })).items[0]!;
        expect([later.milestones.map((m) => m.status), later.milestoneProgress]).toEqual([['met', 'scheduled'], 40]);
      });

      it('shows per party the agreements awaiting its ratification on the dashboard', async () => {
        await writeLifecycles();
        const dash = await store.dashboard(NOW);
        expect(dash.awaitingRatification).toEqual({
          RUS: { count: 2, agreementIds: ['awaiting', 'provisional'] },
          VEN: { count: 1, agreementIds: ['provisional'] },
        });
        expect(dash).toEqual(await reference().dashboard(NOW));
      });

      it('lists a pending due date after every date, never overdue, outside dueBefore and dueAfter', async () => {
        await writeLifecycles();
        const all = await commitments({}, JULY);
        expect(all.items.map((c) => [`${c.agreementId}/${c.id}`, c.dueDate, c.dueRule])).toEqual([
          ['awaiting/dated', '2026-02-01', null],
          ['ratified/later', '2026-03-10', ninety],
          ['awaiting/later', null, ninety],
        ]);
        expect(await commitmentKeys({ overdue: 'true' }, JULY)).toEqual(['awaiting/dated', 'ratified/later']);
        expect(await commitmentKeys({ overdue: 'false' }, JULY)).toEqual(['awaiting/later']);
        expect(await commitmentKeys({ dueAfter: '2026-01-01' }, JULY)).toEqual(['awaiting/dated', 'ratified/later']);
        expect(await commitmentKeys({ dueBefore: '2027-01-01' }, JULY)).toEqual(['awaiting/dated', 'ratified/later']);
        const page = await commitments({ limit: 2 }, JULY);
        expect((await commitments({ limit: 2, cursor: page.nextCursor }, JULY)).items.map((c) => c.id)).toEqual(['later']);
        for (const f of [{}, { overdue: 'true' }, { overdue: 'false' }, { dueAfter: '2026-01-01' }, { dueBefore: '2027-01-01' }]) {
          const parsed = commitmentFilter.parse(f);
          expect(await store.listCommitments(parsed, JULY)).toEqual(await reference().listCommitments(parsed, JULY));
        }
        // The awaiting agreement is delayed only by its dated commitment, never by the pending one.
        expect((await store.dashboard(JULY)).commitments.overdue).toBe(2);
      });
    });

    describe('commit', () => {
      it('writes the documents and moves the checkpoint in the same commit', async () => {
        await ledger.sign('air-services', {
          title: 'Air Services Agreement', sector: 'air_transport', parties: ['VEN', 'RUS'], signedAt: '2025-11-28',
          commitments: [{ id: 'route', dueDate: '2026-09-30' }],
        });
        await ledger.schedule('april-review', APRIL, ['air-services']);
        const head = await ledger.commitTo(store);

        expect(head).toBe('3');
        expect(await store.checkpoint()).toBe(head);
        expect(await store.allAgreements()).toEqual([ledger.documents.agreements.get('air-services')]);
        expect(await store.allReviews()).toEqual([ledger.documents.reviews.get('april-review')]);
        const doc = (await store.getAgreements(['air-services'])).get('air-services')!;
        expect(doc).toMatchObject({ revision: 1, position: '2', reviews: [{ id: 'april-review', scheduledFor: APRIL, status: 'scheduled' }] });
        expect(doc.agreement.commitments.map((c) => c.id)).toEqual(['route']);
        expect(await agreementIds({})).toEqual(['air-services']);
      });

      it('moves the checkpoint alone when a batch changes no document', async () => {
        await writeSmallLedger(ledger);
        await ledger.commitTo(store);
        const before = byAgreementId(await store.allAgreements());

        await store.commit(NO_CHANGES(), '1000', { from: ledger.head() });

        expect(await store.checkpoint()).toBe('1000');
        expect(byAgreementId(await store.allAgreements())).toEqual(before);
        expect(await agreementIds({})).toEqual(ALL_AGREEMENTS);
      });

      it('keeps a checkpoint beyond 2^53 exactly, as the opaque decimal string it was given', async () => {
        await store.commit(NO_CHANGES(), '90071992547409930', { from: null });
        expect(await store.checkpoint()).toBe('90071992547409930');
        await store.commit(NO_CHANGES(), '18446744073709551615', { from: '90071992547409930' });
        expect(await store.checkpoint()).toBe('18446744073709551615');
      });

      it('hands back every document as it was committed, deep-equal', async () => {
        await writeSmallLedger(ledger);
        await ledger.commitTo(store, { batchSize: 20 });
        expect(await store.checkpoint()).toBe(ledger.head());
        expect(byAgreementId(await store.allAgreements())).toEqual(byAgreementId([...ledger.documents.agreements.values()]));
        expect(byReviewId(await store.allReviews())).toEqual(byReviewId([...ledger.documents.reviews.values()]));
        expect(await store.allAgreements()).toHaveLength(7);
        expect(await store.allReviews()).toHaveLength(5);
      });
    });

    describe('a batch proves where it starts', () => {
      /** The store as a projector would see it, but every batch claims to start after `from`. */
      const startingAfter = (from: Position | null): ReadStore => ({
        ...store,
        commit: (changes, checkpoint, o) => store.commit(changes, checkpoint, { ...o, from }),
      });
      const everything = async () => ({
        checkpoint: await store.checkpoint(),
        agreements: byAgreementId(await store.allAgreements()),
        reviews: byReviewId(await store.allReviews()),
        dashboard: await store.dashboard(NOW),
        commitments: await commitments({ limit: 100 }),
      });

      it('refuses a batch that does not start at the stored checkpoint, and writes nothing of it', async () => {
        await writeSmallLedger(ledger);
        await ledger.commitTo(store, { events: 20 });
        const before = await everything();
        expect(before.checkpoint).toBe('20');

        for (const from of ['19', '21', null]) {
          const err = await caught(ledger.commitTo(startingAfter(from), { events: 10 }));
          expect(err, String(from)).toBeInstanceOf(CheckpointMismatchError);
          expect(err).toMatchObject({ from, to: '30', stored: '20' });
          expect(await everything()).toEqual(before);
        }
        // The batch that does start there goes through.
        await ledger.commitTo(store, { events: 10 });
        expect(await store.checkpoint()).toBe('30');
        expect(byAgreementId(await store.allAgreements())).toEqual(byAgreementId([...ledger.documents.agreements.values()]));
      });

      it('refuses a batch that starts after a position an empty store never reached', async () => {
        await writeSmallLedger(ledger);
        const err = await caught(ledger.commitTo(startingAfter('7')));
        expect(err).toBeInstanceOf(CheckpointMismatchError);
        expect(err).toMatchObject({ from: '7', stored: null });
        expect(await store.checkpoint()).toBeNull();
        expect(await store.allAgreements()).toEqual([]);
        expect((await store.dashboard(NOW)).commitments.total).toBe(0);
      });

      it('takes a batch already applied (a retry, or a previous writer went further) as done, changing nothing', async () => {
        await writeSmallLedger(ledger);
        await ledger.commitTo(store, { events: 20, batchSize: 10 });
        const before = await everything();

        // The last batch again (its first attempt's answer was lost), and ones the store is already past.
        await store.commit({ agreements: new Map(ledger.documents.agreements), reviews: new Map(ledger.documents.reviews) }, '20', { from: '10' });
        await store.commit(NO_CHANGES(), '15', { from: '12' });
        await store.commit(NO_CHANGES(), '15', { from: null });
        expect(await everything()).toEqual(before);
      });
    });

    describe('with the small ledger committed', () => {
      beforeEach(async () => {
        await writeSmallLedger(ledger);
        await ledger.commitTo(store, { batchSize: 20 });
      });

      describe('documents by id', () => {
        it('getAgreements answers exactly the asked ids that exist', async () => {
          const found = await store.getAgreements(new Set(['trade-contract', 'no-such-agreement', 'air-services']));
          expect([...found.keys()].sort()).toEqual(['air-services', 'trade-contract']);
          expect(found.get('air-services')).toEqual(ledger.documents.agreements.get('air-services'));
          expect(found.get('trade-contract')).toEqual(ledger.documents.agreements.get('trade-contract'));

          expect((await store.getAgreements([])).size).toBe(0);
          expect([...(await store.getAgreements(['air-services', 'air-services'])).keys()]).toEqual(['air-services']);
          // Reviews and agreements are apart: a review id is no agreement.
          expect((await store.getAgreements(['april-review'])).size).toBe(0);
          const all = await store.getAgreements(ALL_AGREEMENTS);
          expect([...all.keys()].sort()).toEqual([...ALL_AGREEMENTS].sort());
        });

        it('getReviews answers exactly the asked ids that exist', async () => {
          const found = await store.getReviews(new Set(['june-review', 'nope-review', 'march-review']));
          expect([...found.keys()].sort()).toEqual(['june-review', 'march-review']);
          expect(found.get('june-review')).toEqual(ledger.documents.reviews.get('june-review'));
          expect(found.get('march-review')!.review).toMatchObject({ status: 'held', heldAt: MARCH });
          expect(found.get('june-review')!.review).toMatchObject({ scheduledFor: JUNE, sequence: 1 });

          expect((await store.getReviews([])).size).toBe(0);
          expect((await store.getReviews(['air-services'])).size).toBe(0);
          expect((await store.getReviews(['april-review'])).get('april-review')!.review.reminders).toEqual([
            { scheduledFor: APRIL, offset: '7d', email: 'desk@example.org', sentAt: '2026-04-13T09:00:00.000Z' },
          ]);
        });
      });

      describe('listAgreements', () => {
        it('lists the newest signature first, then by id, with the total and no cursor on the last page', async () => {
          const page = await agreements({});
          expect(page.items.map((a) => a.id)).toEqual(ALL_AGREEMENTS);
          expect(page.total).toBe(7);
          expect(page.nextCursor).toBeNull();
        });

        it('shows each agreement summarised as of the instant asked', async () => {
          const page = await agreements({});
          expect(Object.fromEntries(page.items.map((a) => [a.id, a.status]))).toEqual({
            'health-protocol': 'implemented',
            'air-services': 'signed',
            'health-cooperation': 'delayed',
            'science-programme': 'in_implementation',
            'culture-exchange': 'signed',
            'energy-memorandum': 'delayed',
            'trade-contract': 'terminated',
          });
          expect(page.items.find((a) => a.id === 'health-cooperation')).toMatchObject({
            title: 'Acuerdo de Cooperación en Salud',
            kind: 'agreement',
            sector: 'health',
            parties: ['VEN', 'RUS'],
            signedAt: '2025-11-28',
            session: CIAN_XIX,
            progress: 20,
            commitmentCounts: { total: 2, pending: 1, in_progress: 1, delayed: 0, implemented: 0, cancelled: 0, overdue: 1 },
            nextReviewAt: APRIL,
            lastReviewedAt: MARCH,
            revision: 4,
            updatedAt: ledger.documents.agreements.get('health-cooperation')!.updatedAt,
          });
          expect(page.items.find((a) => a.id === 'health-protocol')).toMatchObject({ session: null, nextReviewAt: null, progress: 100 });
          expect(page.items).toEqual((await reference().listAgreements(agreementFilter.parse({}), NOW)).items);
        });

        it('filters by sector, party and session', async () => {
          expect(await agreementIds({ sector: 'health' })).toEqual(['health-protocol', 'health-cooperation']);
          expect(await agreementIds({ sector: 'mining' })).toEqual([]);
          expect(await agreementIds({ party: 'CUB' })).toEqual(['culture-exchange', 'energy-memorandum']);
          expect(await agreementIds({ party: 'BLR' })).toEqual(['health-protocol']);
          expect(await agreementIds({ party: 'RUS' })).toEqual(['health-protocol', 'air-services', 'health-cooperation', 'science-programme', 'trade-contract']);
          expect(await agreementIds({ session: 'CIAN XIX' })).toEqual(['air-services', 'health-cooperation', 'science-programme']);
          expect(await agreementIds({ session: 'CIAN XVIII' })).toEqual(['culture-exchange', 'energy-memorandum']);
          // The session is matched by its whole name.
          expect(await agreementIds({ session: 'CIAN' })).toEqual([]);
          expect(await agreementIds({ session: 'CIAN XVIII', party: 'CUB', sector: 'energy' })).toEqual(['energy-memorandum']);
          const page = await agreements({ party: 'RUS', sector: 'health' });
          expect(page.items.map((a) => a.id)).toEqual(['health-protocol', 'health-cooperation']);
          expect(page.total).toBe(2);
        });

        it('filters by status as of the instant asked', async () => {
          expect(await agreementIds({ status: 'delayed' })).toEqual(['health-cooperation', 'energy-memorandum']);
          expect(await agreementIds({ status: 'signed' })).toEqual(['air-services', 'culture-exchange']);
          expect(await agreementIds({ status: 'in_implementation' })).toEqual(['science-programme']);
          expect(await agreementIds({ status: 'implemented' })).toEqual(['health-protocol']);
          expect(await agreementIds({ status: 'terminated' })).toEqual(['trade-contract']);
          const page = await agreements({ status: 'delayed', sector: 'health' });
          expect(page.items.map((a) => a.id)).toEqual(['health-cooperation']);
          expect(page.total).toBe(1);
        });

        it('moves an agreement from in_implementation to delayed when a due date passes, with no commit in between', async () => {
          const checkpoint = await store.checkpoint();
          const lastDay = '2026-02-28T23:59:59.999Z';
          const nextDay = '2026-03-01T00:00:00.000Z';
          expect(await agreementIds({ status: 'in_implementation' }, lastDay)).toEqual(['health-cooperation', 'science-programme']);
          expect(await agreementIds({ status: 'delayed' }, lastDay)).toEqual(['energy-memorandum']);
          expect(await agreementIds({ status: 'in_implementation' }, nextDay)).toEqual(['science-programme']);
          expect(await agreementIds({ status: 'delayed' }, nextDay)).toEqual(['health-cooperation', 'energy-memorandum']);
          expect((await agreements({ status: 'delayed' }, nextDay)).total).toBe(2);
          // Once the end of June passes, two more fall behind; air-services is due in September.
          expect(await agreementIds({ status: 'delayed' }, JULY)).toEqual(['health-cooperation', 'science-programme', 'culture-exchange', 'energy-memorandum']);
          expect(await agreementIds({ status: 'signed' }, JULY)).toEqual(['air-services']);
          expect(await agreementIds({ status: 'in_implementation' }, JULY)).toEqual([]);
          // The earlier instant still answers as before: nothing was stored by asking.
          expect(await agreementIds({ status: 'in_implementation' }, lastDay)).toEqual(['health-cooperation', 'science-programme']);
          expect(await store.checkpoint()).toBe(checkpoint);
          expect((await agreements({}, lastDay)).items.find((a) => a.id === 'health-cooperation')!.commitmentCounts.overdue).toBe(0);
        });

        it('matches q in the title whatever the accents and case', async () => {
          expect(await agreementIds({ q: 'cooperacion' })).toEqual(['health-cooperation']);
          expect(await agreementIds({ q: 'COOPERACIÓN' })).toEqual(['health-cooperation']);
          expect(await agreementIds({ q: 'cooperati' })).toEqual(['science-programme']);
          expect(await agreementIds({ q: 'coopera' })).toEqual(['health-cooperation', 'science-programme']);
          expect(await agreementIds({ q: 'Médicines' })).toEqual(['health-protocol']);
          expect(await agreementIds({ q: 'SALUD' })).toEqual(['health-cooperation']);
          expect(await agreementIds({ q: 'intercambio Cultural' })).toEqual(['culture-exchange']);
          // The title only: an institution's words do not match.
          expect(await agreementIds({ q: 'aeronáutica' })).toEqual([]);
          const page = await agreements({ q: 'coopera', status: 'delayed' });
          expect(page.items.map((a) => a.id)).toEqual(['health-cooperation']);
          expect(page.total).toBe(1);
        });

        it('walks every page with limits 1 to 3, without duplicates or gaps, the total on every page', async () => {
          for (const limit of [1, 2, 3]) {
            const { pages, totals } = await walk((cursor) => agreements({ limit, cursor }));
            expect(pages.flat().map((a) => a.id)).toEqual(ALL_AGREEMENTS);
            expect(pages.map((p) => p.length)).toEqual(pageSizes(7, limit));
            expect(totals.every((t) => t === 7)).toBe(true);
          }
          const filtered = await walk((cursor) => agreements({ party: 'RUS', limit: 2, cursor }));
          expect(filtered.pages.map((p) => p.map((a) => a.id))).toEqual([['health-protocol', 'air-services'], ['health-cooperation', 'science-programme'], ['trade-contract']]);
          expect(filtered.totals).toEqual([5, 5, 5]);
          expect((await agreements({ limit: 7 })).nextCursor).toBeNull();
          expect((await agreements({ limit: 6 })).nextCursor).not.toBeNull();
        });

        it('continues after the last item seen when agreements arrive between pages', async () => {
          const first = await agreements({ limit: 3 });
          expect(first.items.map((a) => a.id)).toEqual(['health-protocol', 'air-services', 'health-cooperation']);

          // One sorts before the cursor (newer), one after it (same date, later id).
          await ledger.sign('aaa-newest', { title: 'Newest', sector: 'health', parties: ['VEN', 'RUS'], signedAt: '2026-02-01' });
          await ledger.sign('health-zeta', { title: 'Zeta', sector: 'health', parties: ['VEN', 'RUS'], signedAt: '2025-11-28' });
          await ledger.commitTo(store);
          const second = await agreements({ limit: 3, cursor: first.nextCursor });

          expect(second.items.map((a) => a.id)).toEqual(['health-zeta', 'science-programme', 'culture-exchange']);
          expect(second.total).toBe(9);
          // An agreement without commitments is signed, whatever the instant.
          expect(await agreementIds({ status: 'signed' }, JULY)).toEqual(['aaa-newest', 'air-services', 'health-zeta']);
          expect((await store.dashboard(JULY)).agreements.bySector.health).toEqual({ total: 4, byStatus: { ...ZERO_AGREEMENTS, signed: 2, delayed: 1, implemented: 1 } });
        });

        it('refuses a cursor it did not hand out, naming the cursor', async () => {
          const commitmentCursor = (await commitments({ limit: 1 })).nextCursor!;
          const bad = [
            'not a cursor',
            '%%%',
            Buffer.from('{"a":1}').toString('base64url'),
            Buffer.from('[1,2]').toString('base64url'),
            commitmentCursor,
          ];
          for (const cursor of bad) {
            const err = await caught(agreements({ cursor }));
            expect(err, cursor).toBeInstanceOf(ValidationError);
            expect((err as ValidationError).errors.map((e) => e.path)).toEqual(['cursor']);
          }
        });
      });

      describe('listCommitments', () => {
        it('lists every commitment by due date, then id, then agreement, with agreement title and sector', async () => {
          const page = await commitments({});
          expect(page.items.map((c) => `${c.agreementId}/${c.id}`)).toEqual(ALL_COMMITMENTS);
          expect(page.total).toBe(11);
          expect(page.nextCursor).toBeNull();
          expect(page.items[2]).toMatchObject({
            id: 'vaccines', agreementId: 'health-cooperation', agreementTitle: 'Acuerdo de Cooperación en Salud', sector: 'health',
            status: 'pending', overdue: true, dueDate: '2026-02-28', responsible: { party: 'RUS', institution: 'Gamaleya Centre' },
          });
          expect(page.items[9]).toMatchObject({
            id: 'pipeline', status: 'delayed', overdue: false, dueDate: '2026-10-31', originalDueDate: '2026-01-31',
            delays: [{ previousDueDate: '2026-01-31', newDueDate: '2026-10-31', reason: 'funding arrived late' }],
          });
          expect(page.items).toEqual((await reference().listCommitments(commitmentFilter.parse({}), NOW)).items);
        });

        it('filters by status, party, sector and agreement', async () => {
          expect(await commitmentKeys({ status: 'pending' })).toEqual([
            'trade-contract/grain', 'health-cooperation/vaccines', 'science-programme/clinic', 'culture-exchange/festival', 'air-services/route',
          ]);
          expect(await commitmentKeys({ status: 'in_progress' })).toEqual(['health-cooperation/clinic', 'science-programme/lab']);
          expect(await commitmentKeys({ status: 'delayed' })).toEqual(['energy-memorandum/pipeline']);
          expect(await commitmentKeys({ status: 'implemented' })).toEqual(['energy-memorandum/study', 'health-protocol/registry']);
          expect(await commitmentKeys({ status: 'cancelled' })).toEqual(['culture-exchange/exhibit']);
          expect(await commitmentKeys({ party: 'CUB' })).toEqual(['energy-memorandum/study', 'culture-exchange/exhibit']);
          expect(await commitmentKeys({ party: 'RUS' })).toEqual([
            'health-cooperation/vaccines', 'health-protocol/registry', 'science-programme/clinic', 'science-programme/lab',
          ]);
          expect(await commitmentKeys({ party: 'BLR' })).toEqual([]);
          expect(await commitmentKeys({ sector: 'health' })).toEqual(['health-cooperation/vaccines', 'health-protocol/registry', 'health-cooperation/clinic']);
          expect(await commitmentKeys({ sector: 'science' })).toEqual(['science-programme/clinic', 'science-programme/lab']);
          expect(await commitmentKeys({ agreementId: 'energy-memorandum' })).toEqual(['energy-memorandum/study', 'energy-memorandum/pipeline']);
          expect(await commitmentKeys({ agreementId: 'no-such-agreement' })).toEqual([]);
          expect(await commitmentKeys({ party: 'RUS', status: 'in_progress' })).toEqual(['science-programme/lab']);
          const page = await commitments({ sector: 'health', status: 'pending' });
          expect(page.items.map((c) => c.id)).toEqual(['vaccines']);
          expect(page.total).toBe(1);
        });

        it('filters by overdue as of the instant asked', async () => {
          expect(await commitmentKeys({ overdue: 'true' })).toEqual(['trade-contract/grain', 'health-cooperation/vaccines']);
          expect(await commitmentKeys({ overdue: 'false' })).toEqual(ALL_COMMITMENTS.filter((k) => k !== 'trade-contract/grain' && k !== 'health-cooperation/vaccines'));
          expect((await commitments({ overdue: 'false' })).total).toBe(9);
          // Overdue from the day after the due date.
          expect(await commitmentKeys({ overdue: 'true' }, '2026-02-28T23:59:59.999Z')).toEqual(['trade-contract/grain']);
          expect(await commitmentKeys({ overdue: 'true' }, '2026-03-01T00:00:00.000Z')).toEqual(['trade-contract/grain', 'health-cooperation/vaccines']);
          expect(await commitmentKeys({ overdue: 'true' }, JULY)).toEqual([
            'trade-contract/grain', 'health-cooperation/vaccines', 'health-cooperation/clinic', 'science-programme/clinic', 'culture-exchange/festival',
          ]);
          expect((await commitments({ overdue: 'false' }, JULY)).total).toBe(6);
          expect(await commitmentKeys({ overdue: 'true', sector: 'health' }, JULY)).toEqual(['health-cooperation/vaccines', 'health-cooperation/clinic']);
          expect(await commitmentKeys({ overdue: 'true', status: 'in_progress' }, JULY)).toEqual(['health-cooperation/clinic']);
        });

        it('matches a part of the institution whatever the accents and case', async () => {
          expect(await commitmentKeys({ institution: 'MINISTERIO' })).toEqual(['health-cooperation/clinic', 'culture-exchange/festival']);
          expect(await commitmentKeys({ institution: 'union electrica' })).toEqual(['energy-memorandum/study']);
          expect(await commitmentKeys({ institution: 'Corporacion' })).toEqual(['trade-contract/grain']);
          expect(await commitmentKeys({ institution: 'AERONÁUTICA civil' })).toEqual(['air-services/route']);
          expect(await commitmentKeys({ institution: 'poder popular' })).toEqual(['health-cooperation/clinic']);
          expect(await commitmentKeys({ institution: 'ministry' })).toEqual(['science-programme/clinic']);
          expect(await commitmentKeys({ institution: 'Ministerio de Salud' })).toEqual([]);
          expect(await commitmentKeys({ institution: 'ministerio', status: 'pending' })).toEqual(['culture-exchange/festival']);
        });

        it('filters by due date, dueBefore and dueAfter excluding the date itself', async () => {
          expect(await commitmentKeys({ dueBefore: '2026-04-30' })).toEqual(['energy-memorandum/study', 'trade-contract/grain', 'health-cooperation/vaccines']);
          expect(await commitmentKeys({ dueAfter: '2026-06-30' })).toEqual(['air-services/route', 'energy-memorandum/pipeline', 'science-programme/lab']);
          expect(await commitmentKeys({ dueAfter: '2026-01-01', dueBefore: '2026-06-01' })).toEqual([
            'health-cooperation/vaccines', 'culture-exchange/exhibit', 'health-protocol/registry',
          ]);
          expect(await commitmentKeys({ dueAfter: '2026-06-29', dueBefore: '2026-07-01' })).toEqual([
            'health-cooperation/clinic', 'science-programme/clinic', 'culture-exchange/festival',
          ]);
          expect(await commitmentKeys({ dueAfter: '2026-06-30', dueBefore: '2026-06-30' })).toEqual([]);
          expect((await commitments({ dueBefore: '2026-04-30', overdue: 'false' })).total).toBe(1);
        });

        it('walks every page with limits 1 to 3, through commitments sharing a date and an id', async () => {
          for (const limit of [1, 2, 3]) {
            const { pages, totals } = await walk((cursor) => commitments({ limit, cursor }));
            expect(pages.flat().map((c) => `${c.agreementId}/${c.id}`)).toEqual(ALL_COMMITMENTS);
            expect(pages.map((p) => p.length)).toEqual(pageSizes(11, limit));
            expect(totals.every((t) => t === 11)).toBe(true);
          }
          // A page boundary between the two clinics: the cursor must tell them apart.
          const first = await commitments({ limit: 6 });
          expect(first.items.at(-1)).toMatchObject({ agreementId: 'health-cooperation', id: 'clinic' });
          const second = await commitments({ limit: 6, cursor: first.nextCursor });
          expect(second.items[0]).toMatchObject({ agreementId: 'science-programme', id: 'clinic' });
          expect(second.nextCursor).toBeNull();

          const pending = await walk((cursor) => commitments({ status: 'pending', limit: 2, cursor }));
          expect(pending.pages.map((p) => p.map((c) => `${c.agreementId}/${c.id}`))).toEqual([
            ['trade-contract/grain', 'health-cooperation/vaccines'], ['science-programme/clinic', 'culture-exchange/festival'], ['air-services/route'],
          ]);
          expect(pending.totals).toEqual([5, 5, 5]);
        });

        it('continues after the last item seen when commitments arrive between pages', async () => {
          const first = await commitments({ limit: 6 });
          // One sorts before the cursor, one between the two clinics already listed and to come.
          await ledger.add('air-services', { id: 'aaa-early', dueDate: '2025-11-28' });
          await ledger.add('health-protocol', { id: 'clinic', dueDate: '2026-06-30', party: 'RUS' });
          await ledger.commitTo(store);
          const second = await commitments({ limit: 3, cursor: first.nextCursor });
          expect(second.items.map((c) => `${c.agreementId}/${c.id}`)).toEqual([
            'health-protocol/clinic', 'science-programme/clinic', 'culture-exchange/festival',
          ]);
          expect(second.total).toBe(13);
        });

        it('refuses a cursor it did not hand out, naming the cursor', async () => {
          const agreementCursor = (await agreements({ limit: 1 })).nextCursor!;
          for (const cursor of ['%%%', 'not a cursor', Buffer.from('["a"]').toString('base64url'), agreementCursor]) {
            const err = await caught(commitments({ cursor }));
            expect(err, cursor).toBeInstanceOf(ValidationError);
            expect((err as ValidationError).errors.map((e) => e.path)).toEqual(['cursor']);
          }
        });
      });

      describe('listReviews', () => {
        it('lists every review by its current date, then id', async () => {
          const { items } = await store.listReviews(reviewFilter.parse({}));
          expect(items.map((r) => r.id)).toEqual(ALL_REVIEWS);
          expect(items.find((r) => r.id === 'april-review')).toMatchObject({
            title: 'Review april-review', scheduledFor: APRIL, status: 'scheduled', agreementIds: ['health-cooperation', 'air-services'],
            attendees: [{ email: 'desk@example.org' }, { email: 'minister@example.org', locale: 'es' }], location: null, heldAt: null, sequence: 0,
          });
          expect(items.find((r) => r.id === 'march-review')).toMatchObject({ status: 'held', heldAt: MARCH, summary: 'Reviewed' });
          expect(items.find((r) => r.id === 'may-review')).toMatchObject({ status: 'cancelled', cancellationReason: 'no quorum', sequence: 1 });
          expect(items).toEqual((await reference().listReviews(reviewFilter.parse({}))).items);
        });

        it('filters from and to, both inclusive, whatever the offset the instant is written in', async () => {
          expect(await reviewIds({ from: APRIL })).toEqual(['april-board', 'april-review', 'may-review', 'june-review']);
          expect(await reviewIds({ to: MAY })).toEqual(['march-review', 'april-board', 'april-review', 'may-review']);
          expect(await reviewIds({ from: APRIL, to: APRIL })).toEqual(['april-board', 'april-review']);
          expect(await reviewIds({ from: '2026-04-20T11:00:00+02:00', to: '2026-05-15T09:00Z' })).toEqual(['april-board', 'april-review', 'may-review']);
          expect(await reviewIds({ from: '2026-04-20T09:00:01Z' })).toEqual(['may-review', 'june-review']);
          expect(await reviewIds({ to: '2026-04-20T08:59:59.999Z' })).toEqual(['march-review']);
          expect(await reviewIds({ from: JUNE, to: MAY })).toEqual([]);
        });

        it('filters by status and by agreement in scope', async () => {
          expect(await reviewIds({ status: 'scheduled' })).toEqual(['april-board', 'april-review', 'june-review']);
          expect(await reviewIds({ status: 'held' })).toEqual(['march-review']);
          expect(await reviewIds({ status: 'cancelled' })).toEqual(['may-review']);
          expect(await reviewIds({ agreementId: 'health-cooperation' })).toEqual(['march-review', 'april-review', 'june-review']);
          expect(await reviewIds({ agreementId: 'trade-contract' })).toEqual(['april-board']);
          expect(await reviewIds({ agreementId: 'health-protocol' })).toEqual([]);
          expect(await reviewIds({ agreementId: 'health-cooperation', status: 'scheduled', to: MAY })).toEqual(['april-review']);
        });
      });

      describe('dashboard', () => {
        it('counts agreements by status and sector, and commitments by status and overdue, as of the instant', async () => {
          const d = await store.dashboard(NOW);
          expect(d.agreements).toEqual({
            total: 7,
            byStatus: { signed: 2, in_implementation: 1, delayed: 2, implemented: 1, cancelled: 0, terminated: 1 },
            bySector: {
              health: { total: 2, byStatus: { ...ZERO_AGREEMENTS, delayed: 1, implemented: 1 } },
              air_transport: { total: 1, byStatus: { ...ZERO_AGREEMENTS, signed: 1 } },
              science: { total: 1, byStatus: { ...ZERO_AGREEMENTS, in_implementation: 1 } },
              culture: { total: 1, byStatus: { ...ZERO_AGREEMENTS, signed: 1 } },
              energy: { total: 1, byStatus: { ...ZERO_AGREEMENTS, delayed: 1 } },
              economy: { total: 1, byStatus: { ...ZERO_AGREEMENTS, terminated: 1 } },
            },
          });
          expect(d.commitments).toEqual({ total: 11, byStatus: { pending: 5, in_progress: 2, delayed: 1, implemented: 2, cancelled: 1 }, overdue: 2 });

          const july = await store.dashboard(JULY);
          expect(july.agreements.byStatus).toEqual({ signed: 1, in_implementation: 0, delayed: 4, implemented: 1, cancelled: 0, terminated: 1 });
          expect(july.agreements.bySector.science).toEqual({ total: 1, byStatus: { ...ZERO_AGREEMENTS, delayed: 1 } });
          expect(july.commitments.overdue).toBe(5);
          expect(july.commitments.byStatus).toEqual(d.commitments.byStatus);
        });

        it('lists the upcoming scheduled reviews, soonest first, up to the number asked', async () => {
          const d = await store.dashboard(NOW);
          expect(d.upcomingReviews.map((r) => r.id)).toEqual(['april-board', 'april-review', 'june-review']);
          expect(d.upcomingReviews).toEqual((await reference().listReviews(reviewFilter.parse({ status: 'scheduled' }))).items);
          expect(await upcoming(NOW, 1)).toEqual(['april-board']);
          expect(await upcoming(NOW, 2)).toEqual(['april-board', 'april-review']);
          // Strictly after the instant: a review at the very instant asked is no longer upcoming.
          expect(await upcoming(APRIL)).toEqual(['june-review']);
          expect(await upcoming('2026-04-20T08:59:59.999Z')).toEqual(['april-board', 'april-review', 'june-review']);
          expect(await upcoming(JULY)).toEqual([]);
          // Held and cancelled reviews are never upcoming, even before their date.
          expect(await upcoming('2026-03-01T00:00:00.000Z')).toEqual(['april-board', 'april-review', 'june-review']);
        });

        it('shows at most ten upcoming reviews unless asked otherwise', async () => {
          for (let i = 0; i < 11; i++) await ledger.schedule(`extra-${String(i).padStart(2, '0')}`, `2026-08-${String(i + 1).padStart(2, '0')}T09:00:00.000Z`, ['air-services']);
          await ledger.commitTo(store);
          const ten = await upcoming(NOW);
          expect(ten).toEqual(['april-board', 'april-review', 'june-review', ...Array.from({ length: 7 }, (_, i) => `extra-0${i}`)]);
          expect(await upcoming(NOW, 14)).toHaveLength(14);
          expect((await upcoming(NOW, 100)).at(-1)).toBe('extra-10');
        });
      });

      describe('later commits replace documents', () => {
        it('a commitment implemented leaves the pending lists and its agreement changes status', async () => {
          expect(await commitmentKeys({ status: 'pending' })).toContain('air-services/route');
          await ledger.implement('air-services', 'route');
          await ledger.commitTo(store);

          expect(await commitmentKeys({ status: 'pending' })).toEqual([
            'trade-contract/grain', 'health-cooperation/vaccines', 'science-programme/clinic', 'culture-exchange/festival',
          ]);
          expect(await commitmentKeys({ status: 'implemented' })).toEqual(['energy-memorandum/study', 'health-protocol/registry', 'air-services/route']);
          expect((await commitments({})).total).toBe(11);
          expect(await agreementIds({ status: 'signed' })).toEqual(['culture-exchange']);
          expect(await agreementIds({ status: 'implemented' })).toEqual(['health-protocol', 'air-services']);
          expect((await agreements({})).total).toBe(7);
          const d = await store.dashboard(NOW);
          expect(d.commitments.byStatus).toEqual({ pending: 4, in_progress: 2, delayed: 1, implemented: 3, cancelled: 1 });
          expect(d.agreements.bySector.air_transport).toEqual({ total: 1, byStatus: { ...ZERO_AGREEMENTS, implemented: 1 } });
          expect((await store.getAgreements(['air-services'])).get('air-services')).toEqual(ledger.documents.agreements.get('air-services'));
        });

        it('an agreement terminated leaves status=delayed', async () => {
          await ledger.terminate('energy-memorandum');
          await ledger.commitTo(store);

          expect(await agreementIds({ status: 'delayed' })).toEqual(['health-cooperation']);
          expect(await agreementIds({ status: 'terminated' })).toEqual(['energy-memorandum', 'trade-contract']);
          expect(await agreementIds({ status: 'delayed' }, JULY)).toEqual(['health-cooperation', 'science-programme', 'culture-exchange']);
          expect(await agreementIds({ sector: 'energy' })).toEqual(['energy-memorandum']);
          const d = await store.dashboard(NOW);
          expect(d.agreements.byStatus).toEqual({ signed: 2, in_implementation: 1, delayed: 1, implemented: 1, cancelled: 0, terminated: 2 });
          expect(d.agreements.bySector.energy).toEqual({ total: 1, byStatus: { ...ZERO_AGREEMENTS, terminated: 1 } });
          // Its commitments keep their own status.
          expect(await commitmentKeys({ status: 'delayed' })).toEqual(['energy-memorandum/pipeline']);
        });

        it('a denounced agreement is terminated in lists and counts from its effectiveAt on, with no event', async () => {
          await ledger.denounce('energy-memorandum', 'VEN');
          await ledger.commitTo(store);
          const effectiveAt = (await store.getAgreements(['energy-memorandum'])).get('energy-memorandum')!.agreement.denunciation!.effectiveAt;
          const before = new Date(Date.parse(effectiveAt) - 1).toISOString();
          expect(await agreementIds({ status: 'terminated' }, before)).toEqual(['trade-contract']);
          expect((await store.dashboard(before)).agreements.byStatus.terminated).toBe(1);
          expect(await agreementIds({ status: 'terminated' }, effectiveAt)).toEqual(['energy-memorandum', 'trade-contract']);
          expect(await agreementIds({ status: 'delayed' }, effectiveAt)).not.toContain('energy-memorandum');
          const d = await store.dashboard(effectiveAt);
          expect(d.agreements.byStatus.terminated).toBe(2);
          expect(d.agreements.bySector.energy).toEqual({ total: 1, byStatus: { ...ZERO_AGREEMENTS, terminated: 1 } });
          expect(Object.values(d.agreements.byStatus).reduce((x, y) => x + y, 0)).toBe(d.agreements.total);
        });

        it('an agreement whose last open commitment is cancelled becomes cancelled, and is no longer delayed later', async () => {
          expect(await agreementIds({ status: 'delayed' }, JULY)).toContain('culture-exchange');
          await ledger.cancel('culture-exchange', 'festival');
          await ledger.commitTo(store);

          // Every commitment cancelled: nothing is left to implement, so it is cancelled, neither signed nor implemented.
          for (const now of [NOW, JULY]) {
            expect(await agreementIds({ status: 'signed' }, now)).toEqual(['air-services']);
            expect(await agreementIds({ status: 'cancelled' }, now)).toEqual(['culture-exchange']);
            expect(await agreementIds({ status: 'implemented' }, now)).toEqual(['health-protocol']);
          }
          expect(await agreementIds({ status: 'delayed' }, JULY)).toEqual(['health-cooperation', 'science-programme', 'energy-memorandum']);
          expect(await commitmentKeys({ status: 'cancelled' })).toEqual(['culture-exchange/exhibit', 'culture-exchange/festival']);
          expect(await commitmentKeys({ overdue: 'true' }, JULY)).not.toContain('culture-exchange/festival');
          expect((await store.dashboard(JULY)).commitments.overdue).toBe(4);
        });

        it('a commitment delayed moves to its new date, in order and in the date ranges', async () => {
          await ledger.delay('science-programme', 'clinic', '2026-08-31');
          await ledger.commitTo(store);

          const all = await commitmentKeys({});
          expect(all).toEqual([
            'energy-memorandum/study', 'trade-contract/grain', 'health-cooperation/vaccines', 'culture-exchange/exhibit', 'health-protocol/registry',
            'health-cooperation/clinic', 'culture-exchange/festival', 'science-programme/clinic', 'air-services/route', 'energy-memorandum/pipeline',
            'science-programme/lab',
          ]);
          expect(await commitmentKeys({ dueBefore: '2026-07-01', sector: 'science' })).toEqual([]);
          expect(await commitmentKeys({ dueAfter: '2026-07-01', dueBefore: '2026-09-01' })).toEqual(['science-programme/clinic']);
          expect(await commitmentKeys({ status: 'delayed' })).toEqual(['science-programme/clinic', 'energy-memorandum/pipeline']);
          expect(await commitmentKeys({ status: 'pending' })).not.toContain('science-programme/clinic');
          expect(await commitmentKeys({ overdue: 'true' }, JULY)).not.toContain('science-programme/clinic');
          expect(await agreementIds({ status: 'delayed' })).toEqual(['health-cooperation', 'science-programme', 'energy-memorandum']);
          expect(await agreementIds({ status: 'in_implementation' })).toEqual([]);
          expect((await commitments({})).total).toBe(11);
        });

        it('a commitment added appears in the lists and the counts', async () => {
          await ledger.add('air-services', { id: 'survey', dueDate: '2026-03-31', institution: 'Ministerio de Transporte' });
          await ledger.progress('air-services', 'survey', 10);
          await ledger.commitTo(store);

          expect(await commitmentKeys({ agreementId: 'air-services' })).toEqual(['air-services/survey', 'air-services/route']);
          expect(await commitmentKeys({ institution: 'ministerio' })).toEqual(['air-services/survey', 'health-cooperation/clinic', 'culture-exchange/festival']);
          expect((await commitments({})).total).toBe(12);
          expect(await agreementIds({ status: 'in_implementation' })).toEqual(['air-services', 'science-programme']);
          expect(await agreementIds({ status: 'delayed' }, '2026-04-01T00:00:00.000Z')).toEqual(['air-services', 'health-cooperation', 'energy-memorandum']);
          expect((await store.dashboard(NOW)).commitments).toEqual({ total: 12, byStatus: { pending: 5, in_progress: 3, delayed: 1, implemented: 2, cancelled: 1 }, overdue: 2 });
        });

        it('a rescheduled review moves between date ranges, and its agreements see the new date', async () => {
          const aprilRange = { from: '2026-04-01T00:00:00.000Z', to: '2026-04-30T23:59:59.999Z' };
          const julyRange = { from: '2026-07-01T00:00:00.000Z', to: '2026-07-31T23:59:59.999Z' };
          expect(await reviewIds(aprilRange)).toEqual(['april-board', 'april-review']);
          expect(await reviewIds(julyRange)).toEqual([]);

          await ledger.reschedule('april-review', '2026-07-10T09:00:00.000Z');
          await ledger.commitTo(store);

          expect(await reviewIds(aprilRange)).toEqual(['april-board']);
          expect(await reviewIds(julyRange)).toEqual(['april-review']);
          expect(await reviewIds({})).toEqual(['march-review', 'april-board', 'may-review', 'june-review', 'april-review']);
          expect((await store.listReviews(reviewFilter.parse(julyRange))).items[0]).toMatchObject({ scheduledFor: '2026-07-10T09:00:00.000Z', sequence: 1 });
          expect(await upcoming(NOW)).toEqual(['april-board', 'june-review', 'april-review']);
          const summaries = (await agreements({})).items;
          expect(summaries.find((a) => a.id === 'health-cooperation')!.nextReviewAt).toBe(JUNE);
          expect(summaries.find((a) => a.id === 'air-services')!.nextReviewAt).toBe('2026-07-10T09:00:00.000Z');
        });

        it('a cancelled review leaves the upcoming reviews and the scheduled list', async () => {
          expect(await upcoming(NOW)).toContain('june-review');
          await ledger.cancelReview('june-review');
          await ledger.commitTo(store);

          expect(await upcoming(NOW)).toEqual(['april-board', 'april-review']);
          expect(await upcoming(MAY)).toEqual([]);
          expect(await reviewIds({ status: 'scheduled' })).toEqual(['april-board', 'april-review']);
          expect(await reviewIds({ status: 'cancelled' })).toEqual(['may-review', 'june-review']);
          expect(await reviewIds({})).toEqual(ALL_REVIEWS);
          expect((await agreements({})).items.find((a) => a.id === 'science-programme')!.nextReviewAt).toBeNull();
        });

        it('a commit touching one agreement leaves every other document as it was', async () => {
          const before = byAgreementId(await store.allAgreements());
          const reviewsBefore = byReviewId(await store.allReviews());
          await ledger.progress('science-programme', 'clinic', 35);
          const head = await ledger.commitTo(store);

          expect(await store.checkpoint()).toBe(head);
          const after = byAgreementId(await store.allAgreements());
          expect(after).toHaveLength(7);
          for (const doc of after) {
            if (doc.agreement.id === 'science-programme') {
              expect(doc.revision).toBe(before.find((d) => d.agreement.id === 'science-programme')!.revision + 1);
              expect(doc).toEqual(ledger.documents.agreements.get('science-programme'));
            } else {
              expect(doc).toEqual(before.find((d) => d.agreement.id === doc.agreement.id));
            }
          }
          expect(byReviewId(await store.allReviews())).toEqual(reviewsBefore);
        });

        it('answers as the reference does after a run of changes', async () => {
          await ledger.implement('air-services', 'route');
          await ledger.terminate('energy-memorandum');
          await ledger.delay('science-programme', 'clinic', '2026-08-31');
          await ledger.reschedule('april-review', '2026-07-10T09:00:00.000Z');
          await ledger.cancelReview('june-review');
          await ledger.sign('mining-accord', {
            title: 'Acuerdo Minero', sector: 'mining', parties: ['VEN', 'CHN'], signedAt: '2026-02-15',
            commitments: [{ id: 'survey', dueDate: '2026-03-01', party: 'CHN', institution: 'China Geological Survey' }],
          });
          await ledger.commitTo(store, { batchSize: 2 });

          const ref = reference();
          for (const now of [NOW, JULY]) {
            for (const f of [{}, { status: 'delayed' }, { status: 'terminated' }, { sector: 'mining' }, { party: 'CHN' }]) {
              expect(await agreements(f, now), JSON.stringify(f)).toEqual(await ref.listAgreements(agreementFilter.parse(f), now));
            }
            for (const f of [{}, { status: 'pending' }, { overdue: 'true' }, { sector: 'mining' }, { dueAfter: '2026-07-01' }]) {
              expect(await commitments(f, now), JSON.stringify(f)).toEqual(await ref.listCommitments(commitmentFilter.parse(f), now));
            }
            expect(await store.dashboard(now)).toEqual(await ref.dashboard(now));
          }
          expect(await store.listReviews(reviewFilter.parse({}))).toEqual(await ref.listReviews(reviewFilter.parse({})));
          expect((await store.dashboard(NOW)).agreements.bySector.mining).toEqual({ total: 1, byStatus: { ...ZERO_AGREEMENTS, delayed: 1 } });
        });
      });
    });

    describe('onCommit', () => {
      it('calls a listener with each new checkpoint, once the commit can be read', async () => {
        const calls: Position[] = [];
        const seen: Promise<Position | null>[] = [];
        store.onCommit((cp) => {
          calls.push(cp);
          seen.push(store.checkpoint());
        });
        await writeSmallLedger(ledger);
        const last = String(ledger.pending());
        await ledger.commitTo(store, { batchSize: 20 });

        await waitUntil(() => calls.length >= 2);
        expect(calls).toEqual(['20', last]);
        // Read from inside the listener, the store already holds at least the checkpoint announced.
        const read = await Promise.all(seen);
        read.forEach((cp, i) => expect(comparePositions(cp, calls[i]!)).toBeGreaterThanOrEqual(0));
      });

      it('stops calling a listener once unsubscribed, and keeps calling the others', async () => {
        const gone: Position[] = [];
        const kept: Position[] = [];
        const off = store.onCommit((cp) => gone.push(cp));
        store.onCommit((cp) => kept.push(cp));
        await store.commit(NO_CHANGES(), '1', { from: null });
        await waitUntil(() => gone.length === 1 && kept.length === 1);

        off();
        await store.commit(NO_CHANGES(), '2', { from: '1' });
        await store.commit(NO_CHANGES(), '3', { from: '2' });
        await waitUntil(() => kept.length === 3);

        expect(kept).toEqual(['1', '2', '3']);
        expect(gone).toEqual(['1']);
      });
    });

    describe('the reference semantics, over a generated mixed ledger', () => {
      const AGREEMENT_FILTERS: Record<string, unknown>[] = [
        {},
        ...['signed', 'in_implementation', 'delayed', 'implemented', 'cancelled', 'terminated'].map((status) => ({ status })),
        ...['health', 'air_transport', 'science', 'energy', 'economy', 'culture', 'mining'].map((sector) => ({ sector })),
        ...['VEN', 'RUS', 'CUB', 'BLR', 'CHN'].map((party) => ({ party })),
        { session: 'CIAN XIX' },
        { q: 'COOPERACION' },
        { q: 'aviation' },
        { q: 'agreement 1' },
        { status: 'delayed', sector: 'health' },
        { party: 'CUB', status: 'in_implementation' },
        { session: 'CIAN XIX', q: 'trade', status: 'signed' },
        { party: 'RUS', sector: 'science', session: 'CIAN XIX' },
      ];
      const COMMITMENT_FILTERS: Record<string, unknown>[] = [
        {},
        ...['pending', 'in_progress', 'delayed', 'implemented', 'cancelled'].map((status) => ({ status })),
        { overdue: 'true' },
        { overdue: 'false' },
        ...['VEN', 'RUS', 'CUB', 'BLR', 'CHN'].map((party) => ({ party })),
        { institution: 'ministerio' },
        { institution: 'MINISTRY' },
        { institution: 'academia de ciencias' },
        { institution: 'PLANIFICACIÓN' },
        ...['health', 'energy', 'economy'].map((sector) => ({ sector })),
        { agreementId: 'agr-03' },
        { agreementId: 'agr-17' },
        { dueBefore: '2026-06-01' },
        { dueAfter: '2026-09-15' },
        { dueAfter: '2026-04-01', dueBefore: '2026-12-01' },
        { status: 'delayed', overdue: 'true' },
        { party: 'VEN', sector: 'health', overdue: 'false' },
        { institution: 'energy', dueAfter: '2026-05-01', status: 'in_progress' },
      ];
      const REVIEW_FILTERS: Record<string, unknown>[] = [
        {},
        ...['scheduled', 'held', 'cancelled'].map((status) => ({ status })),
        { from: '2026-06-15T00:00:00.000Z' },
        { to: '2026-07-15T00:00:00Z' },
        { from: '2026-06-15T02:00:00+02:00', to: '2026-08-01T00:00:00.000Z', status: 'scheduled' },
        ...['agr-00', 'agr-05', 'agr-11', 'agr-29'].map((agreementId) => ({ agreementId })),
      ];

      async function expectSameAsReference(nows: string[]): Promise<void> {
        const ref = reference();
        expect(byAgreementId(await store.allAgreements())).toEqual(byAgreementId([...ledger.documents.agreements.values()]));
        expect(byReviewId(await store.allReviews())).toEqual(byReviewId([...ledger.documents.reviews.values()]));
        for (const now of nows) {
          for (const f of AGREEMENT_FILTERS) {
            const label = `agreements ${JSON.stringify(f)} as of ${now}`;
            const page = await agreements(f, now);
            const expected = await ref.listAgreements(agreementFilter.parse(f), now);
            expect(page.items, label).toEqual(expected.items);
            expect(page.total, label).toBe(expected.total);
            expect(page.nextCursor === null, label).toBe(expected.nextCursor === null);
            const walked = await walk((cursor) => agreements({ ...f, limit: 7, cursor }, now));
            const expectedWalk = await walk((cursor) => ref.listAgreements(agreementFilter.parse({ ...f, limit: 7, cursor }), now));
            expect(walked, label).toEqual(expectedWalk);
          }
          for (const f of COMMITMENT_FILTERS) {
            const label = `commitments ${JSON.stringify(f)} as of ${now}`;
            const page = await commitments(f, now);
            const expected = await ref.listCommitments(commitmentFilter.parse(f), now);
            expect(page.items, label).toEqual(expected.items);
            expect(page.total, label).toBe(expected.total);
            expect(page.nextCursor === null, label).toBe(expected.nextCursor === null);
            const walked = await walk((cursor) => commitments({ ...f, limit: 13, cursor }, now));
            const expectedWalk = await walk((cursor) => ref.listCommitments(commitmentFilter.parse({ ...f, limit: 13, cursor }), now));
            expect(walked, label).toEqual(expectedWalk);
          }
          for (const n of [undefined, 1, 3, 100]) {
            expect(await store.dashboard(now, n), `dashboard(${now}, ${n})`).toEqual(await ref.dashboard(now, n));
          }
        }
        for (const f of REVIEW_FILTERS) {
          expect(await store.listReviews(reviewFilter.parse(f)), `reviews ${JSON.stringify(f)}`).toEqual(await ref.listReviews(reviewFilter.parse(f)));
        }
      }

      it('answers every list, every page and the dashboard as the reference does, across batches and at three instants', async () => {
        const mixed = await ledger.mixed({ agreements: 30, reviews: 8, targetEvents: 300, seed: 20251128 });
        const nows = [mixed.end, JULY, '2027-06-01T00:00:00.000Z'];

        // Halfway, in small batches: documents replaced many times over.
        await ledger.commitTo(store, { batchSize: 23, events: 150 });
        expect(await store.checkpoint()).toBe('150');
        await expectSameAsReference([JULY]);

        await ledger.commitTo(store, { batchSize: 23 });
        expect(await store.checkpoint()).toBe(ledger.head());
        await expectSameAsReference(nows);

        // The ledger is varied enough for the comparison to mean something.
        const ref = reference();
        const statuses = new Set<string>();
        for (const now of nows) for (const a of (await ref.listAgreements(agreementFilter.parse({ limit: 500 }), now)).items) statuses.add(a.status);
        expect([...statuses].sort()).toEqual(['delayed', 'implemented', 'in_implementation', 'signed', 'terminated']);
        const all = (await ref.listCommitments(commitmentFilter.parse({ limit: 500 }), JULY)).items;
        expect(all.length).toBeGreaterThan(60);
        expect(all.some((c, i) => i > 0 && c.dueDate === all[i - 1]!.dueDate && c.id === all[i - 1]!.id)).toBe(true);
        expect(all.some((c) => c.overdue)).toBe(true);
        expect((await ref.dashboard(mixed.end)).upcomingReviews.length).toBeGreaterThan(3);
        expect(new Set((await ref.listReviews({})).items.map((r) => r.status))).toEqual(new Set(['scheduled', 'held', 'cancelled']));
      });
    });
  });
}
