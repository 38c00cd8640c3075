// Tests against a real PostgreSQL: PG_URL (default postgres://postgres@127.0.0.1:5432/test) names
// a server and a database to connect to; each run creates a database of its own, cm_test_<random>,
// and drops it after, so runs never share one. A server that does not answer fails the spec with
// one line, unless PG_SKIP=1 (then the spec is skipped, saying why).
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_URL = process.env.PG_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const PG_SKIP = process.env.PG_SKIP === '1';

if (PG_SKIP) console.warn(`PostgreSQL specs skipped: PG_SKIP=1 is set (unset it to run them against PG_URL=${PG_URL})`);

const withDatabase = (url: string, db: string) => {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
};

export type FreshDatabase = { url: string; name: string; drop(): Promise<void> };

/** A new, empty database on the PG_URL server; throws one clear line when the server does not answer. */
export async function freshPostgresDatabase(prefix = 'cm_test'): Promise<FreshDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`PostgreSQL does not answer at PG_URL=${PG_URL} (${err instanceof Error ? err.message : String(err)}): start it, point PG_URL at one, or set PG_SKIP=1 to skip these specs`);
  }
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(PG_URL, name),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
