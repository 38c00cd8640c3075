// An app whose read models never move: no projector runs, so whatever is appended stays
// "behind". For tests of readiness, lag metrics and `?after=` timeouts. Test-only.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@cm/platform';
import { createSqliteEventStore, createSqliteIdempotencyStore, type SqliteEventStore } from '@cm/event-store';
import { createMemoryReadStore, createQueries } from '@cm/read-models';
import { buildApp, type App } from '../app';

export type StalledApp = { app: App; eventStore: SqliteEventStore; close(): Promise<void> };

export async function createStalledApp(options: { readWaitMs?: number } = {}): Promise<StalledApp> {
  const dir = mkdtempSync(join(tmpdir(), 'cm-api-stalled-'));
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const eventStore = createSqliteEventStore({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20 });
  const readStore = createMemoryReadStore();
  const app = await buildApp({
    eventStore, readStore, queries: createQueries(readStore), idempotency: createSqliteIdempotencyStore(eventStore.db), projector: null, logger,
    now: () => new Date(), readWaitMs: options.readWaitMs ?? 200, bodyLimit: 1024 * 1024, keyRing: null, rateLimit: null, corsOrigins: [],
  });
  await app.ready();
  return {
    app,
    eventStore,
    async close() {
      await app.close();
      await eventStore.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
