// Corrections: a mistaken progress figure or date is corrected by a new event that points at
// it by revision. Nothing is deleted or rewritten: history shows both, state uses the correction.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { agreementStream, correctionTargetOf, instant, isoDate, multilineText } from '@cm/domain';
import { runCommand } from '@cm/event-store';
import { agreementDeciderFor, principalOf } from '../access.js';
import type { AppDeps } from '../deps.js';
import { agreementAnswer, answerCommand, commandContext, etagOf } from '../http-support.js';
import { agreementParams } from '../schemas.js';

const correctionBody = z
  .strictObject({
    revision: z.number().int().min(0).describe('The revision of the mistaken event (see history)'),
    percent: z.number().int().min(0).max(100).optional().describe('The right figure, to correct a ProgressReported'),
    dueDate: isoDate.optional().describe('The right date, to correct a CommitmentAdded (its due date) or a CommitmentDelayed (its new due date)'),
    reason: multilineText(2000),
    occurredAt: instant.optional(),
  })
  .describe('Exactly one of percent or dueDate, matching the kind of event at that revision');

export const correctionRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  app.post('/v1/agreements/:id/corrections', {
    schema: {
      tags: ['audit'],
      operationId: 'correctEvent',
      summary: 'Correct a mistaken progress figure or date by revision; the original event stays in history',
      params: agreementParams,
      body: correctionBody,
      problems: { 404: ['agreement_not_found'] },
    },
  }, async (request, reply) =>
    answerCommand(request, reply, deps, async () => {
      const b = request.body;
      const ctx = commandContext(request, deps.now(), b.occurredAt);
      const stream = agreementStream(request.params.id);
      // The decider judges the correction against the event it names, read here.
      const [named] = await deps.eventStore.readStream(stream, { fromRevision: b.revision, toRevision: b.revision, limit: 1 });
      const result = await runCommand(deps.eventStore, stream, agreementDeciderFor(principalOf(request)), {
        type: 'CorrectEvent', revision: b.revision, target: named ? correctionTargetOf(named) : null, percent: b.percent, dueDate: b.dueDate, reason: b.reason,
      }, ctx);
      return {
        status: 200,
        headers: { etag: etagOf(result.revision) },
        body: await agreementAnswer(deps.readStore, result, request.params.id, deps.now().toISOString()),
      };
    }));
};
