// Remembered answers for `Idempotency-Key`: a request first CLAIMS its key with a hash of itself
// (method, route, body, caller), then appends, then completes the claim with its answer. A repeat
// with the same key and hash gets the answer back (or waits while the first is in flight); the
// same key with another hash is refused. Kept beside the log so the memory survives restarts.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
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

/** How long a claim holds its key for its owner; past it, a repeat of the same request may take over. */
export const IDEMPOTENCY_LEASE_MS = 30_000;

export type ClaimRequest = {
  scope: string;
  key: string;
  requestHash: string;
  /** Unique per request: only the owner may complete or release its claim. */
  owner: string;
  /** The caller's clock (ISO instant): when the claim is made, from which its lease runs. */
  now: string;
  leaseMs?: number;
};

export type ClaimOutcome =
  /** The key is this request's now (new, or a pending claim of the same request whose owner is gone). */
  | { state: 'claimed' }
  /** The same request was answered: its answer. */
  | { state: 'done'; record: IdempotencyRecord }
  /** The key is held or was answered for another request. */
  | { state: 'mismatch' }
  /** The same request is being run by another owner, alive as far as can be told, whose lease still holds. */
  | { state: 'in_flight' };

export interface IdempotencyStore {
  claim(request: ClaimRequest): Promise<ClaimOutcome>;
  /** Stores the answer, only if `owner` still holds the claim; false when it does not. */
  complete(record: IdempotencyRecord, owner: string): Promise<boolean>;
  /**
   * Gives the claim up. `forget`: nothing was appended (a refusal), so the key is free for any
   * request again. Otherwise the outcome is unknown: the hash stays (another request is still
   * refused) and the same request may take over at once.
   */
  release(scope: string, key: string, owner: string, options: { forget: boolean }): Promise<void>;
  get(scope: string, key: string): Promise<IdempotencyRecord | null>;
  /** Forgets answers and claims older than the instant; returns how many were dropped. */
  prune(olderThan: string): Promise<number>;
}

/** An owner for one request: `host/pid/uuid`, so a process on the same host can tell a dead owner. */
export function idempotencyOwner(): string {
  return `${hostname()}/${process.pid}/${randomUUID()}`;
}

/**
 * Whether the owner's process is known to be gone: it ran on this host and its pid no longer
 * exists. A restarted process then takes over its dead predecessor's claims at once instead of
 * waiting for their leases. If it is wrong (a pid in another pid namespace under the same host
 * name), two runs of the SAME request overlap; they append the same event ids, so the log keeps
 * one and both answer it.
 */
export function idempotencyOwnerGone(owner: string): boolean {
  const [host, pid] = owner.split('/');
  const n = Number(pid);
  if (host !== hostname() || !Number.isInteger(n) || n <= 0 || n === process.pid) return false;
  try {
    process.kill(n, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

type Row = {
  scope: string; key: string; request_hash: string; status_code: number | null; body: string | null; headers: string | null;
  created_at: string; owner: string | null; lease_until: string | null;
};

const toRecord = (r: Row): IdempotencyRecord => ({
  scope: r.scope, key: r.key, requestHash: r.request_hash, statusCode: r.status_code!, body: JSON.parse(r.body!) as unknown,
  headers: JSON.parse(r.headers!) as Record<string, string>, createdAt: r.created_at,
});

export type SqliteIdempotencyOptions = {
  /**
   * True when `db` is the log's own file (the embedded log). Its claims then need no fsync of
   * their own: the log's append that follows a claim fsyncs the same WAL file, and with it the
   * claim written before it. On a file of its own, a claim is fsynced before the request runs.
   */
  besideLog?: boolean;
};

/**
 * Durability without an fsync on the request thread: claims and answers commit with
 * synchronous=NORMAL in WAL mode (durable across a process crash; on power loss only what the
 * next fsync of the WAL had not covered is lost). What may be lost is only an answer, never the
 * claim before an append (see `besideLog`): a retry of the same request then re-runs, meets its
 * own event ids in the log, appends nothing and answers what was written; another request under
 * the key still meets the claim's hash and is refused.
 */
export function createSqliteIdempotencyStore(db: Database.Database, options: SqliteIdempotencyOptions = {}): IdempotencyStore {
  const besideLog = options.besideLog ?? true;
  db.exec(`CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, status_code INTEGER,
    body TEXT, headers TEXT, created_at TEXT NOT NULL, owner TEXT, lease_until TEXT, PRIMARY KEY (scope, key))`);
  // Files made before claims existed: every row there is a completed answer, and the answer
  // columns were NOT NULL; the table is rebuilt (once, in one transaction) to hold pending claims.
  const columns = db.prepare<[], { name: string; notnull: number }>('PRAGMA table_info(idempotency)').all();
  if (!columns.some((c) => c.name === 'owner') || columns.some((c) => c.name === 'status_code' && c.notnull === 1)) {
    db.transaction(() => {
      db.exec(`CREATE TABLE idempotency_claims (
        scope TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, status_code INTEGER,
        body TEXT, headers TEXT, created_at TEXT NOT NULL, owner TEXT, lease_until TEXT, PRIMARY KEY (scope, key));
        INSERT INTO idempotency_claims (scope, key, request_hash, status_code, body, headers, created_at)
          SELECT scope, key, request_hash, status_code, body, headers, created_at FROM idempotency;
        DROP TABLE idempotency;
        ALTER TABLE idempotency_claims RENAME TO idempotency;`);
    }).immediate();
  }

  const get = db.prepare<[string, string], Row>('SELECT * FROM idempotency WHERE scope = ? AND key = ?');
  const insertClaim = db.prepare(
    `INSERT INTO idempotency (scope, key, request_hash, created_at, owner, lease_until) VALUES (@scope, @key, @requestHash, @now, @owner, @leaseUntil)`,
  );
  const takeOver = db.prepare('UPDATE idempotency SET owner = @owner, lease_until = @leaseUntil WHERE scope = @scope AND key = @key AND status_code IS NULL');
  const complete = db.prepare(
    `UPDATE idempotency SET status_code = @statusCode, body = @body, headers = @headers, owner = NULL, lease_until = NULL
     WHERE scope = @scope AND key = @key AND owner = @owner AND status_code IS NULL`,
  );
  const forget = db.prepare('DELETE FROM idempotency WHERE scope = ? AND key = ? AND owner = ? AND status_code IS NULL');
  const abandon = db.prepare('UPDATE idempotency SET owner = NULL, lease_until = NULL WHERE scope = ? AND key = ? AND owner = ? AND status_code IS NULL');
  const prune = db.prepare<[string]>('DELETE FROM idempotency WHERE created_at < ?');

  // IMMEDIATE: the read and the write of a claim are one step for every process on the file.
  const claimTx = db.transaction((r: ClaimRequest): ClaimOutcome => {
    const leaseUntil = new Date(Date.parse(r.now) + (r.leaseMs ?? IDEMPOTENCY_LEASE_MS)).toISOString();
    const row = get.get(r.scope, r.key);
    if (!row) {
      insertClaim.run({ scope: r.scope, key: r.key, requestHash: r.requestHash, now: r.now, owner: r.owner, leaseUntil });
      return { state: 'claimed' };
    }
    if (row.request_hash !== r.requestHash) return { state: 'mismatch' };
    if (row.status_code !== null) return { state: 'done', record: toRecord(row) };
    if (row.owner !== null && row.lease_until !== null && row.lease_until > r.now && !idempotencyOwnerGone(row.owner)) return { state: 'in_flight' };
    takeOver.run({ scope: r.scope, key: r.key, owner: r.owner, leaseUntil });
    return { state: 'claimed' };
  });

  const level = String(db.pragma('synchronous', { simple: true }));
  /** Runs a write committing with synchronous=NORMAL (no fsync), then restores the connection's level. */
  const withoutFsync = <T>(write: () => T): T => {
    db.pragma('synchronous = NORMAL');
    try {
      return write();
    } finally {
      db.pragma(`synchronous = ${level}`);
    }
  };

  return {
    async claim(request) {
      const run = () => claimTx.immediate(request);
      return besideLog ? withoutFsync(run) : run();
    },
    async complete(record, owner) {
      return withoutFsync(() => complete.run({ ...record, owner, body: JSON.stringify(record.body), headers: JSON.stringify(record.headers) }).changes === 1);
    },
    async release(scope, key, owner, { forget: free }) {
      withoutFsync(() => (free ? forget : abandon).run(scope, key, owner));
    },
    async get(scope, key) {
      const r = get.get(scope, key);
      return r && r.status_code !== null ? toRecord(r) : null;
    },
    async prune(olderThan) {
      return withoutFsync(() => prune.run(olderThan).changes);
    },
  };
}
