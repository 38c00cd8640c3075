// Bundles for auditors: one agreement's or review's stream with its hash chain, as NDJSON
// (the format is defined once in @cm/event-store bundle.ts), streamed from the log and
// verifiable offline with `cli verify`. A plugin of its own so the history, integrity and audit
// routes stay in the files that own them. `GET .../history?format=ndjson` reaches this file
// through a route constraint on the `format` query parameter: find-my-way prefers the
// constrained route when the request carries format=ndjson and otherwise falls back to the
// JSON history route, wherever that is registered, which is left untouched.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { NotFoundError, agreementStream, reviewStream } from '@cm/domain';
import { exportStream } from '@cm/event-store';
import type { AppDeps } from '../deps.js';
import { agreementParams, reviewParams } from '../schemas.js';

const NDJSON = 'application/x-ndjson';

/** What find-my-way stores per constraint value (a route's handler), as Fastify types it. */
type RouteHandler = Parameters<ReturnType<Parameters<FastifyInstance['addConstraintStrategy']>[0]['storage']>['set']>[1];

/** The value of `format` in a request's query string, or undefined. */
function formatOf(req: IncomingMessage): string | undefined {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  // Most requests carry no format at all: skip parsing their query.
  if (q < 0 || !url.includes('format=', q)) return undefined;
  return new URLSearchParams(url.slice(q + 1)).get('format') ?? undefined;
}

export const exportRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const { eventStore } = deps;

  if (!app.hasConstraintStrategy('format')) {
    app.addConstraintStrategy({
      name: 'format',
      storage() {
        const handlers = new Map<unknown, RouteHandler>();
        return {
          get: (value: unknown) => handlers.get(value) ?? null,
          set: (value: unknown, handler: RouteHandler) => {
            handlers.set(value, handler);
          },
        };
      },
      deriveConstraint: formatOf,
      // Any other format (or none) is answered by the unconstrained route, as before.
      mustMatchWhenDerived: false,
    });
  }

  async function sendBundle(reply: FastifyReply, stream: string, notFound: () => Error) {
    const bundle = await exportStream(eventStore, stream, deps.now().toISOString());
    if (!bundle) throw notFound();
    // The header is computed before the first byte goes out, so an unknown id is still a 404;
    // after that the events are read from the log page by page as the client takes them.
    return reply
      .type(NDJSON)
      .header('content-disposition', `attachment; filename="${stream}.ndjson"`)
      .header('cache-control', 'no-store')
      .send(Readable.from(bundle.lines));
  }

  const agreementNotFound = (id: string) => () => new NotFoundError(`agreement ${id} not found`, 'agreement_not_found');
  const reviewNotFound = (id: string) => () => new NotFoundError(`review ${id} not found`, 'review_not_found');

  app.get('/v1/agreements/:id/export', {
    schema: {
      tags: ['audit'],
      operationId: 'exportAgreement',
      summary: 'The agreement stream as an NDJSON bundle with its hash chain (also at `history?format=ndjson`); verify offline with `pnpm verify-bundle <file>`',
      params: agreementParams,
      problems: { 400: ['invalid_input'], 404: ['agreement_not_found'] },
    },
  }, async (request, reply) => sendBundle(reply, agreementStream(request.params.id), agreementNotFound(request.params.id)));

  app.get('/v1/agreements/:id/history', {
    constraints: { format: 'ndjson' },
    // Documented under /export; a second operation on the history path would confuse the spec.
    schema: { hide: true, params: agreementParams, querystring: z.object({ format: z.literal('ndjson') }) },
  }, async (request, reply) => sendBundle(reply, agreementStream(request.params.id), agreementNotFound(request.params.id)));

  app.get('/v1/reviews/:id/history', {
    constraints: { format: 'ndjson' },
    schema: { hide: true, params: reviewParams, querystring: z.object({ format: z.literal('ndjson') }) },
  }, async (request, reply) => sendBundle(reply, reviewStream(request.params.id), reviewNotFound(request.params.id)));

  app.get('/v1/reviews/:id/export', {
    schema: {
      tags: ['audit'],
      operationId: 'exportReview',
      summary: 'The review stream as an NDJSON bundle with its hash chain (also at `history?format=ndjson`); verify offline with `pnpm verify-bundle <file>`',
      params: reviewParams,
      problems: { 400: ['invalid_input'], 404: ['review_not_found'] },
    },
  }, async (request, reply) => sendBundle(reply, reviewStream(request.params.id), reviewNotFound(request.params.id)));
};
