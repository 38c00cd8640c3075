// buildApp(deps): the Fastify application, never listening; main.ts listens.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify from 'fastify';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { accessPlugin } from './access.js';
import { readScopePlugin } from './read-scope.js';
import type { AppDeps } from './deps.js';
import { requestIdOf } from './http-support.js';
import { documentTransforms, problemSchema } from './openapi.js';
import { clientErrorHandler, refuseBodyTooLarge } from './http-edges.js';
import { installJsonBodyParser } from './json-body.js';
import { installErrorHandling, problem, sendProblem } from './problem.js';
import { agreementRoutes } from './routes/agreements.js';
import { correctionRoutes } from './routes/corrections.js';
import { auditRoutes } from './routes/audit.js';
import { eventRoutes } from './routes/events.js';
import { exportRoutes } from './routes/export.js';
import { logRoutes } from './routes/log.js';
import { operationRoutes } from './routes/operations.js';
import { reviewRoutes } from './routes/reviews.js';
import { webhookRoutes } from './routes/webhooks.js';
import { meRoutes } from './routes/me.js';
import { webRoutes } from './routes/web.js';
import { sheetRoutes } from './routes/sheets.js';

// Messages a ministry tool's developer reads: "is required" rather than zod's type jargon.
function configureMessages(): void {
  z.config({
    customError: (issue) => {
      if (issue.input === undefined) return 'is required';
      if (issue.code === 'invalid_type') return `must be ${issue.expected === 'int' ? 'an integer' : `of type ${issue.expected}`}`;
      return undefined;
    },
  });
}

export async function buildApp(deps: AppDeps) {
  configureMessages();
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'api' }),
    bodyLimit: deps.bodyLimit,
    // X-Request-Id is taken only in a bounded form (CALLER_ID_PATTERN): it reaches every log line.
    requestIdHeader: false,
    genReqId: (req) => requestIdOf(req.headers),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // Refusals while closing are answered below as problem+json, like every other error.
    return503OnClosing: false,
    // What Node's HTTP parser refuses (a body shorter than its Content-Length, ...) is problem+json too.
    clientErrorHandler,
    // Refusals from the router itself (undecodable URL, over-long parameter) are problem+json too.
    frameworkErrors: (error, _request, reply) => {
      if (error.code === 'FST_ERR_BAD_URL') {
        return sendProblem(reply, problem(400, 'invalid_url', 'the URL is not validly percent-encoded', [{ path: 'url', message: 'must be a valid percent-encoded URL' }]));
      }
      if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
        return sendProblem(reply, problem(414, 'url_too_long', 'a path parameter of the URL is too long'));
      }
      return sendProblem(reply, problem(500, 'internal_error', 'the request could not be routed'));
    },
  }).withTypeProvider<ZodTypeProvider>();

  // Only JSON bodies are accepted. Reading every other body before refusing it keeps the
  // contract's order: a body over the limit is 413 whatever its type, then 415.
  installJsonBodyParser(app);
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => {
    done(Object.assign(new Error('send the body as application/json'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }), undefined);
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app, refuseBodyTooLarge);

  let closing = false;
  // Connections with no request in flight: Node's close() ends the idle keep-alive ones, but not
  // one a client opened and has sent nothing on yet, which would hold a shutdown until the
  // client gives up. Those are ended here; a connection with a request in flight finishes it.
  const inFlight = new Map<Socket, number>();
  app.server.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    res.once('close', () => inFlight.has(socket) && inFlight.set(socket, Math.max(0, inFlight.get(socket)! - 1)));
  });
  app.addHook('preClose', async () => {
    closing = true;
    for (const [socket, n] of inFlight) if (n === 0) socket.destroy();
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (closing) {
      return sendProblem(reply, problem(503, 'shutting_down', 'the service is shutting down; retry on another instance or in a moment'), { 'retry-after': '2', connection: 'close' });
    }
  });

  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-request-id', request.id);
    // Answers finished while closing also close their connection, or keep-alive would hold close() open.
    if (closing) reply.header('connection', 'close');
    return payload;
  });

  // Security headers on every answer. The CSP allows only this origin's scripts and styles,
  // which is what the documentation page at /docs loads.
  await app.register(helmet, {
    global: true,
    // The embedded start serves plain HTTP on loopback; upgrading /docs' requests to https would break it there.
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
    crossOriginResourcePolicy: { policy: deps.corsOrigins.length ? 'cross-origin' : 'same-origin' },
  });
  if (deps.corsOrigins.length) {
    await app.register(cors, {
      origin: deps.corsOrigins,
      methods: ['GET', 'HEAD', 'POST'],
      allowedHeaders: ['Authorization', 'Content-Type', 'If-Match', 'Idempotency-Key', 'X-Correlation-Id', 'X-Request-Id'],
      exposedHeaders: ['ETag', 'Location', 'Retry-After', 'Idempotent-Replayed', 'X-Request-Id', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'],
      maxAge: 600,
    });
  }
  await app.register(accessPlugin, { keyRing: deps.keyRing, rateLimit: deps.rateLimit, bodyLimit: deps.bodyLimit });
  await app.register(readScopePlugin, deps);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Commitment monitor API',
        version: '1.0.0',
        description:
          'The ledger of commitments in intergovernmental agreements. Commands answer with `revision` and `position`; ' +
          'every GET accepts `?after=<position>` (read-your-writes, 503 after 5 s); single resources carry `ETag` and commands ' +
          'accept `If-Match` (412 when stale) and `Idempotency-Key`. Errors are application/problem+json. ' +
          'Every route but /health, /ready, /docs and this document (/openapi.json, public) needs `Authorization: Bearer <secret>` of an API key: ' +
          '`viewer` reads, `editor` also runs commands on agreements of its parties and on commitments its parties are responsible for, ' +
          '`auditor` reads plus history, integrity, explain and exports, `admin` everything. A key with parties (any role) sees only agreements one of its ' +
          'parties is a party to, and reviews of them cut to them; anything else answers 404 as if it did not exist. 401 without a valid key, 403 outside the key\'s rights, ' +
          '429 with Retry-After over the rate limit per key.',
      },
      // Where clients send requests: PUBLIC_URL when the service knows it, else wherever this document was fetched from.
      servers: [{ url: deps.publicUrl ? deps.publicUrl.replace(/\/+$/, '') : '/' }],
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key secret from API_KEYS_FILE' } },
        schemas: { Problem: problemSchema },
      },
      security: [{ apiKey: [] }],
      tags: [
        { name: 'agreements', description: 'Signed agreements: record, read, terminate' },
        { name: 'commitments', description: 'The commitments of agreements and the reports on them' },
        { name: 'reviews', description: 'Review meetings of agreements, their outcomes and calendar' },
        { name: 'dashboard', description: 'Counts across the ledger' },
        { name: 'audit', description: 'History, hash chains, explanations, corrections and export bundles, from the log itself' },
        { name: 'events', description: 'The log as a feed for integrations: pages of events and a live Server-Sent Events stream' },
        { name: 'operations', description: 'Probes and metrics for operators' },
      ],
    },
    ...documentTransforms(),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(operationRoutes, deps);
  await app.register(agreementRoutes, deps);
  await app.register(correctionRoutes, deps);
  await app.register(reviewRoutes, deps);
  await app.register(auditRoutes, deps);
  await app.register(exportRoutes, deps);
  await app.register(logRoutes, deps);
  await app.register(eventRoutes, deps);
  await app.register(webhookRoutes, deps);
  await app.register(meRoutes, deps);
  await app.register(webRoutes, { webRoot: deps.webRoot });
  await app.register(sheetRoutes, deps);
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
