// A ledger written through the domain deciders into an in-memory log, then committed into read
// stores batch by batch with projectBatch, as the projector does. It keeps the documents it
// committed, so a contract can hold an adapter's answers against the reference queries over the
// very same documents without trusting the adapter under test to hand them back.
// Test helper only (not exported from index.ts).
import type { AgreementKind, Assessment, DueRule, EntryIntoForceMode, Session } from '@cm/domain';
import type { EventStore, Position, StoredEvent } from '@cm/event-store';
import type { AgreementDoc, ReviewDoc } from '../documents.js';
import { projectBatch } from '../ledger-projection.js';
import type { ReadStore } from '../read-store.js';
import { createLedgerWriter, type LedgerWriter } from './ledger-writer.js';
import { writeMixedLedger, type MixedLedger } from './mixed-ledger.js';

/**
 * The part of the event log the ledger writer uses, in memory, for one process and one writer:
 * positions count from 1, recordedAt ticks one second per event from `start`.
 */
export function createMemoryLog(start = '2026-01-05T08:00:00.000Z') {
  const streams = new Map<string, StoredEvent[]>();
  const events: StoredEvent[] = [];
  let clock = Date.parse(start);
  const log: Pick<EventStore, 'readStream' | 'append'> = {
    async readStream(stream) {
      return [...(streams.get(stream) ?? [])];
    },
    async append(stream, batch, { expectedRevision }) {
      const existing = streams.get(stream) ?? [];
      const current = existing.length - 1;
      const expected = expectedRevision === 'no_stream' ? -1 : expectedRevision;
      if (expected !== 'any' && expected !== current) throw new Error(`${stream} is at revision ${current}, not ${expected}`);
      const stored = batch.map((e, i): StoredEvent => {
        const position = String(events.length + i + 1);
        clock += 1000;
        return {
          id: e.id,
          stream,
          revision: current + i + 1,
          position,
          type: e.type,
          data: e.data,
          metadata: { ...e.metadata, recordedAt: new Date(clock).toISOString() },
          prevHash: '0'.repeat(64),
          hash: position.padStart(64, '0'),
        };
      });
      streams.set(stream, [...existing, ...stored]);
      events.push(...stored);
      return {
        revision: current + stored.length,
        position: events.at(-1)?.position ?? '0',
        events: stored,
        duplicate: false,
      };
    },
  };
  return { ...log, events };
}

export type CommitmentSpec = { id: string; dueDate: string | DueRule; party?: string; institution?: string; title?: string };
export type AgreementSpec = {
  title: string;
  sector: string;
  parties: string[];
  signedAt: string;
  session?: Session;
  kind?: AgreementKind;
  commitments?: CommitmentSpec[];
  entryIntoForce?: EntryIntoForceMode;
};

/**
 * Commands in the ledger's own words. Each command happens one hour after the previous one, from
 * `commandsFrom`, unless it carries its own instant (an outcome happens when the review is held).
 */
export function createDecidedLedger(options: { commandsFrom?: string } = {}) {
  const log = createMemoryLog();
  const writer: LedgerWriter = createLedgerWriter(log);
  const documents = { agreements: new Map<string, AgreementDoc>(), reviews: new Map<string, ReviewDoc>() };
  const scopes = new Map<string, string[]>();
  let committed = 0;
  let clock = Date.parse(options.commandsFrom ?? '2026-01-05T09:00:00.000Z');
  const at = () => {
    clock += 3_600_000;
    return new Date(clock).toISOString();
  };
  const commitment = (c: CommitmentSpec, parties: string[]) => ({
    commitmentId: c.id,
    title: c.title ?? `Deliver ${c.id}`,
    dueDate: c.dueDate,
    responsible: { party: c.party ?? parties[0]!, institution: c.institution ?? 'Ministry of Health' },
  });
  const partiesOf = new Map<string, string[]>();

  return {
    writer,
    /** The documents committed so far: what the store under test should hold. */
    documents,
    /** Position of the last event written (committed or not). */
    head(): Position | null {
      return log.events.at(-1)?.position ?? null;
    },
    /** Events written since the last commit. */
    pending(): number {
      return log.events.length - committed;
    },

    /**
     * Projects what was written since the last commit (or only its first `events`) and commits
     * it, `batchSize` events per commit; answers the last position committed.
     */
    async commitTo(store: ReadStore, o: { batchSize?: number; events?: number } = {}): Promise<Position | null> {
      const batchSize = o.batchSize ?? Number.POSITIVE_INFINITY;
      const events = log.events.slice(committed, o.events === undefined ? undefined : committed + o.events);
      for (let i = 0; i < events.length; i += batchSize) {
        const batch = events.slice(i, i + batchSize);
        const changes = projectBatch(documents, batch);
        await store.commit(changes, batch.at(-1)!.position, { from: log.events[committed - 1]?.position ?? null });
        for (const [id, d] of changes.agreements) documents.agreements.set(id, d);
        for (const [id, d] of changes.reviews) documents.reviews.set(id, d);
        committed += batch.length;
      }
      return log.events[committed - 1]?.position ?? null;
    },

    mixed(o: { agreements: number; reviews: number; targetEvents: number; seed: number }): Promise<MixedLedger> {
      return writeMixedLedger(writer, o);
    },

    sign(id: string, a: AgreementSpec) {
      partiesOf.set(id, a.parties);
      return writer.agreement(id, {
        type: 'SignAgreement',
        agreementId: id,
        title: a.title,
        kind: a.kind ?? 'agreement',
        sector: a.sector,
        parties: a.parties,
        signedAt: a.signedAt,
        session: a.session,
        entryIntoForce: a.entryIntoForce,
        commitments: (a.commitments ?? []).map((c) => commitment(c, a.parties)),
      }, at());
    },
    add(agreementId: string, c: CommitmentSpec) {
      return writer.agreement(agreementId, { type: 'AddCommitment', commitment: commitment(c, partiesOf.get(agreementId) ?? ['VEN']) }, at());
    },
    progress(agreementId: string, commitmentId: string, percent: number) {
      return writer.agreement(agreementId, { type: 'ReportProgress', commitmentId, percent }, at());
    },
    implement(agreementId: string, commitmentId: string) {
      return writer.agreement(agreementId, { type: 'ImplementCommitment', commitmentId }, at());
    },
    delay(agreementId: string, commitmentId: string, newDueDate: string) {
      return writer.agreement(agreementId, { type: 'DelayCommitment', commitmentId, reason: 'funding arrived late', newDueDate }, at());
    },
    cancel(agreementId: string, commitmentId: string) {
      return writer.agreement(agreementId, { type: 'CancelCommitment', commitmentId, reason: 'superseded' }, at());
    },
    /** One party's notice: terminates the agreement 6 months later, with no further event. */
    denounce(agreementId: string, party: string) {
      return writer.agreement(agreementId, { type: 'TerminateAgreement', reason: 'notice given', actingParties: [party] }, at());
    },
    milestone(agreementId: string, commitmentId: string, milestoneId: string, weight: number) {
      return writer.agreement(agreementId, { type: 'AddMilestone', commitmentId, milestoneId, title: `Step ${milestoneId}`, dueDate: '2026-06-30', weight }, at());
    },
    milestoneStatus(agreementId: string, commitmentId: string, milestoneId: string, status: 'met' | 'partially_met' | 'not_met') {
      return writer.agreement(agreementId, { type: 'RecordMilestoneStatus', commitmentId, milestoneId, status }, at());
    },
    ratify(agreementId: string, party: string, date: string) {
      return writer.agreement(agreementId, { type: 'NotifyRatification', party, date }, at());
    },
    enterIntoForce(agreementId: string, date: string, reason?: string) {
      return writer.agreement(agreementId, { type: 'RecordEntryIntoForce', date, reason }, at());
    },
    applyProvisionally(agreementId: string, date: string) {
      return writer.agreement(agreementId, { type: 'ApplyProvisionally', date }, at());
    },
    suspend(agreementId: string, date: string) {
      return writer.agreement(agreementId, { type: 'SuspendAgreement', date, reason: 'force majeure' }, at());
    },
    expire(agreementId: string, date: string) {
      return writer.agreement(agreementId, { type: 'ExpireAgreement', date }, at());
    },
    terminate(agreementId: string) {
      return writer.agreement(agreementId, { type: 'TerminateAgreement', reason: 'denounced by a party' }, at());
    },

    schedule(reviewId: string, scheduledFor: string, agreementIds: string[], o: { title?: string } = {}) {
      scopes.set(reviewId, agreementIds);
      const now = at();
      return writer.review(reviewId, {
        type: 'ScheduleReview', now, reviewId, title: o.title ?? `Review ${reviewId}`, scheduledFor, agreementIds,
        attendees: [{ email: 'desk@example.org' }, { email: 'minister@example.org', locale: 'es' }],
      }, now);
    },
    reschedule(reviewId: string, scheduledFor: string) {
      const now = at();
      return writer.review(reviewId, { type: 'RescheduleReview', now, scheduledFor, reason: 'minister travelling' }, now);
    },
    cancelReview(reviewId: string) {
      return writer.review(reviewId, { type: 'CancelReview', reason: 'no quorum' }, at());
    },
    /** ReviewHeld, then AgreementReviewed on each agreement in scope, as the API does. */
    async hold(reviewId: string, heldAt: string, assessments: Assessment[] = []) {
      await writer.review(reviewId, { type: 'RecordReviewOutcome', now: heldAt, heldAt, summary: 'Reviewed', assessments }, heldAt);
      for (const agreementId of scopes.get(reviewId) ?? []) {
        await writer.agreement(agreementId, { type: 'RecordAgreementReview', reviewId, heldAt, assessments }, heldAt);
      }
    },
    remind(reviewId: string, scheduledFor: string, email: string, sentAt: string) {
      return writer.review(reviewId, { type: 'RecordReminderSent', scheduledFor, offset: '7d', email, sentAt }, sentAt);
    },
  };
}
export type DecidedLedger = ReturnType<typeof createDecidedLedger>;
