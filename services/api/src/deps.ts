import type { Logger } from 'pino';
import type { EventStore, IdempotencyStore } from '@cm/event-store';
import type { Projector, Queries, ReadStore } from '@cm/read-models';

export type AppDeps = {
  eventStore: EventStore;
  readStore: ReadStore;
  queries: Queries;
  idempotency: IdempotencyStore;
  /** The in-process projector, when this process runs one (reported by /ready). */
  projector: Projector | null;
  logger: Logger;
  now: () => Date;
  /** How long `?after=` waits before answering 503 (5 s by contract). */
  readWaitMs: number;
  bodyLimit: number;
};
