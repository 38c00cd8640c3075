// The BlobStore port against both adapters: a real directory and a real PostgreSQL database.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkBlob, createFileBlobStore, createPostgresBlobStore, sha256Hex, type BlobStore } from './blob-store.js';
import { migratePostgres } from './postgres-migrations.js';
import { PG_SKIP, freshPostgresDatabase, type FreshDatabase } from './testing/postgres.js';

const pdf = Buffer.from('%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n');

function contract(name: string, open: () => Promise<BlobStore>) {
  describe(name, () => {
    let store: BlobStore;
    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => store.close());
    it('stores by SHA-256 and answers the same bytes', async () => {
      const put = await store.put(pdf);
      expect(put).toEqual({ sha256: sha256Hex(pdf), size: pdf.byteLength, created: true });
      expect(Buffer.compare((await store.get(put.sha256))!, pdf)).toBe(0);
      expect(await store.has(put.sha256)).toBe(true);
      expect(await checkBlob(store, put.sha256)).toEqual({ sha256: put.sha256, state: 'ok' });
    });
    it('stores the same content once', async () => {
      expect((await store.put(Buffer.from(pdf))).created).toBe(false);
    });
    it('answers null for an unknown or malformed hash', async () => {
      expect(await store.get('0'.repeat(64))).toBeNull();
      expect(await store.get('../../etc/passwd')).toBeNull();
      expect(await store.has('nope')).toBe(false);
      expect(await checkBlob(store, 'a'.repeat(64))).toEqual({ sha256: 'a'.repeat(64), state: 'missing' });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'cm-blobs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
contract('file blob store', async () => createFileBlobStore(join(dir, 'blobs')));

describe('file blob store on disk', () => {
  it('leaves no temp file and reports a file changed on disk', async () => {
    const store = createFileBlobStore(join(dir, 'disk'));
    const { sha256 } = await store.put(Buffer.from('a,b\n1,2\n'));
    const sub = join(dir, 'disk', sha256.slice(0, 2));
    expect(readdirSync(sub)).toEqual([sha256]);
    writeFileSync(join(sub, sha256), 'a,b\n1,3\n');
    const check = await checkBlob(store, sha256);
    expect(check.state).toBe('changed');
    expect(check.actual).toBe(sha256Hex(Buffer.from('a,b\n1,3\n')));
  });
});

describe.skipIf(PG_SKIP)('postgres', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshPostgresDatabase('cm_blob');
    await migratePostgres(db.url);
  });
  afterAll(async () => db?.drop());
  contract('postgres blob store', async () => createPostgresBlobStore(db.url));
});
