// Review meetings: commands append to `review-<id>`; an outcome also records, on each
// agreement in scope, that it was reviewed. Reads come from the read models, except the
// time-travel views of one review (time-travel.ts). History and integrity live in audit.ts.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import ical, { ICalEventStatus } from 'ical-generator';
import {
  heldAtErrors, NotFoundError, ValidationError, agreementStream, checkOutcomeAssessments, foldReview, type ReviewEvent, mayRead, checkReviewScope, normalizeInstant, reviewDecider, reviewStream, type ExistingReview, type ReviewState,
} from '@cm/domain';
import { comparePositions, runCommand, toTimed, type CommandResult } from '@cm/event-store';
import { foldAgreementEvents, reviewFilter, reviewView } from '@cm/read-models';
import { actingPartiesOf, checkReviewAccess, partiesOf, principalOf, reviewPartiesOf } from '../access.js';
import { cutReview, queriesFor, visibleReviewAgreements } from '../read-scope.js';
import type { AppDeps } from '../deps.js';
import { answerCommand, awaitPosition, checkNotInFuture, commandContext, etagOf } from '../http-support.js';
import { icalParamValue, icalTextValue } from '../ical-values.js';
import { idFromTitle } from '../ids.js';
import { READ, mergeProblems } from '../openapi.js';
import { calendarQuery, emptyCommandBody, outcomeBody, readQuery, reasonBody, rescheduleBody, reviewParams, reviewQuery, scheduleReviewBody } from '../schemas.js';
import { planReminders, type ReminderOffset } from '@cm/reminders';
import { recordReviewOnAgreement } from '../review-outcomes.js';
import { createTimeTravel, latestInstant, timeViewOf } from '../time-travel.js';

/** Meetings have no end time in the contract; calendars show them as two hours long. */
const MEETING_MS = 2 * 3_600_000;

/** What every command on an existing review can meet besides what every command can. */
const REVIEW_COMMAND = { 404: ['review_not_found'], 409: ['review_cancelled', 'review_held'] };
/** A joint act proposed by one side and confirmed by the other. */
const JOINT_COMMAND = { 404: ['review_not_found'], 409: ['review_cancelled', 'review_held', 'own_proposal', 'no_pending_proposal'] };

export const reviewRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const { eventStore, readStore } = deps;
  const nowIso = () => deps.now().toISOString();
  const timeTravel = createTimeTravel(deps);

  function reviewAnswer(result: CommandResult<ReviewState>, updatedAt: string) {
    return { ...reviewView({ review: result.state as ExistingReview, revision: result.revision, updatedAt }), position: result.position };
  }

  /** Who speaks in a joint act on this review: its parties and the caller's. */
  async function jointActors(request: Parameters<typeof principalOf>[0], reviewId: string) {
    return { reviewParties: await reviewPartiesOf(eventStore, reviewId), actingParties: actingPartiesOf(principalOf(request)) };
  }

  /** The answer to a command that may have held the review: each agreement in scope records the outcome. */
  async function outcomeAnswer(result: CommandResult<ReviewState>, now: string) {
    const review = result.state as ExistingReview;
    // ReviewHeld as it stands in the log (a repeated Idempotency-Key finds the first one's): the
    // agreement events are derived from it, not from this request. A proposal holds nothing yet.
    const heldEvent = result.appended.find((e) => e.type === 'ReviewHeld');
    let position = result.position;
    if (heldEvent) {
      for (const agreementId of review.agreementIds) {
        // Each agreement in scope records the review on its own stream, so its history shows it.
        // Should this stop half way, the outcome completer writes the rest with the same event ids.
        const r = await recordReviewOnAgreement(eventStore, review.id, heldEvent, agreementId);
        if (comparePositions(r.position, position) > 0) position = r.position;
      }
    }
    return {
      status: 200,
      headers: { etag: etagOf(result.revision) },
      body: { ...reviewAnswer(result, result.appended.at(-1)?.metadata.recordedAt ?? now), position },
    };
  }

  app.post('/v1/reviews', {
    schema: {
      tags: ['reviews'], operationId: 'scheduleReview', summary: 'Schedule a review meeting of some agreements', body: scheduleReviewBody,
      problems: { 400: ['unknown_agreement'], 409: ['review_exists'] },
    },
  }, async (request, reply) =>
    answerCommand(request, reply, deps, async () => {
      const b = request.body;
      // One read per agreement tells both whether it exists and whose it is.
      // An agreement the key does not see is, to it, one that does not exist.
      const principal = principalOf(request);
      const parties = (await partiesOf(eventStore, b.agreementIds)).map((p) => (p && mayRead(principal, p) ? p : null));
      const missing = b.agreementIds.flatMap((id, i) => (parties[i] === null ? [{ path: `agreementIds.${i}`, message: `agreement ${id} does not exist` }] : []));
      if (missing.length) throw new ValidationError('the review names agreements that do not exist', missing, 'unknown_agreement');
      checkReviewScope(principal, b.agreementIds.map((id, i) => ({ id, parties: parties[i]! })));
      const ctx = commandContext(request, deps.now(), b.occurredAt);
      const id = b.id ?? idFromTitle(b.title, 48, ctx.idempotencyScope);
      const result = await runCommand(eventStore, reviewStream(id), reviewDecider, {
        type: 'ScheduleReview',
        now: nowIso(),
        reviewId: id,
        title: b.title,
        scheduledFor: normalizeInstant(b.scheduledFor),
        agreementIds: b.agreementIds,
        attendees: b.attendees,
        location: b.location,
      }, ctx);
      return {
        status: 201,
        headers: { location: `/v1/reviews/${id}`, etag: etagOf(result.revision) },
        body: reviewAnswer(result, result.appended.at(-1)?.metadata.recordedAt ?? nowIso()),
      };
    }));

  app.get('/v1/reviews', {
    schema: { tags: ['reviews'], operationId: 'listReviews', summary: 'Review meetings by date', querystring: reviewFilter.extend(readQuery.shape), problems: READ },
  }, async (request) => {
    await awaitPosition(readStore, request.query.after, deps.readWaitMs);
    return queriesFor(deps, principalOf(request)).listReviews(request.query);
  });

  app.get('/v1/reviews.ics', {
    schema: {
      tags: ['reviews'], operationId: 'getReviewCalendar', summary: 'iCalendar feed of review meetings (one attendee with ?attendee=)', querystring: calendarQuery,
      problems: READ,
    },
  }, async (request, reply) => {
    await awaitPosition(readStore, request.query.after, deps.readWaitMs);
    const who = request.query.attendee?.toLowerCase();
    const calendar = ical({ name: 'Commitment reviews', prodId: { company: 'commitment-monitor', product: 'reviews', language: 'EN' } });
    for (const r of (await queriesFor(deps, principalOf(request)).listReviews({})).items) {
      if (who && !r.attendees.some((a) => a.email.toLowerCase() === who)) continue;
      const start = new Date(r.scheduledFor);
      calendar.createEvent({
        id: `${r.id}@commitment-monitor`,
        start,
        end: new Date(start.getTime() + MEETING_MS),
        stamp: new Date(r.updatedAt),
        summary: icalTextValue(r.title),
        location: r.location ? icalTextValue(r.location) : r.location,
        sequence: r.sequence,
        status: r.status === 'cancelled' ? ICalEventStatus.CANCELLED : ICalEventStatus.CONFIRMED,
        description: `Review of ${r.agreementIds.length} agreement(s): ${r.agreementIds.join(', ')}`,
        attendees: r.attendees.map((a) => ({ email: a.email, name: a.name ? icalParamValue(a.name) : null })),
      });
    }
    reply.type('text/calendar; charset=utf-8');
    return calendar.toString();
  });

  const offsets = deps.reminderOffsets ?? DEFAULT_OFFSETS;
  app.get('/v1/reviews/:id', {
    schema: {
      tags: ['reviews'],
      operationId: 'getReview',
      summary: 'A review with its agenda (what is late), the reminders sent and, now, the reminders still to come',
      description:
        'Without a time parameter: the read models, now. With one of `asOf`, `revision` or `effectiveAt` (at most one; ' +
        '400 naming them otherwise) the review stream is replayed, and the answer adds `view`, its echo (`asOf` or ' +
        '`effectiveAt`; for `revision`, the document\'s own `revision`) and `evaluatedAt`. The agenda of a time-travel answer ' +
        'is computed, not omitted: each agreement in scope is replayed from its own stream by the same rule (recorded by the ' +
        'instant for `asOf` and `revision`, the latter at the recordedAt of that revision; occurred by it for `effectiveAt`) ' +
        'and judged against `evaluatedAt`; an agreement that did not exist yet is left out. ETag is the revision the answer ' +
        'stands at. 404 before the review existed (for `effectiveAt`: when it was scheduled, by occurredAt, after the instant). ' +
        'The live answer also lists `plannedReminders`: each e-mail still to go out (`sendAt`, `email`, `offset`, `covers`), ' +
        'from REMINDER_OFFSETS; empty once the review is held, cancelled or past.',
      params: reviewParams,
      querystring: reviewQuery,
      problems: mergeProblems(READ, { 400: ['conflicting_time_views'], 404: ['review_not_found', 'revision_not_found'] }),
    },
  }, async (request, reply) => {
    await awaitPosition(readStore, request.query.after, deps.readWaitMs);
    const view = timeViewOf(request.query, await latestInstant(request.query, nowIso(), deps.eventStore));
    if (view) {
      const { revision, body } = await timeTravel.reviewAt(request.params.id, view);
      reply.header('etag', etagOf(revision));
      return cutReview(body, await visibleReviewAgreements(eventStore, principalOf(request), body.agreementIds));
    }
    const now = nowIso();
    const detail = await queriesFor(deps, principalOf(request)).reviewDetail(request.params.id, now);
    if (!detail) throw new NotFoundError(`review ${request.params.id} not found`, 'review_not_found');
    reply.header('etag', etagOf(detail.revision));
    return { ...detail, plannedReminders: plannedReminders(detail, offsets, now) };
  });

  app.post('/v1/reviews/:id/reschedule', {
    schema: { tags: ['reviews'], operationId: 'rescheduleReview', summary: 'Move a scheduled review to another future instant', params: reviewParams, body: rescheduleBody, problems: REVIEW_COMMAND },
  }, async (request, reply) =>
    answerCommand(request, reply, deps, async () => {
      const ctx = commandContext(request, deps.now(), request.body.occurredAt);
      await checkReviewAccess(eventStore, principalOf(request), request.params.id);
      const result = await runCommand(eventStore, reviewStream(request.params.id), reviewDecider, {
        type: 'RescheduleReview', now: nowIso(), scheduledFor: normalizeInstant(request.body.scheduledFor), reason: request.body.reason,
      }, ctx);
      return { status: 200, headers: { etag: etagOf(result.revision) }, body: reviewAnswer(result, result.appended.at(-1)?.metadata.recordedAt ?? nowIso()) };
    }));

  app.post('/v1/reviews/:id/cancellation', {
    schema: {
      tags: ['reviews'], operationId: 'cancelReview', summary: 'Cancel a scheduled review (by one party of a joint review: propose it)',
      description:
        'An admin, or a key of every party of the review (the parties of its agreements), cancels it at once. An editor of ' +
        'one party proposes the cancellation (ReviewCancellationProposed, listed in `pendingProposals`); the same request ' +
        'from an editor of the other party, or POST .../cancellation/confirm, cancels it. Reminders go on until then. ' +
        '409 own_proposal when the proposing party asks again.',
      params: reviewParams, body: reasonBody, problems: JOINT_COMMAND,
    },
  }, async (request, reply) =>
    answerCommand(request, reply, deps, async () => {
      const ctx = commandContext(request, deps.now(), request.body.occurredAt);
      await checkReviewAccess(eventStore, principalOf(request), request.params.id);
      const result = await runCommand(eventStore, reviewStream(request.params.id), reviewDecider, {
        type: 'CancelReview', reason: request.body.reason, ...(await jointActors(request, request.params.id)),
      }, ctx);
      return { status: 200, headers: { etag: etagOf(result.revision) }, body: reviewAnswer(result, result.appended.at(-1)?.metadata.recordedAt ?? nowIso()) };
    }));

  app.post('/v1/reviews/:id/outcome', {
    schema: {
      tags: ['reviews'], operationId: 'recordReviewOutcome',
      summary: 'Record that the review was held, with an assessment per agreement (by one party of a joint review: propose it)',
      description:
        'An admin, or a key of every party of the review, records the outcome at once (ReviewHeld, and AgreementReviewed on ' +
        'each agreement). An editor of one party proposes it (ReviewOutcomeProposed, in `pendingProposals`); the same outcome ' +
        'sent by an editor of the other party, or POST .../outcome/confirm, holds the review; a different one replaces the ' +
        'proposal as a counter-proposal. 409 own_proposal when the proposing party sends its proposal again.',
      params: reviewParams, body: outcomeBody,
      problems: mergeProblems(JOINT_COMMAND, { 400: ['unknown_commitment'] }),
    },
  }, async (request, reply) =>
    answerCommand(request, reply, deps, async () => {
      const b = request.body;
      const now = nowIso();
      // heldAt is checked under its own name: it is also the default occurredAt.
      const heldAt = b.heldAt ? checkNotInFuture(b.heldAt, deps.now(), 'heldAt') : now;
      const ctx = commandContext(request, deps.now(), b.occurredAt ?? heldAt);
      await checkReviewAccess(eventStore, principalOf(request), request.params.id);
      // Each commitment assessed exists, and an editor rates only its own parties' commitments.
      const assessed = [...new Set(b.assessments.filter((a) => a.commitmentId !== undefined).map((a) => a.agreementId))];
      const agreements = new Map(await Promise.all(assessed.map(async (id) => {
        const state = foldAgreementEvents(await eventStore.readStream(agreementStream(id)));
        return [id, { commitments: state.exists ? state.commitments : [] }] as const;
      })));
      // The other side may send back the assessments one side proposed, its commitments included.
      const current = foldReview((await eventStore.readStream(reviewStream(request.params.id))).map((e) => toTimed<ReviewEvent>(e)));
      checkOutcomeAssessments(principalOf(request), b.assessments, agreements, current.exists ? current.pendingOutcome?.assessments ?? [] : []);
      // A review cannot have been held before an agreement in its scope was signed, nor assess a
      // commitment before it was added: refused here, before the outcome is recorded anywhere.
      const [first] = await eventStore.readStream(reviewStream(request.params.id), { fromRevision: 0, limit: 1 });
      const scope = (first?.data as { agreementIds?: string[] } | undefined)?.agreementIds ?? [];
      for (const id of scope) {
        const state = foldAgreementEvents(await eventStore.readStream(agreementStream(id)));
        const errors = state.exists ? heldAtErrors(state, heldAt, b.assessments) : [];
        if (errors.length) throw new ValidationError(`heldAt ${heldAt} cannot be: ${errors[0]!.message}`, errors);
      }
      const result = await runCommand(eventStore, reviewStream(request.params.id), reviewDecider, {
        type: 'RecordReviewOutcome', now, heldAt, summary: b.summary, assessments: b.assessments, ...(await jointActors(request, request.params.id)),
      }, ctx);
      return outcomeAnswer(result, now);
    }));

  for (const proposal of ['cancellation', 'outcome'] as const) {
    app.post(`/v1/reviews/:id/${proposal}/confirm`, {
      schema: {
        tags: ['reviews'], operationId: proposal === 'cancellation' ? 'confirmReviewCancellation' : 'confirmReviewOutcome',
        summary: `Confirm the ${proposal} another party of the joint review proposed; it takes effect when every party has agreed`,
        params: reviewParams, body: emptyCommandBody, problems: JOINT_COMMAND,
      },
    }, async (request, reply) =>
      answerCommand(request, reply, deps, async () => {
        const now = nowIso();
        // A confirmed outcome happened when the review was held, as one recorded at once does.
        const current = proposal === 'outcome' && request.body.occurredAt === undefined
          ? foldReview((await eventStore.readStream(reviewStream(request.params.id))).map((e) => toTimed<ReviewEvent>(e)))
          : null;
        const heldAt = current?.exists ? current.pendingOutcome?.heldAt : undefined;
        const ctx = commandContext(request, deps.now(), request.body.occurredAt ?? heldAt);
        await checkReviewAccess(eventStore, principalOf(request), request.params.id);
        const result = await runCommand(eventStore, reviewStream(request.params.id), reviewDecider, {
          type: 'ConfirmReviewProposal', now, proposal, ...(await jointActors(request, request.params.id)),
        }, ctx);
        return outcomeAnswer(result, now);
      }));
  }
};

const DAY_MS = 86_400_000;
const DEFAULT_OFFSETS: readonly ReminderOffset[] = [{ label: '7d', ms: 7 * DAY_MS }, { label: '1d', ms: DAY_MS }];

/** The sends the reminders role will make for this review, by the same pure plan it follows. */
function plannedReminders(
  review: { id: string; status: 'scheduled' | 'held' | 'cancelled'; scheduledFor: string; attendees: Parameters<typeof planReminders>[0]['attendees']; reminders: Parameters<typeof planReminders>[0]['reminders'] },
  offsets: readonly ReminderOffset[],
  now: string,
) {
  return planReminders(review, offsets, now).map((p) => ({ sendAt: p.sendAt, email: p.email, offset: p.offset, covers: p.covers }));
}
