// Remembered answers for `Idempotency-Key`: a repeat with the same key and body gets the
// first answer back; the same key with another body is refused. Kept beside the log so the
// memory survives restarts.
import type Database from 'better-sqlite3';

export type IdempotencyRecord = {
  /** The key as the caller sent it, scoped by actor so two callers never collide. */
  key: string;
  scope: string;
  requestHash: string;
  statusCode: number;
  body: unknown;
  headers: Record<string, string>;
  createdAt: string;
};

/** How long an answer is kept: the contract promises at least 24 hours; twice that for slow retries. */
export const IDEMPOTENCY_RETENTION_MS = 48 * 3_600_000;

export interface IdempotencyStore {
  get(scope: string, key: string): Promise<IdempotencyRecord | null>;
  put(record: IdempotencyRecord): Promise<void>;
  /** Forgets answers older than the instant; returns how many were dropped. */
  prune(olderThan: string): Promise<number>;
}

export function createSqliteIdempotencyStore(db: Database.Database): IdempotencyStore {
  db.exec(`CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, status_code INTEGER NOT NULL,
    body TEXT NOT NULL, headers TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (scope, key))`);
  const get = db.prepare<[string, string], { scope: string; key: string; request_hash: string; status_code: number; body: string; headers: string; created_at: string }>(
    'SELECT * FROM idempotency WHERE scope = ? AND key = ?',
  );
  const put = db.prepare(
    `INSERT INTO idempotency (scope, key, request_hash, status_code, body, headers, created_at)
     VALUES (@scope, @key, @requestHash, @statusCode, @body, @headers, @createdAt) ON CONFLICT DO NOTHING`,
  );
  const prune = db.prepare<[string]>('DELETE FROM idempotency WHERE created_at < ?');
  return {
    async get(scope, key) {
      const r = get.get(scope, key);
      return r
        ? { scope: r.scope, key: r.key, requestHash: r.request_hash, statusCode: r.status_code, body: JSON.parse(r.body) as unknown, headers: JSON.parse(r.headers) as Record<string, string>, createdAt: r.created_at }
        : null;
    },
    async put(record) {
      put.run({ ...record, body: JSON.stringify(record.body), headers: JSON.stringify(record.headers) });
    },
    async prune(olderThan) {
      return prune.run(olderThan).changes;
    },
  };
}
