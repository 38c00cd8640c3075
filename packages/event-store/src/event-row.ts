// The `events` row both SQL stores keep (SQLite and PostgreSQL share its columns), and the
// StoredEvent it reads back as.
import type { StoredEvent } from './event-store.js';

export type EventRow<P extends string | number | bigint = string | number | bigint> = {
  position: P;
  event_id: string;
  stream: string;
  revision: number;
  type: string;
  data: string;
  metadata: string;
  prev_hash: string;
  hash: string;
};

export const storedEventOf = (r: EventRow): StoredEvent => ({
  id: r.event_id,
  stream: r.stream,
  revision: Number(r.revision),
  position: String(r.position),
  type: r.type,
  data: JSON.parse(r.data) as unknown,
  metadata: JSON.parse(r.metadata) as StoredEvent['metadata'],
  prevHash: r.prev_hash,
  hash: r.hash,
});
