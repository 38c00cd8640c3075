// The audit trail, read from the log itself: each agreement's and review's history with its hash
// chain, the chain's verification, and why a commitment stands where it does. Read-only; the
// point-in-time views of one resource sit with its GET (time-travel.ts).
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { NotFoundError, agreementStream, reviewStream } from '@cm/domain';
import { eventEnvelope, hashScheme, verifyChain, type EventStore, type LogTree } from '@cm/event-store';
import { commitmentExplanation, explainCommitment } from '@cm/read-models';
import type { AppDeps } from '../deps.js';
import { awaitPosition, etagOf } from '../http-support.js';
import { READ, mergeProblems } from '../openapi.js';
import { agreementParams, commitmentParams, historyQuery, historyResponse, integrityResponse, readQuery, reviewParams } from '../schemas.js';

/** `name` is how the kind reads inside an operationId (getAgreementHistory). */
type StreamKind = { stream: (id: string) => string; what: string; name: string; notFoundCode: string };
const AGREEMENT: StreamKind = { stream: agreementStream, what: 'agreement', name: 'Agreement', notFoundCode: 'agreement_not_found' };
const REVIEW: StreamKind = { stream: reviewStream, what: 'review', name: 'Review', notFoundCode: 'review_not_found' };

async function history(eventStore: EventStore, tree: LogTree, kind: StreamKind, id: string, fromRevision: number, limit: number) {
  const stream = kind.stream(id);
  const head = await eventStore.streamRevision(stream);
  if (head < 0) throw new NotFoundError(`${kind.what} ${id} not found`, kind.notFoundCode);
  const events = await eventStore.readStream(stream, { fromRevision, limit });
  const next = fromRevision + events.length;
  // The tree takes in what the log holds up to now, these events included.
  await tree.sync();
  return {
    events: events.map((e) => ({
      ...eventEnvelope(e),
      correlationId: e.metadata.correlationId,
      data: e.data,
      prevHash: e.prevHash,
      hash: e.hash,
      hashScheme: hashScheme(e.metadata) ?? Number(e.metadata.hashScheme),
      leafIndex: tree.leafIndexOf(e.position) ?? -1,
    })),
    revision: head,
    nextFromRevision: next <= head ? next : null,
  };
}

async function integrity(eventStore: EventStore, kind: StreamKind, id: string) {
  const stream = kind.stream(id);
  const head = (await eventStore.streamHead?.(stream)) ?? null;
  // `limit` reads the events themselves, not first the head row (which the check is about).
  const events = await eventStore.readStream(stream, { fromRevision: 0, limit: -1 });
  if (events.length === 0 && head === null) throw new NotFoundError(`${kind.what} ${id} not found`, kind.notFoundCode);
  // Against the stream's head row too: a chain cut at its end is otherwise still a valid chain.
  const report = eventStore.streamHead && head === null
    ? { ...verifyChain(events), valid: false, firstInvalidRevision: 0, reason: 'the stream has events but no head row: the store\'s record of it was removed' }
    : verifyChain(events, head);
  if (!report.valid) return report;
  const fault = (await eventStore.storageFault?.(stream)) ?? null;
  return fault ? { ...report, valid: false, firstInvalidRevision: fault.revision, reason: fault.reason } : report;
}

const HISTORY_DESCRIPTION =
  'Every event of the stream in order, paginated by revision, with when it happened in the world (`occurredAt`, as the ' +
  'command said), when it was recorded (`recordedAt`, the server), who sent it, the `correlationId` shared by all events ' +
  'one command appended (in every stream), the payload as given, and the hash chain. 404 for an unknown id.';
const INTEGRITY_DESCRIPTION =
  'Recomputes every hash of the stream from revision 0 under the scheme each event names (`schemes` counts them), checks ' +
  'each links to the one before (revision 0 to the stream\'s own genesis under scheme 2), that the chain ends where the ' +
  'store\'s head row for the stream says it does, and that the stored recordedAt column agrees with the hashed one. ' +
  '`firstInvalidRevision` names the first event that fails and `reason` says why. It proves the stored rows are ' +
  'consistent with each other; it cannot tell a log rewritten whole (every hash recomputed, head row included) from the ' +
  'original: for that compare `lastHash` with a copy kept elsewhere (an earlier export). 404 for an unknown id.';

export const auditRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const { eventStore } = deps;

  for (const [kind, prefix, params] of [[AGREEMENT, '/v1/agreements', agreementParams], [REVIEW, '/v1/reviews', reviewParams]] as const) {
    app.get(`${prefix}/:id/history`, {
      schema: {
        tags: ['audit'],
        operationId: `get${kind.name}History`,
        summary: `The ${kind.what} stream's events in order, with their hash chain`,
        description: HISTORY_DESCRIPTION,
        params,
        querystring: historyQuery,
        response: { 200: historyResponse },
        problems: { 400: ['invalid_input'], 404: [kind.notFoundCode] },
      },
    }, async (request) => history(eventStore, deps.transparency.tree, kind, request.params.id, request.query.fromRevision, request.query.limit));

    app.get(`${prefix}/:id/integrity`, {
      schema: {
        tags: ['audit'],
        operationId: `verify${kind.name}Integrity`,
        summary: `Verifies the ${kind.what} stream's hash chain`,
        description: INTEGRITY_DESCRIPTION,
        params,
        response: { 200: integrityResponse },
        problems: { 400: ['invalid_input'], 404: [kind.notFoundCode] },
      },
    }, async (request) => integrity(eventStore, kind, request.params.id));
  }

  app.get('/v1/agreements/:id/commitments/:cid/explain', {
    schema: {
      tags: ['audit'],
      operationId: 'explainCommitment',
      summary: "Why a commitment stands where it does: the events that set its status, progress and due date",
      description:
        'Replays the agreement stream and lists, in order, every event that changed the commitment\'s `status`, `progress` ' +
        'or `dueDate`, each with only the fields it changed (`from` -> `to`); the first step is the CommitmentAdded, from ' +
        'null. Corrections appear as the steps they are. An event that changed none of the three (a note-only report of ' +
        'the same figure, a review) is not listed. 404 for an unknown agreement or commitment.',
      params: commitmentParams,
      querystring: readQuery,
      response: { 200: commitmentExplanation },
      problems: mergeProblems(READ, { 404: ['agreement_not_found', 'commitment_not_found'] }),
    },
  }, async (request, reply) => {
    const { id, cid } = request.params;
    // The log is always current; `after` is still honoured so every GET keeps the same contract.
    await awaitPosition(deps.readStore, request.query.after, deps.readWaitMs);
    const events = await eventStore.readStream(agreementStream(id));
    if (events.length === 0) throw new NotFoundError(`agreement ${id} not found`, 'agreement_not_found');
    const explanation = explainCommitment(events, cid);
    if (!explanation) throw new NotFoundError(`commitment ${cid} not found in agreement ${id}`, 'commitment_not_found');
    reply.header('etag', etagOf(explanation.revision));
    return explanation;
  });
};
