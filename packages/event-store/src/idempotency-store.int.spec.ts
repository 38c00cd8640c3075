// Idempotency answers on a real SQLite file: kept across a reopen, pruned only past retention.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IDEMPOTENCY_RETENTION_MS, createSqliteIdempotencyStore } from './idempotency-store';
import { openSqliteDatabase } from './sqlite-event-store';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

const answer = (key: string, createdAt: string) => ({ scope: 'mfa-ven', key, requestHash: 'h', statusCode: 200, body: { ok: key }, headers: { etag: '"1"' }, createdAt });

describe('SQLite idempotency answers', () => {
  it('survive a reopen and are kept at least 24 hours; only those past the retention are pruned', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-idem-'));
    dirs.push(dir);
    const now = Date.parse('2026-11-27T12:00:00.000Z');
    const ago = (hours: number) => new Date(now - hours * 3_600_000).toISOString();
    const first = openSqliteDatabase(join(dir, 'events.sqlite'));
    const store = createSqliteIdempotencyStore(first);
    await store.put(answer('yesterday', ago(25)));
    await store.put(answer('two-days-ago', ago(49)));
    first.close();

    const reopened = createSqliteIdempotencyStore(openSqliteDatabase(join(dir, 'events.sqlite')));
    expect(IDEMPOTENCY_RETENTION_MS).toBeGreaterThanOrEqual(24 * 3_600_000);
    expect(await reopened.prune(new Date(now - IDEMPOTENCY_RETENTION_MS).toISOString())).toBe(1);
    expect(await reopened.get('mfa-ven', 'yesterday')).toMatchObject({ statusCode: 200, body: { ok: 'yesterday' }, headers: { etag: '"1"' } });
    expect(await reopened.get('mfa-ven', 'two-days-ago')).toBeNull();
  });
});
