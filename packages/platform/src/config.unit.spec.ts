import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('EVENT_STORE_URL', () => {
  it('postgres:// and postgresql:// select the PostgreSQL log', () => {
    expect(loadConfig({ EVENT_STORE_URL: 'postgres://cm@db.example.org:5432/ledger' }).eventStore).toEqual({ kind: 'postgres', url: 'postgres://cm@db.example.org:5432/ledger' });
    expect(loadConfig({ EVENT_STORE_URL: 'postgresql://cm:secret@10.0.0.5/ledger?sslmode=require' }).eventStore.kind).toBe('postgres');
    expect(loadConfig({ EVENT_STORE_URL: 'esdb://node1:2113?tls=false' }).eventStore.kind).toBe('esdb');
    expect(loadConfig({}).eventStore.kind).toBe('sqlite');
  });

  it('a PostgreSQL URL without a database name is refused, naming the variable', () => {
    expect(() => loadConfig({ EVENT_STORE_URL: 'postgres://cm@db.example.org:5432' })).toThrow(ConfigError);
    expect(() => loadConfig({ EVENT_STORE_URL: 'postgres://cm@db.example.org:5432/' })).toThrow(/EVENT_STORE_URL=.*must be postgres:\/\/user@host:5432\/db/);
    expect(() => loadConfig({ EVENT_STORE_URL: 'mysql://x/y' })).toThrow(/EVENT_STORE_URL/);
  });
});
