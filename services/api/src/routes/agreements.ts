// Agreements and their commitments: commands append to `agreement-<id>`; reads come from the
// read models, except the time-travel views of one agreement (time-travel.ts), which replay the
// log. History, integrity and explain live in audit.ts.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import {
  NotFoundError, agreementStream, deriveAgreementStatus, type AgreementCommand, type ExistingAgreement,
} from '@cm/domain';
import { runCommand } from '@cm/event-store';
import { agreementDetail, agreementFilter, commitmentFilter, commitmentView } from '@cm/read-models';
import { actingPartiesOf, agreementDeciderFor, principalOf } from '../access.js';
import { queriesFor } from '../read-scope.js';
import type { AppDeps } from '../deps.js';
import { agreementAnswer, answerCommand, awaitPosition, commandContext, etagOf } from '../http-support.js';
import { idFromTitle } from '../ids.js';
import { READ, mergeProblems } from '../openapi.js';
import {
  addCommitmentBody, agreementParams, agreementQuery, commitmentParams, createAgreementBody, delayBody, implementationBody,
  entryIntoForceBody, lifecycleBody, milestoneBody, milestoneParams, milestoneStatusBody, optionalReasonBody, progressBody, ratificationBody, readQuery, reasonBody, suspensionBody,
} from '../schemas.js';
import { createTimeTravel, latestInstant, timeViewOf } from '../time-travel.js';
import { CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE } from '../sheets/columns.js';
import { exportCommitments, sheetFormatOf } from './sheets.js';
import { z } from 'zod';

/** What every command on one commitment can meet besides what every command can. */
const COMMITMENT_COMMAND = {
  404: ['agreement_not_found', 'commitment_not_found'],
  409: ['agreement_terminated', 'agreement_expired', 'commitment_implemented', 'commitment_cancelled'],
};
/** What every lifecycle command on an agreement can meet besides what every command can. */
const LIFECYCLE_COMMAND = { 404: ['agreement_not_found'], 409: ['agreement_terminated', 'agreement_expired'] };

function commitmentIn(state: ExistingAgreement, id: string) {
  const c = state.commitments.find((x) => x.id === id);
  if (!c) throw new NotFoundError(`commitment ${id} not found in agreement ${state.id}`, 'commitment_not_found');
  return c;
}

export const agreementRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const { eventStore, readStore } = deps;
  const nowIso = () => deps.now().toISOString();
  const timeTravel = createTimeTravel(deps);

  async function commitmentCommand(
    request: FastifyRequest & { params: { id: string; cid: string }; body: { occurredAt?: string | undefined } },
    reply: FastifyReply,
    command: AgreementCommand,
  ) {
    return answerCommand(request, reply, deps, async () => {
      const ctx = commandContext(request, deps.now(), request.body.occurredAt);
      const result = await runCommand(eventStore, agreementStream(request.params.id), agreementDeciderFor(principalOf(request)), command, ctx);
      const state = result.state as ExistingAgreement;
      const c = commitmentIn(state, request.params.cid);
      
      return {
        status: 200,
        headers: { etag: etagOf(result.revision) },
        body: { ...commitmentView(c, nowIso()), agreementStatus: deriveAgreementStatus(state, nowIso()), revision: result.revision, position: result.position },
      };
    });
  }

  app.post('/v1/agreements', {
    schema: { tags: ['agreements'], operationId: 'createAgreement', summary: 'Record a signed agreement with its commitments', body: createAgreementBody, problems: { 409: ['agreement_exists'] } },
  }, async (request, reply) =>
    answerCommand(request, reply, deps, async () => {
      const b = request.body;
      const ctx = commandContext(request, deps.now(), b.occurredAt);
      const id = b.id ?? idFromTitle(b.title, 48, ctx.idempotencyScope);
      const result = await runCommand(eventStore, agreementStream(id), agreementDeciderFor(principalOf(request)), {
        type: 'SignAgreement',
        agreementId: id,
        title: b.title,
        kind: b.kind,
        sector: b.sector,
        parties: b.parties,
        signedAt: b.signedAt,
        session: b.session,
        summary: b.summary,
        noticePeriodMonths: b.noticePeriodMonths,
        entryIntoForce: b.entryIntoForce,
        commitments: (b.commitments ?? []).map((c, i) => ({
          commitmentId: c.id ?? idFromTitle(c.title, 40, ctx.idempotencyScope && `${ctx.idempotencyScope}|${i}`),
          title: c.title,
          description: c.description,
          dueDate: c.dueDate,
          responsible: c.responsible,
        })),
      }, ctx);
      return { status: 201, headers: { location: `/v1/agreements/${id}`, etag: etagOf(result.revision) }, body: await agreementAnswer(readStore, result, id, nowIso()) };
    }));

  app.get('/v1/agreements', {
    schema: { tags: ['agreements'], operationId: 'listAgreements', summary: 'List agreements (newest signature first)', querystring: agreementFilter.extend(readQuery.shape), problems: READ },
  }, async (request) => {
    await awaitPosition(readStore, request.query.after, deps.readWaitMs);
    return queriesFor(deps, principalOf(request)).listAgreements(request.query, nowIso());
  });

  app.get('/v1/agreements/:id', {
    schema: {
      tags: ['agreements'],
      operationId: 'getAgreement',
      summary: 'One agreement with its commitments, now or at a point in time',
      description:
        'Without a time parameter: the read models, now. With one of `asOf`, `revision` or `effectiveAt` (at most one; ' +
        '400 naming them otherwise) the log itself is replayed, and the answer adds `view` (which of the three), its echo ' +
        '(`asOf` or `effectiveAt`; for `revision`, the document\'s own `revision`) and `evaluatedAt` (the instant status and ' +
        'overdue were computed against). `reviews` are cut by the same rule. ETag is the revision the answer stands at. ' +
        '404 before the agreement existed (for `effectiveAt`: when it was signed, by occurredAt, after the instant).',
      params: agreementParams,
      querystring: agreementQuery,
      problems: mergeProblems(READ, { 400: ['conflicting_time_views'], 404: ['agreement_not_found', 'revision_not_found'] }),
    },
  }, async (request, reply) => {
    const { id } = request.params;
    await awaitPosition(readStore, request.query.after, deps.readWaitMs);
    const view = timeViewOf(request.query, await latestInstant(request.query, nowIso(), deps.eventStore));
    if (view) {
      const { revision, body } = await timeTravel.agreementAt(id, view);
      reply.header('etag', etagOf(revision));
      return body;
    }
    const doc = (await readStore.getAgreements([id])).get(id);
    if (!doc) throw new NotFoundError(`agreement ${id} not found`, 'agreement_not_found');
    reply.header('etag', etagOf(doc.revision));
    return agreementDetail(doc, nowIso());
  });

  app.post('/v1/agreements/:id/termination', {
    schema: {
      tags: ['agreements'], operationId: 'terminateAgreement',
      summary: 'Terminate an agreement: at once by an admin or by every party; by one party, a denunciation that takes effect after the notice period',
      description:
        'An admin key, a key of every party, or the other party of a pending denunciation terminates the agreement at once ' +
        '(AgreementTerminated). An editor of one party denounces it (AgreementDenounced): the answer shows `denunciation` ' +
        '`{byParty, reason, noticeAt, effectiveAt}` with effectiveAt = now + `noticePeriodMonths`; commands are accepted until ' +
        'then and refused with 409 agreement_terminated from then on. 409 denunciation_pending when the same party denounces again.',
      params: agreementParams, body: reasonBody,
      problems: { 404: ['agreement_not_found'], 409: ['agreement_terminated', 'agreement_expired', 'denunciation_pending'] },
    },
  }, async (request, reply) =>
    answerCommand(request, reply, deps, async () => {
      const ctx = commandContext(request, deps.now(), request.body.occurredAt);
      const result = await runCommand(eventStore, agreementStream(request.params.id), agreementDeciderFor(principalOf(request)), {
        type: 'TerminateAgreement', reason: request.body.reason, actingParties: actingPartiesOf(principalOf(request)),
      }, ctx);
      return { status: 200, headers: { etag: etagOf(result.revision) }, body: await agreementAnswer(readStore, result, request.params.id, nowIso()) };
    }));

  app.post('/v1/agreements/:id/denunciation/withdrawal', {
    schema: {
      tags: ['agreements'], operationId: 'withdrawDenunciation',
      summary: 'Withdraw a denunciation before it takes effect (the denouncing party or an admin)',
      params: agreementParams, body: optionalReasonBody,
      problems: { 403: ['not_denouncing_party'], 404: ['agreement_not_found'], 409: ['agreement_terminated', 'agreement_expired', 'no_denunciation'] },
    },
  }, async (request, reply) =>
    answerCommand(request, reply, deps, async () => {
      const ctx = commandContext(request, deps.now(), request.body.occurredAt);
      const result = await runCommand(eventStore, agreementStream(request.params.id), agreementDeciderFor(principalOf(request)), {
        type: 'WithdrawDenunciation', reason: request.body.reason, actingParties: actingPartiesOf(principalOf(request)),
      }, ctx);
      return { status: 200, headers: { etag: etagOf(result.revision) }, body: await agreementAnswer(readStore, result, request.params.id, nowIso()) };
    }));

  /** A command on the agreement as a whole, answered with the agreement as the read models will show it. */
  async function agreementCommand(
    request: FastifyRequest & { params: { id: string }; body: { occurredAt?: string | undefined } },
    reply: FastifyReply,
    command: AgreementCommand,
  ) {
    return answerCommand(request, reply, deps, async () => {
      const ctx = commandContext(request, deps.now(), request.body.occurredAt);
      const result = await runCommand(eventStore, agreementStream(request.params.id), agreementDeciderFor(principalOf(request)), command, ctx);
      return { status: 200, headers: { etag: etagOf(result.revision) }, body: await agreementAnswer(readStore, result, request.params.id, nowIso()) };
    });
  }

  app.post('/v1/agreements/:id/ratifications', {
    schema: {
      tags: ['agreements'], operationId: 'notifyRatification',
      summary: "Notify one party's ratification (an editor: only its own parties'; an admin: any)",
      description:
        'Records RatificationNotified. When the agreement enters into force on_last_ratification and this is the last party, ' +
        'EntryIntoForceRecorded follows at once, dated the latest ratification date (`entryIntoForce.derived: true`), and fixes ' +
        'the due dates relative to entry into force. 400 when `party` is not a party or `date` is before the signing or in the ' +
        'future; 403 outside_parties for another party than the key\'s; 409 already_ratified.',
      params: agreementParams, body: ratificationBody,
      problems: mergeProblems(LIFECYCLE_COMMAND, { 409: ['already_ratified'] }),
    },
  }, async (request, reply) =>
    agreementCommand(request, reply, { type: 'NotifyRatification', party: request.body.party, date: request.body.date, actingParties: actingPartiesOf(principalOf(request)) }));

  app.post('/v1/agreements/:id/entry-into-force', {
    schema: {
      tags: ['agreements'], operationId: 'recordEntryIntoForce',
      summary: 'Record (or correct) the day the agreement entered into force',
      description:
        'Fixes every due date relative to entry into force. Again with another date and a `reason`, a correction: the relative ' +
        'due dates still as their rule gave them move with it, and the event (EntryIntoForceRecorded with previousDate, reason ' +
        'and movedDueDates) stays in the history. 400 naming reason when correcting without one; 409 already_in_force for the same date.',
      params: agreementParams, body: entryIntoForceBody,
      problems: mergeProblems(LIFECYCLE_COMMAND, { 409: ['already_in_force'] }),
    },
  }, async (request, reply) =>
    agreementCommand(request, reply, { type: 'RecordEntryIntoForce', date: request.body.date, reason: request.body.reason }));

  app.post('/v1/agreements/:id/provisional-application', {
    schema: {
      tags: ['agreements'], operationId: 'applyProvisionally', summary: 'Record that the agreement is applied provisionally pending entry into force',
      params: agreementParams, body: lifecycleBody,
      problems: mergeProblems(LIFECYCLE_COMMAND, { 409: ['already_in_force', 'already_provisionally_applied'] }),
    },
  }, async (request, reply) =>
    agreementCommand(request, reply, { type: 'ApplyProvisionally', date: request.body.date, reason: request.body.reason }));

  app.post('/v1/agreements/:id/suspension', {
    schema: {
      tags: ['agreements'], operationId: 'suspendAgreement', summary: 'Suspend an agreement in force or applied provisionally',
      params: agreementParams, body: suspensionBody,
      problems: mergeProblems(LIFECYCLE_COMMAND, { 409: ['already_suspended', 'not_in_force'] }),
    },
  }, async (request, reply) =>
    agreementCommand(request, reply, { type: 'SuspendAgreement', date: request.body.date, reason: request.body.reason }));

  app.post('/v1/agreements/:id/resumption', {
    schema: {
      tags: ['agreements'], operationId: 'resumeAgreement', summary: 'End a suspension: the agreement is back to in force (or applied provisionally)',
      params: agreementParams, body: lifecycleBody,
      problems: mergeProblems(LIFECYCLE_COMMAND, { 409: ['not_suspended'] }),
    },
  }, async (request, reply) =>
    agreementCommand(request, reply, { type: 'ResumeAgreement', date: request.body.date, reason: request.body.reason }));

  app.post('/v1/agreements/:id/expiry', {
    schema: {
      tags: ['agreements'], operationId: 'expireAgreement', summary: 'Record that the agreement expired (its term ran out); its record closes',
      description: 'From then on every command on it answers 409 agreement_expired.',
      params: agreementParams, body: lifecycleBody,
      problems: LIFECYCLE_COMMAND,
    },
  }, async (request, reply) =>
    agreementCommand(request, reply, { type: 'ExpireAgreement', date: request.body.date, reason: request.body.reason }));

  app.post('/v1/agreements/:id/commitments', {
    schema: {
      tags: ['commitments'], operationId: 'addCommitment', summary: 'Add a commitment to an agreement', params: agreementParams, body: addCommitmentBody,
      problems: { 404: ['agreement_not_found'], 409: ['agreement_terminated', 'agreement_expired', 'commitment_exists'] },
    },
  }, async (request, reply) =>
    answerCommand(request, reply, deps, async () => {
      const b = request.body;
      const ctx = commandContext(request, deps.now(), b.occurredAt);
      const cid = b.id ?? idFromTitle(b.title, 40, ctx.idempotencyScope);
      const result = await runCommand(eventStore, agreementStream(request.params.id), agreementDeciderFor(principalOf(request)), {
        type: 'AddCommitment',
        commitment: { commitmentId: cid, title: b.title, description: b.description, dueDate: b.dueDate, responsible: b.responsible },
      }, ctx);
      const state = result.state as ExistingAgreement;
      const c = commitmentIn(state, cid);
      
      return {
        status: 201,
        headers: { location: `/v1/agreements/${request.params.id}/commitments/${cid}`, etag: etagOf(result.revision) },
        body: { ...commitmentView(c, nowIso()), agreementStatus: deriveAgreementStatus(state, nowIso()), revision: result.revision, position: result.position },
      };
    }));

  app.get('/v1/agreements/:id/commitments/:cid', {
    schema: {
      tags: ['commitments'], operationId: 'getCommitment', summary: 'One commitment', params: commitmentParams, querystring: readQuery,
      problems: mergeProblems(READ, { 404: ['agreement_not_found', 'commitment_not_found'] }),
    },
  }, async (request, reply) => {
    await awaitPosition(readStore, request.query.after, deps.readWaitMs);
    const doc = (await readStore.getAgreements([request.params.id])).get(request.params.id);
    if (!doc) throw new NotFoundError(`agreement ${request.params.id} not found`, 'agreement_not_found');
    const c = doc.agreement.commitments.find((x) => x.id === request.params.cid);
    if (!c) throw new NotFoundError(`commitment ${request.params.cid} not found in agreement ${request.params.id}`, 'commitment_not_found');
    reply.header('etag', etagOf(doc.revision));
    return { ...commitmentView(c, nowIso()), agreementTitle: doc.agreement.title, sector: doc.agreement.sector, revision: doc.revision };
  });

  app.post('/v1/agreements/:id/commitments/:cid/progress', {
    schema: { tags: ['commitments'], operationId: 'recordProgress', summary: 'Report progress (0-100; may go down)', params: commitmentParams, body: progressBody, problems: COMMITMENT_COMMAND },
  }, async (request, reply) =>
    commitmentCommand(request, reply, { type: 'ReportProgress', commitmentId: request.params.cid, percent: request.body.percent, note: request.body.note, evidenceUrl: request.body.evidenceUrl }));

  app.post('/v1/agreements/:id/commitments/:cid/milestones', {
    schema: {
      tags: ['commitments'], operationId: 'addMilestone', summary: 'Add a milestone (title, due date, weight) to a commitment',
      description: "400 naming weight when the commitment's milestones would weigh more than 100; 409 milestone_exists for an id already used.",
      params: commitmentParams, body: milestoneBody,
      problems: mergeProblems(COMMITMENT_COMMAND, { 409: ['milestone_exists'] }),
    },
  }, async (request, reply) =>
    commitmentCommand(request, reply, {
      type: 'AddMilestone', commitmentId: request.params.cid, milestoneId: request.body.id, title: request.body.title, dueDate: request.body.dueDate, weight: request.body.weight,
    }));

  app.post('/v1/agreements/:id/commitments/:cid/milestones/:mid/status', {
    schema: {
      tags: ['commitments'], operationId: 'recordMilestoneStatus', summary: "Record a milestone's status (met, partially_met, not_met) with a note and evidence",
      params: milestoneParams, body: milestoneStatusBody,
      problems: mergeProblems(COMMITMENT_COMMAND, { 404: ['milestone_not_found'] }),
    },
  }, async (request, reply) =>
    commitmentCommand(request, reply, {
      type: 'RecordMilestoneStatus', commitmentId: request.params.cid, milestoneId: request.params.mid, status: request.body.status, note: request.body.note, evidenceUrl: request.body.evidenceUrl,
    }));

  app.post('/v1/agreements/:id/commitments/:cid/implementation', {
    schema: { tags: ['commitments'], operationId: 'implementCommitment', summary: 'Mark a commitment implemented', params: commitmentParams, body: implementationBody, problems: COMMITMENT_COMMAND },
  }, async (request, reply) =>
    commitmentCommand(request, reply, { type: 'ImplementCommitment', commitmentId: request.params.cid, note: request.body.note, evidenceUrl: request.body.evidenceUrl }));

  app.post('/v1/agreements/:id/commitments/:cid/delay', {
    schema: {
      tags: ['commitments'], operationId: 'delayCommitment', summary: 'Delay a commitment to a later due date', params: commitmentParams, body: delayBody,
      problems: mergeProblems(COMMITMENT_COMMAND, { 409: ['due_date_not_later', 'due_date_pending'] }),
    },
  }, async (request, reply) =>
    commitmentCommand(request, reply, { type: 'DelayCommitment', commitmentId: request.params.cid, reason: request.body.reason, newDueDate: request.body.newDueDate }));

  app.post('/v1/agreements/:id/commitments/:cid/cancellation', {
    schema: { tags: ['commitments'], operationId: 'cancelCommitment', summary: 'Cancel a commitment', params: commitmentParams, body: reasonBody, problems: COMMITMENT_COMMAND },
  }, async (request, reply) =>
    commitmentCommand(request, reply, { type: 'CancelCommitment', commitmentId: request.params.cid, reason: request.body.reason }));

  app.get('/v1/commitments', {
    schema: {
      tags: ['commitments'], operationId: 'listCommitments', summary: 'List commitments across agreements, by due date then id',
      description:
        'JSON pages by default. With `?format=csv|xlsx`, or an Accept of `text/csv` or the XLSX media type, the answer is a spreadsheet ' +
        'of every matching commitment (no page limit; `limit` and `cursor` are ignored), streamed, in the import columns, so it re-imports unchanged.',
      querystring: commitmentFilter.extend(readQuery.shape).extend({
        format: z.enum(['json', 'csv', 'xlsx']).optional().describe('csv or xlsx: the whole list as a spreadsheet (default: by Accept, else JSON)'),
      }),
      produces: ['application/json', CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE],
      problems: READ,
    },
  }, async (request, reply) => {
    await awaitPosition(readStore, request.query.after, deps.readWaitMs);
    const { format, after: _after, ...filter } = request.query;
    const sheet = sheetFormatOf(request, format);
    if (sheet) return exportCommitments(deps, request, reply, sheet, filter);
    return queriesFor(deps, principalOf(request)).listCommitments(filter, nowIso());
  });

  app.get('/v1/dashboard', {
    schema: { tags: ['dashboard'], operationId: 'getDashboard', summary: 'Counts by status and sector, and the next reviews', querystring: readQuery, problems: READ },
  }, async (request) => {
    await awaitPosition(readStore, request.query.after, deps.readWaitMs);
    return queriesFor(deps, principalOf(request)).dashboard(nowIso());
  });
};
