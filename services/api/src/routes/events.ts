// GET /v1/events: the log as a feed. As JSON, a page of the events the key sees after a
// position; with `Accept: text/event-stream`, a live tail as Server-Sent Events (`id:` is the
// position, so a reconnecting client's Last-Event-ID resumes exactly after what it received).
// Open streams are ended when the app closes, so a graceful shutdown never waits on them.
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ValidationError, slug } from '@cm/domain';
import { POSITION_PATTERN, type Subscription } from '@cm/event-store';
import { principalOf } from '../access.js';
import type { AppDeps } from '../deps.js';
import { EVENT_TYPES, createFeedView, feedEvent, readFeedPage } from '../event-feed.js';

const typesParam = z.string().max(2000).optional().transform((s, ctx) => {
  if (s === undefined || s === '') return undefined;
  const types = s.split(',').map((x) => x.trim());
  for (const type of types) {
    if (!EVENT_TYPES.includes(type)) {
      ctx.addIssue({ code: 'custom', message: `${type.slice(0, 60)} is not an event type; one of ${EVENT_TYPES.join(', ')}` });
      return z.NEVER;
    }
  }
  return types;
}).describe(`Comma-separated event types to keep (${EVENT_TYPES.join(', ')}); all when omitted`);

const eventsQuery = z.object({
  after: z.string().regex(POSITION_PATTERN, 'must be a position from this feed or a command').optional()
    .describe('Answer the events after this position (the `next` of the previous page); from the start of the log when omitted'),
  types: typesParam,
  agreementId: slug.optional().describe("Only the agreement's own events and those of the reviews that cover it"),
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('At most this many events (JSON only; 1-1000, default 100)'),
});

const eventsPage = z.object({
  events: z.array(feedEvent),
  next: z.string().nullable().describe('Pass as `after` for the next page: the last position scanned (null: the log is empty)'),
  more: z.boolean().describe('True when the page stopped before the end of the log: ask again at once'),
});

/** Whether the client asked for Server-Sent Events rather than a JSON page. */
const wantsStream = (accept: string | undefined) => typeof accept === 'string' && /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept);

export const eventRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const { eventStore } = deps;
  const heartbeatMs = deps.feedHeartbeatMs ?? 15_000;
  const open = new Set<() => void>();
  // Before Fastify stops the server: end every stream, so its connection closes and close() returns.
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });

  app.get('/v1/events', {
    schema: {
      tags: ['events'],
      operationId: 'listEvents',
      summary: 'The events the key sees, in log order, as a JSON page or a live Server-Sent Events stream',
      description:
        'Every event of the log the key may see, in log order, each with its `position` and `id`. A key with parties sees the events ' +
        'of the agreements one of its parties is a party to, and those of reviews covering one of them, cut to them (`agreementIds`, ' +
        '`data.agreementIds`, `data.assessments`). A `viewer` key sees attendees\' e-mail addresses masked (`m***@example.org`) and ' +
        'their names left out. As JSON: a page after `after`, with `next` to pass back. With `Accept: text/event-stream`: the ' +
        'connection stays open and each event is pushed as `id: <position>`, `event: <type>`, `data: <the event as JSON>`; a ' +
        'reconnecting client sends `Last-Event-ID` (it wins over `after`) and misses nothing; a `: heartbeat` comment every 15 s ' +
        'keeps proxies from closing an idle stream.',
      querystring: eventsQuery,
      // The event-stream answer is described above: the document generator takes one schema per status.
      response: { 200: eventsPage },
      problems: { 400: ['invalid_input'] },
    },
  }, async (request, reply) => {
    const principal = principalOf(request);
    const { after, types, agreementId, limit } = request.query;
    const view = createFeedView(eventStore, principal, { types, agreementId });
    if (!wantsStream(request.headers.accept)) return readFeedPage(eventStore, view, after ?? null, limit);

    const lastEventId = request.headers['last-event-id'];
    if (lastEventId !== undefined && (typeof lastEventId !== 'string' || !POSITION_PATTERN.test(lastEventId))) {
      throw new ValidationError('Last-Event-ID must be the id of an event this stream sent', [{ path: 'Last-Event-ID', message: 'must be a position' }]);
    }
    const from = lastEventId ?? after ?? null;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // The stream is the connection's last answer: ending it closes the socket (shutdown).
      connection: 'close',
      'x-accel-buffering': 'no',
      'x-request-id': request.id,
    });
    res.write('retry: 2000\n\n');
    streamEvents(res, { from, heartbeatMs, open, subscribe: (onEvents) => eventStore.subscribe({
      after: from, batchSize: 200, onEvents,
      onError: (err) => request.log.error({ err }, 'event feed: reading the log failed; retrying'),
    }), view, log: request.log });
  });
};

function streamEvents(
  res: ServerResponse,
  options: {
    from: string | null;
    heartbeatMs: number;
    open: Set<() => void>;
    subscribe: (onEvents: (events: import('@cm/event-store').StoredEvent[]) => Promise<void>) => Subscription;
    view: ReturnType<typeof createFeedView>;
    log: { info(obj: object, msg: string): void };
  },
): void {
  let ended = false;
  // Awaiting the socket's drain holds the subscription back: a slow reader gets a slower feed, never a buffer in memory.
  const write = (chunk: string) => new Promise<void>((resolve) => {
    if (ended || res.write(chunk)) return resolve();
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
  const subscription = options.subscribe(async (events) => {
    for (const e of events) {
      if (ended) return;
      const shown = await options.view(e);
      if (shown) await write(`id: ${shown.position}\nevent: ${shown.type}\ndata: ${JSON.stringify(shown)}\n\n`);
    }
  });
  const heartbeat = setInterval(() => void write(': heartbeat\n\n'), options.heartbeatMs);
  heartbeat.unref();
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    options.open.delete(end);
    void subscription.close();
    if (!res.writableEnded) res.end();
  };
  options.open.add(end);
  res.on('close', end);
}
