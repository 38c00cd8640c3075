import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { KeyRing } from '@cm/platform';
import type { EventStore, IdempotencyStore } from '@cm/event-store';
import type { Projector, Queries, ReadStore } from '@cm/read-models';
import type { ReminderOffset } from '@cm/reminders';
import type { Transparency } from './transparency.js';
import type { WebhookStore, createWebhookDispatcher } from './webhooks/webhook-dispatcher.js';

export type AppDeps = {
  eventStore: EventStore;
  readStore: ReadStore;
  queries: Queries;
  idempotency: IdempotencyStore;
  /** How long an Idempotency-Key claim holds before a repeat may take it over, and how long a repeat waits for one in flight. */
  idempotencyTiming?: { leaseMs?: number; waitMs?: number };
  /** The in-process projector, when this process runs one (reported by /ready). */
  projector: Projector | null;
  logger: Logger;
  now: () => Date;
  /** How long `?after=` waits before answering 503 (5 s by contract). */
  readWaitMs: number;
  bodyLimit: number;
  /** API keys; null when AUTH=off (every caller is `anonymous`, loopback only). */
  keyRing: KeyRing | null;
  /** Requests per key per window; the counters live in Redis when `redis` is given. */
  rateLimit: { max: number; windowMs: number; redis?: Redis | undefined; namespace?: string | undefined } | null;
  /** Browser origins allowed to call the API (CORS); none by default. */
  corsOrigins: string[];
  /** REMINDER_OFFSETS, to show a review's planned sends (default 7d,1d, the configuration's default). */
  reminderOffsets?: readonly ReminderOffset[];
  /** Where clients reach the service (PUBLIC_URL), named as the server of the OpenAPI document; none: "/". */
  publicUrl?: string | null | undefined;
  /** The log's Merkle tree and signed checkpoints (/v1/log/..., leafIndex in histories). */
  transparency: Transparency;
  /** How often an open event stream (GET /v1/events as Server-Sent Events) sends a heartbeat comment (default 15 s). */
  feedHeartbeatMs?: number;
  /** Webhook subscriptions and their deliveries; without, the /v1/webhooks routes are not served. */
  webhooks?: { store: WebhookStore; dispatcher: ReturnType<typeof createWebhookDispatcher>; allowLoopbackHttp: boolean; allowHosts?: readonly string[] };
  /** The built dashboard (web/dist by default); GET / answers 503 while it is missing. */
  webRoot?: string | undefined;
};
