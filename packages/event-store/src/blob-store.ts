// Evidence files, stored content-addressed by SHA-256 behind one port. The event that attaches a
// file records only its hash (the hash chain covers it); the bytes live here, once per content.
// Embedded: files under DATA_DIR/blobs/<aa>/<sha256>, written to a temp file, fsynced and renamed
// into place, so a crash leaves either the whole file or none. With PostgreSQL: a table of its own.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import pg from 'pg';

export type BlobPut = { sha256: string; size: number; created: boolean };

export type BlobStore = {
  /** Stores the bytes (once per content) and answers their SHA-256. */
  put(bytes: Uint8Array): Promise<BlobPut>;
  /** The bytes stored under the hash, or null when there are none. Returned as stored, not re-hashed. */
  get(sha256: string): Promise<Buffer | null>;
  has(sha256: string): Promise<boolean>;
  close(): Promise<void>;
};

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** What a stored blob says about itself: missing, intact, or changed (its bytes no longer hash to its name). */
export type BlobCheck = { sha256: string; state: 'ok' | 'missing' | 'changed'; actual?: string };

export async function checkBlob(store: BlobStore, sha256: string): Promise<BlobCheck> {
  const bytes = await store.get(sha256);
  if (!bytes) return { sha256, state: 'missing' };
  const actual = sha256Hex(bytes);
  return actual === sha256 ? { sha256, state: 'ok' } : { sha256, state: 'changed', actual };
}

export function createFileBlobStore(dir: string): BlobStore {
  const pathOf = (sha256: string) => {
    if (!SHA256_HEX.test(sha256)) throw new Error(`not a SHA-256: ${sha256}`);
    return join(dir, sha256.slice(0, 2), sha256);
  };
  const exists = async (p: string) => stat(p).then(() => true, (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return false;
    throw err;
  });
  return {
    async put(bytes) {
      const sha256 = sha256Hex(bytes);
      const target = pathOf(sha256);
      if (await exists(target)) return { sha256, size: bytes.byteLength, created: false };
      await mkdir(dirname(target), { recursive: true });
      const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        const fd = openSync(tmp, 'wx', 0o640);
        try {
          let off = 0;
          while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        await rename(tmp, target);
        // The rename itself is durable only once the directory is synced.
        const dfd = openSync(dirname(target), 'r');
        try {
          fsyncSync(dfd);
        } finally {
          closeSync(dfd);
        }
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      return { sha256, size: bytes.byteLength, created: true };
    },
    async get(sha256) {
      if (!SHA256_HEX.test(sha256)) return null;
      return readFile(pathOf(sha256)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
    },
    async has(sha256) {
      return SHA256_HEX.test(sha256) && exists(pathOf(sha256));
    },
    async close() {},
  };
}

/** Blobs in the PostgreSQL log's database (table `blobs`, migration 2); the pool is the caller's unless a URL is given. */
export function createPostgresBlobStore(target: pg.Pool | string): BlobStore {
  const own = typeof target === 'string';
  const pool = typeof target === 'string' ? new pg.Pool({ connectionString: target, max: 4 }) : target;
  return {
    async put(bytes) {
      const sha256 = sha256Hex(bytes);
      const { rowCount } = await pool.query('INSERT INTO blobs (sha256, size, bytes) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING', [sha256, bytes.byteLength, Buffer.from(bytes)]);
      return { sha256, size: bytes.byteLength, created: rowCount === 1 };
    },
    async get(sha256) {
      if (!SHA256_HEX.test(sha256)) return null;
      const { rows } = await pool.query<{ bytes: Buffer }>('SELECT bytes FROM blobs WHERE sha256 = $1', [sha256]);
      return rows[0]?.bytes ?? null;
    },
    async has(sha256) {
      if (!SHA256_HEX.test(sha256)) return false;
      const { rowCount } = await pool.query('SELECT 1 FROM blobs WHERE sha256 = $1', [sha256]);
      return rowCount === 1;
    },
    async close() {
      if (own) await pool.end();
    },
  };
}
