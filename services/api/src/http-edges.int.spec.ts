// A body over the limit, sent over a real socket by the clients ministry tools use: every one
// of them reads the 413 problem+json, none sees a broken pipe or a reset.
import { spawnSync, spawn } from 'node:child_process';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drainRequestBody } from './http-edges.js';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { createAgreement, commitmentInput, type Json } from './testing/api-fixtures.js';

const MB = 1024 * 1024;
let t: TestApp;
let base: string;
beforeAll(async () => {
  t = await createTestApp({ now: '2026-03-01T09:00:00.000Z' });
  await createAgreement(t, { id: 'ag-one', commitments: [commitmentInput({ id: 'plant' })] });
  base = await t.app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await t.close();
});

/** A body sent as a client on a network does: in 64 KiB chunks with a pause between them. */
const paced = (body: Buffer) => new ReadableStream<Uint8Array>({
  async start(c) {
    for (let at = 0; at < body.length; at += 64 * 1024) {
      c.enqueue(body.subarray(at, at + 64 * 1024));
      await new Promise((r) => setTimeout(r, 1));
    }
    c.close();
  },
});

const bigBody = () => JSON.stringify({ percent: 10, note: 'x'.repeat(5 * MB) });

describe('a body over the limit (1 MiB here)', () => {
  it('answers 413 problem+json to each of 20 fetch posts of 5 MB, none failing with EPIPE', async () => {
    const before = await t.eventStore.headPosition();
    const body = bigBody();
    const outcomes = await Promise.all(Array.from({ length: 20 }, async () => {
      try {
        const res = await fetch(`${base}/v1/agreements/ag-one/commitments/plant/progress`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        return { status: res.status, type: res.headers.get('content-type'), code: (await res.json() as Json).code as string };
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause;
        return { error: cause?.code ?? String(err) };
      }
    }));
    expect(outcomes).toEqual(Array.from({ length: 20 }, () => ({ status: 413, type: expect.stringMatching(/^application\/problem\+json/), code: 'body_too_large' })));
    expect(await t.eventStore.headPosition()).toBe(before);
  });

  it('answers 413 to 20 fetch posts of 5 MB sent at network pace (64 KiB chunks), each declaring its length', async () => {
    const body = Buffer.from(bigBody());
    const outcomes = await Promise.all(Array.from({ length: 20 }, async () => {
      try {
        const res = await fetch(`${base}/v1/agreements/ag-one/commitments/plant/progress`, {
          method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(body.length) }, body: paced(body), duplex: 'half',
        } as RequestInit);
        return { status: res.status, code: ((await res.json()) as Json).code as string };
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause;
        return { error: cause?.code ?? String(err) };
      }
    }));
    expect(outcomes).toEqual(Array.from({ length: 20 }, () => ({ status: 413, code: 'body_too_large' })));
  });

  it('answers 413 to a chunked body without Content-Length, found over the limit while read', async () => {
    const res = await fetch(`${base}/v1/agreements/ag-one/commitments/plant/progress`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, duplex: 'half', body: paced(Buffer.from(bigBody())),
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await res.json()) as Json).code).toBe('body_too_large');
  });

  const hasCurl = spawnSync('curl', ['--version']).status === 0;
  it.runIf(hasCurl)('answers 413 problem+json to curl sending all of 5 MB (no Expect: 100-continue) at network pace, which exits without a send error', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const curl = spawn('curl', ['-sS', '--limit-rate', '40M', '-H', 'Expect:', '-X', 'POST', '-H', 'content-type: application/json', '--data-binary', '@-',
        '-w', '\n%{http_code} %{content_type}', `${base}/v1/agreements/ag-one/commitments/plant/progress`]);
      let out = '';
      let err = '';
      curl.stdout.on('data', (d) => (out += d));
      curl.stderr.on('data', (d) => (err += d));
      curl.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
      curl.stdin.end(bigBody());
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^413 application\/problem\+json/);
    expect(JSON.parse(lines.slice(0, -1).join('\n')).code).toBe('body_too_large');
  });
});

describe('the drain before a 413 is bounded', () => {
  // A plain server whose handler only drains, with bounds small enough for a test.
  async function drainOnce(send: (req: ReturnType<typeof httpRequest>) => void, declared: number): Promise<boolean> {
    let handled!: (drained: Promise<boolean>) => void;
    const drained = new Promise<boolean>((resolve) => (handled = (d) => resolve(d)));
    const server = createServer((req: IncomingMessage, res) => {
      const d = drainRequestBody(req, { maxBytes: 256 * 1024, maxMs: 300 });
      handled(d);
      void d.then(() => res.writeHead(413, { connection: 'close' }).end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const req = httpRequest({ port, host: '127.0.0.1', method: 'POST', headers: { 'content-length': String(declared) } });
    req.on('error', () => undefined); // the client may see the cut: that is the bound at work
    req.on('response', (res) => res.resume());
    send(req);
    const result = await drained;
    req.destroy();
    await new Promise((r) => server.close(r));
    return result;
  }

  it('stops reading past its byte bound', async () => {
    expect(await drainOnce((req) => req.end(Buffer.alloc(4 * MB)), 4 * MB)).toBe(false);
  });

  it('stops waiting for a client that stalls past its time bound', async () => {
    const started = Date.now();
    expect(await drainOnce((req) => req.write('{"percent":'), 1000)).toBe(false);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('reads a body within both bounds to its end', async () => {
    expect(await drainOnce((req) => req.end(Buffer.alloc(100 * 1024)), 100 * 1024)).toBe(true);
  });
});

