// The project's own documentation stays current with what the service serves: every route of
// the OpenAPI document is listed in docs/api.md, and every route listed there is served; every
// problem code an operation documents is in the table of codes, under its status.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, type Json } from './testing/api-fixtures.js';
import { createTestApp, type TestApp } from './testing/test-app.js';

const docsApi = join(dirname(fileURLToPath(import.meta.url)), '../../../docs/api.md');

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => t.close());

describe('docs/api.md', () => {
  it('lists every route the OpenAPI document serves, and no route that is not served', async () => {
    const doc = (await get(t, '/openapi.json')).json<{ paths: Record<string, Record<string, Json>> }>();
    const served = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    const listed = [...readFileSync(docsApi, 'utf8').matchAll(/^\| `((?:GET|POST|PUT|PATCH|DELETE) \/[^`]*)` \|/gm)].map((m) => m[1]!).sort();
    expect(served.length).toBeGreaterThan(20);
    expect(served.filter((r) => !listed.includes(r)), 'served but missing from docs/api.md').toEqual([]);
    expect(listed.filter((r) => !served.includes(r)), 'listed in docs/api.md but not served').toEqual([]);
  });

  it('lists, under its status, every problem code the OpenAPI document says an operation answers', async () => {
    const doc = (await get(t, '/openapi.json')).json<{ paths: Record<string, Record<string, { responses?: Record<string, Json> }>> }>();
    const documented = new Set<string>();
    for (const ops of Object.values(doc.paths)) {
      for (const op of Object.values(ops)) {
        for (const [status, response] of Object.entries(op.responses ?? {})) {
          const codes: string[] = response.content?.['application/problem+json']?.schema?.allOf?.[1]?.properties?.code?.enum ?? [];
          for (const code of codes) documented.add(`${status} ${code}`);
        }
      }
    }
    const table = new Set<string>();
    for (const m of readFileSync(docsApi, 'utf8').matchAll(/^\s*\| (\d{3}) \| [^|]* \| ([^|]*) \|$/gm)) {
      for (const code of m[2]!.matchAll(/`([a-z0-9_]+)`/g)) table.add(`${m[1]} ${code[1]}`);
    }
    expect(documented.size).toBeGreaterThan(20);
    expect([...documented].filter((c) => !table.has(c)).sort(), 'answered but missing from the table of docs/api.md').toEqual([]);
  });
});
