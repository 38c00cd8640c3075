// Liveness, readiness and metrics: what an orchestrator and an operator look at.
import fp from 'fastify-plugin';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { comparePositions } from '@cm/event-store';
import type { AppDeps } from '../deps.js';
import { sendProblem, problem } from '../problem.js';

// Wrapped with fastify-plugin so the request counter sees every route of the app.
const operations: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const startedAt = Date.now();
  const counters = new Map<string, number>();
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const key = `${request.method}|${route}|${reply.statusCode}`;
    counters.set(key, (counters.get(key) ?? 0) + 1);
  });

  /** Where the log and the ledger projection stand, read once for /ready and /metrics alike. */
  async function projectionStatus() {
    const head = await deps.eventStore.headPosition();
    const checkpoint = await deps.readStore.checkpoint();
    const lag = head === null ? 0 : Number(BigInt(head) - BigInt(checkpoint ?? '0'));
    return { name: 'ledger', checkpoint, head, lag };
  }

  app.get('/health', { schema: { tags: ['operations'], operationId: 'getHealth', summary: 'Liveness: 200 while the process lives' } }, async () => ({ status: 'ok' }));

  app.get('/ready', {
    schema: {
      tags: ['operations'], operationId: 'getReadiness', summary: 'Readiness: stores answer and projections are caught up',
      problems: { 503: ['projections_behind', 'store_unavailable', 'writer_unavailable'] },
    },
  }, async (_request, reply) => {
    // Appends are refused while the log's writer is down (it restarts by itself): not ready.
    // Why it stopped is in the service's log, not in this unauthenticated answer.
    if (deps.eventStore.unavailable?.() != null) {
      return sendProblem(reply, problem(503, 'writer_unavailable', 'the log writer thread is not running; it is being restarted'), { 'retry-after': '1' });
    }
    try {
      const projection = await projectionStatus();
      if (comparePositions(projection.checkpoint, projection.head) < 0) {
        return sendProblem(reply, { ...problem(503, 'projections_behind', `the ledger projection is ${projection.lag} events behind the log`), ...{ projections: [projection] } }, { 'retry-after': '1' });
      }
      return { status: 'ready', projections: [projection] };
    } catch (err) {
      _request.log.error({ err }, 'readiness check failed');
      return sendProblem(reply, problem(503, 'store_unavailable', 'the event store or the read store does not answer'), { 'retry-after': '5' });
    }
  });

  app.get('/metrics', { schema: { tags: ['operations'], operationId: 'getMetrics', summary: 'Prometheus text metrics', hide: false } }, async (_request, reply) => {
    const { head, checkpoint, lag } = await projectionStatus();
    const mem = process.memoryUsage();
    const lines = [
      '# HELP cm_http_requests_total HTTP requests answered, by method, route and status.',
      '# TYPE cm_http_requests_total counter',
      ...[...counters].map(([k, v]) => {
        const [method, route, status] = k.split('|');
        return `cm_http_requests_total{method="${method}",route="${route}",status="${status}"} ${v}`;
      }),
      '# HELP cm_log_head_position Position of the last event in the log.',
      '# TYPE cm_log_head_position gauge',
      `cm_log_head_position ${head ?? 0}`,
      '# HELP cm_projection_checkpoint_position Position the projection has applied.',
      '# TYPE cm_projection_checkpoint_position gauge',
      `cm_projection_checkpoint_position{projection="ledger"} ${checkpoint ?? 0}`,
      '# HELP cm_projection_lag_events Events in the log not yet applied by the projection.',
      '# TYPE cm_projection_lag_events gauge',
      `cm_projection_lag_events{projection="ledger"} ${lag}`,
      '# HELP process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE process_resident_memory_bytes gauge',
      `process_resident_memory_bytes ${mem.rss}`,
      '# HELP process_uptime_seconds Seconds since the API started.',
      '# TYPE process_uptime_seconds gauge',
      `process_uptime_seconds ${((Date.now() - startedAt) / 1000).toFixed(1)}`,
    ];
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return `${lines.join('\n')}\n`;
  });
};

export const operationRoutes = fp(operations, { name: 'operations' });
