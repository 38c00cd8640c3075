// A review outcome is whole or absent: ReviewHeld lands on the review stream, then each agreement
// in scope gets its AgreementReviewed. The window between the two appends is driven with a
// fault-injecting (or holding) event store between the app and the SQLite file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '@cm/platform';
import type { EventStore } from '@cm/event-store';
import { createOutcomeCompleter } from './review-outcomes.js';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { createAgreement, get, post, settle, type Json } from './testing/api-fixtures.js';

const daysAhead = (n: number) => new Date(Date.now() + n * 86_400_000).toISOString();
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Between the app and the file: appends to the `blocked` agreement streams fail; with `hold`, they wait for it first. */
type Fault = { blocked: Set<string>; hold: Promise<void> | null; held: number };
function faulty(store: EventStore, fault: Fault): EventStore {
  return {
    append: async (stream, events, options) => {
      if (stream.startsWith('agreement-') && fault.hold) {
        fault.held++;
        await fault.hold;
      }
      if (fault.blocked.has(stream)) throw new Error(`injected fault: the append to ${stream} failed`);
      return store.append(stream, events, options);
    },
    readStream: (stream, options) => store.readStream(stream, options),
    streamRevision: (stream) => store.streamRevision(stream),
    lastRecordedAt: () => store.lastRecordedAt(),
    readAll: (options) => store.readAll(options),
    headPosition: () => store.headPosition(),
    subscribe: (options) => store.subscribe(options),
    listStreams: () => store.listStreams(),
    close: () => store.close(),
  };
}

const apps: TestApp[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(dir: string, fault?: Fault): Promise<TestApp> {
  const t = await createTestApp({ dir, ...(fault ? { wrapEventStore: (s: EventStore) => faulty(s, fault) } : {}) });
  apps.push(t);
  return t;
}

async function restart(t: TestApp): Promise<TestApp> {
  apps.splice(apps.indexOf(t), 1);
  await t.close();
  return open(t.dir);
}

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cm-outcome-'));
  dirs.push(dir);
  return dir;
}

/** Two agreements and a review of both, ready to be held. */
async function seed(t: TestApp): Promise<void> {
  await createAgreement(t, { id: 'ag-a' });
  await createAgreement(t, { id: 'ag-b' });
  const res = await post(t, '/v1/reviews', { id: 'rev-q3', title: 'Q3 review', scheduledFor: daysAhead(30), agreementIds: ['ag-a', 'ag-b'], attendees: [{ email: 'desk@example.org' }] });
  expect(res.statusCode, res.body).toBe(201);
}

const outcome = {
  summary: 'Both on their way',
  assessments: [{ agreementId: 'ag-a', rating: 'on_track' }, { agreementId: 'ag-b', rating: 'at_risk', note: 'permit late' }],
};

/** The AgreementReviewed events of an agreement, straight from the log. */
async function reviewsOn(t: TestApp, agreementId: string) {
  return (await t.eventStore.readStream(`agreement-${agreementId}`)).filter((e) => e.type === 'AgreementReviewed');
}

/** What a user sees of the agreement once the read models caught up with the whole log. */
async function agreementSeen(t: TestApp, id: string): Promise<Json> {
  const res = await get(t, `/v1/agreements/${id}?after=${await t.eventStore.headPosition()}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Json>();
}

describe('a review outcome interrupted between the review and its agreements', () => {
  it('is completed after a restart, each missing assessment appended once; a further start appends nothing', async () => {
    const fault: Fault = { blocked: new Set(), hold: null, held: 0 };
    let t = await open(freshDir(), fault);
    await seed(t);
    fault.blocked.add('agreement-ag-b');

    // ag-a is written, ag-b fails: the review is held, ag-b does not know it.
    const res = await post(t, '/v1/reviews/rev-q3/outcome', outcome);
    expect(res.statusCode, res.body).toBe(500);
    const review = await get(t, `/v1/reviews/rev-q3?after=${await t.eventStore.headPosition()}`);
    expect(review.json<Json>()).toMatchObject({ status: 'held' });
    expect(await reviewsOn(t, 'ag-a')).toHaveLength(1);
    expect(await reviewsOn(t, 'ag-b')).toHaveLength(0);

    // A new process on the same file, without the fault, finds the outcome half written.
    t = await restart(t);
    const [onA, onB] = [await reviewsOn(t, 'ag-a'), await reviewsOn(t, 'ag-b')];
    expect(onA).toHaveLength(1);
    expect(onB).toHaveLength(1);
    expect(onB[0]!.data).toEqual({ reviewId: 'rev-q3', heldAt: expect.any(String), assessments: [outcome.assessments[1]] });
    // The same event the route would have written: same command context, same assessment.
    expect(onB[0]!.metadata).toMatchObject({ actor: onA[0]!.metadata.actor, occurredAt: onA[0]!.metadata.occurredAt, correlationId: onA[0]!.metadata.correlationId });
    expect((onB[0]!.data as Json).heldAt).toBe((onA[0]!.data as Json).heldAt);
    expect(await agreementSeen(t, 'ag-b')).toMatchObject({
      lastReviewedAt: (onA[0]!.data as Json).heldAt,
      lastAssessments: [{ agreementId: 'ag-b', rating: 'at_risk', note: 'permit late' }],
    });

    const head = await t.eventStore.headPosition();
    t = await restart(t);
    expect(await t.eventStore.headPosition()).toBe(head);
    expect(await createOutcomeCompleter({ eventStore: t.eventStore, logger }).complete('rev-q3')).toBe(0);
    expect(await t.eventStore.headPosition()).toBe(head);
  });

  it('is completed in the running process once the agreement can be written again', async () => {
    const fault: Fault = { blocked: new Set(), hold: null, held: 0 };
    const t = await open(freshDir(), fault);
    await seed(t);
    fault.blocked = new Set(['agreement-ag-a', 'agreement-ag-b']);
    expect((await post(t, '/v1/reviews/rev-q3/outcome', outcome)).statusCode).toBe(500);
    expect(await reviewsOn(t, 'ag-a')).toHaveLength(0);

    fault.blocked.clear();
    await vi.waitFor(async () => {
      expect(await reviewsOn(t, 'ag-b')).toHaveLength(1);
    }, { timeout: 5000, interval: 20 });
    expect(await reviewsOn(t, 'ag-a')).toHaveLength(1);
    expect(await agreementSeen(t, 'ag-a')).toMatchObject({ lastAssessments: [{ agreementId: 'ag-a', rating: 'on_track' }] });
  });
});

describe('the route and the completer writing the same outcome', () => {
  it('land each agreement event once when the completer writes while the route\'s append waits', async () => {
    let release!: () => void;
    const fault: Fault = { blocked: new Set(), hold: null, held: 0 };
    const t = await open(freshDir(), fault);
    await seed(t);
    fault.hold = new Promise<void>((r) => (release = r));

    const answer = post(t, '/v1/reviews/rev-q3/outcome', outcome);
    // ReviewHeld is in the log and an agreement append of this process waits (the route's, or its
    // completer's with the route's queued behind it on the same stream).
    await vi.waitFor(() => expect(fault.held).toBe(1), { timeout: 5000, interval: 5 });
    // Another process's completer (straight on the file) writes both agreements meanwhile.
    expect(await createOutcomeCompleter({ eventStore: t.eventStore, logger }).complete('rev-q3')).toBe(2);
    release();

    const res = await answer;
    expect(res.statusCode, res.body).toBe(200);
    for (const id of ['ag-a', 'ag-b']) expect(await reviewsOn(t, id)).toHaveLength(1);
    // The answer's position is where the agreement events stand in the log.
    const last = (await reviewsOn(t, 'ag-b'))[0]!;
    expect(res.json<Json>().position).toBe(last.position);
  });

  it('a normal outcome: one AgreementReviewed per agreement, shown on the agreement; completing it again appends nothing', async () => {
    const t = await open(freshDir());
    await seed(t);
    const res = await post(t, '/v1/reviews/rev-q3/outcome', outcome);
    expect(res.statusCode, res.body).toBe(200);
    await settle(t, res.json<Json>().position);
    for (const id of ['ag-a', 'ag-b']) expect(await reviewsOn(t, id)).toHaveLength(1);
    expect(await agreementSeen(t, 'ag-a')).toMatchObject({ lastAssessments: [{ agreementId: 'ag-a', rating: 'on_track' }] });

    const head = await t.eventStore.headPosition();
    expect(await createOutcomeCompleter({ eventStore: t.eventStore, logger }).complete('rev-q3')).toBe(0);
    const again = await restart(t);
    expect(await again.eventStore.headPosition()).toBe(head);
    for (const id of ['ag-a', 'ag-b']) expect(await reviewsOn(again, id)).toHaveLength(1);
  });
});
