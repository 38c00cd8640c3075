// A real app on a real SQLite file in a temp folder, with the projector running, for
// integration tests through app.inject(). Not exported from the service's entry.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Role } from '@cm/domain';
import { createKeyRing, createLogger, hashSecret, writeApiKeysFile } from '@cm/platform';
import { createSqliteEventStore, createSqliteIdempotencyStore, createSqliteLogTree, loadOrCreateNoteSigner, parseVerifierKey, COSIGNATURE_V1, type EventStore, type IdempotencyStore, type SqliteEventStore, type WriterSupervision } from '@cm/event-store';
import { createMemoryReadStore, createProjector, createQueries, type ReadStore } from '@cm/read-models';
import { buildApp, type App } from '../app.js';
import type { AppDeps } from '../deps.js';
import { createOutcomeCompleter } from '../review-outcomes.js';
import { createTransparency, defaultLogOrigin, type Transparency } from '../transparency.js';
import { createWebhookDispatcher, createWebhookStore } from '../webhooks/webhook-dispatcher.js';

export type TestApp = {
  app: App;
  eventStore: SqliteEventStore;
  readStore: ReadStore;
  dir: string;
  /** The Merkle tree and checkpoints the app serves (its signing key in `dir`). */
  transparency: Transparency;
  /** Moves the clock the app sees. */
  setNow(iso: string): void;
  close(): Promise<void>;
};

export type TestKey = { name: string; role: Role; parties?: string[]; secret: string };

/** `Authorization` header of a test key. */
export const bearer = (key: { secret: string }) => ({ authorization: `Bearer ${key.secret}` });

export async function createTestApp(options: {
  now?: string;
  readWaitMs?: number;
  dir?: string;
  /** With keys, the app requires them (written to a keys file in `dir`); without, AUTH=off. */
  keys?: TestKey[];
  rateLimit?: AppDeps['rateLimit'];
  corsOrigins?: string[];
  /** PUBLIC_URL as the service is configured with it (the OpenAPI document's server). */
  publicUrl?: string;
  /** Where the built dashboard is looked for (default web/dist). */
  webRoot?: string;
  /** No projector: whatever is appended stays "behind" (readiness, lag metrics, `?after=` timeouts). */
  stalled?: boolean;
  /** LOG_ORIGIN; default derived from publicUrl. */
  logOrigin?: string;
  /** WITNESS_KEYS: cosigner keys whose cosignatures the log takes. */
  witnessKeys?: string[];
  /** Heartbeat interval of open event streams. */
  feedHeartbeatMs?: number;
  /** What the app and its outcome completer write through (a fault-injecting wrapper); `eventStore` stays the file itself. */
  wrapEventStore?: (store: EventStore) => EventStore;
  /** The log writer's supervision (tests hold its restart, or watch its log lines). */
  writer?: WriterSupervision;
  /** The Idempotency-Key store (default: SQLite beside the log), a wrapper around it (a test pauses between claim and append), and its timing. */
  idempotency?: {
    store?: IdempotencyStore;
    wrap?: (store: IdempotencyStore) => IdempotencyStore;
    leaseMs?: number;
    waitMs?: number;
  };
} = {}): Promise<TestApp> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'cm-api-'));
  let now = options.now ? new Date(options.now) : null;
  const clock = () => now ?? new Date();
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const eventStore = createSqliteEventStore({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20, ...(options.writer ? { writer: options.writer } : {}) });
  const readStore = createMemoryReadStore();
  const projector = options.stalled ? null : createProjector({ eventStore, readStore, logger });
  await projector?.start();
  let keyRing = null;
  if (options.keys) {
    const path = join(dir, 'api-keys.json');
    writeApiKeysFile(path, { keys: options.keys.map((k) => ({ name: k.name, role: k.role, parties: k.parties ?? [], sha256: hashSecret(k.secret) })) });
    keyRing = createKeyRing(path);
  }
  const writeStore = options.wrapEventStore?.(eventStore) ?? eventStore;
  // As in the api role of main.ts: half-written review outcomes are completed at start and as they appear.
  const outcomes = createOutcomeCompleter({ eventStore: writeStore, logger });
  await outcomes.start();
  const baseIdempotency = options.idempotency?.store ?? createSqliteIdempotencyStore(eventStore.db);
  const idempotency = options.idempotency?.wrap?.(baseIdempotency) ?? baseIdempotency;
  const origin = options.logOrigin ?? defaultLogOrigin(options.publicUrl ?? null);
  const transparency = createTransparency({
    tree: createSqliteLogTree(eventStore.db, eventStore), origin, signer: loadOrCreateNoteSigner(join(dir, 'log-signing-key.pem'), origin), now: clock,
    witnesses: (options.witnessKeys ?? []).map((k) => parseVerifierKey(k, COSIGNATURE_V1)),
  });
  // Webhook subscriptions beside the log; deliveries run when a test calls runOnce (its clock).
  const webhookStore = createWebhookStore(eventStore.db);
  const webhooks = { store: webhookStore, allowLoopbackHttp: true, dispatcher: createWebhookDispatcher({ eventStore, store: webhookStore, now: clock, logger, allowLoopbackHttp: true }) };
  const app = await buildApp({
    webhooks,
    eventStore: writeStore, readStore, queries: createQueries(readStore), idempotency, projector, logger,
    idempotencyTiming: { ...(options.idempotency?.leaseMs ? { leaseMs: options.idempotency.leaseMs } : {}), ...(options.idempotency?.waitMs ? { waitMs: options.idempotency.waitMs } : {}) },
    now: clock, readWaitMs: options.readWaitMs ?? 5000, bodyLimit: 1024 * 1024,
    keyRing, rateLimit: options.rateLimit ?? null, corsOrigins: options.corsOrigins ?? [],
    publicUrl: options.publicUrl ?? null,
    transparency,
    ...(options.feedHeartbeatMs ? { feedHeartbeatMs: options.feedHeartbeatMs } : {}),
    webRoot: options.webRoot,
  });
  await app.ready();
  return {
    app, eventStore, readStore, dir, transparency,
    setNow(iso) {
      now = new Date(iso);
    },
    async close() {
      await app.close();
      await outcomes.stop();
      await projector?.stop();
      await eventStore.close();
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
