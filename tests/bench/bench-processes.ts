// The processes and leftovers a benchmark creates (servers on loopback ports, temporary
// folders, Redis namespaces), registered here so that an error or Ctrl-C removes them all:
// the runner calls runCleanups(), and on exit any child still alive is killed.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HOST = '127.0.0.1';
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BARE_SERVER_FILE = path.join(REPO_ROOT, 'tests', 'bench', 'bare-server.ts');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export type Child = { name: string; proc: ChildProcess; tail: string[]; exited: Promise<void> };
const children = new Set<Child>();

export const alive = (c: Child) => c.proc.exitCode === null && c.proc.signalCode === null;

let exitHookInstalled = false;

/** Starts `node --import tsx <args>` in the repository root; its output is kept (last 100 lines) for error messages. */
export function startChild(name: string, args: string[], env: NodeJS.ProcessEnv): Child {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort: nothing a benchmark started outlives it.
    process.on('exit', () => {
      for (const c of children) if (alive(c)) c.proc.kill('SIGKILL');
    });
  }
  // `node --import tsx` (not the tsx CLI, which forks again) so the pid we hold is the server's.
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      tail.push(line);
      if (tail.length > 100) tail.shift();
    }
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  proc.stdin?.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const child: Child = { name, proc, tail, exited };
  children.add(child);
  void exited.then(() => children.delete(child));
  return child;
}

export async function stopChild(c: Child): Promise<void> {
  if (alive(c)) {
    c.proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (alive(c)) c.proc.kill('SIGKILL');
    }, 5000);
    await c.exited;
    clearTimeout(timer);
  }
  children.delete(c);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** Polls `url` until it answers 200; fails with the child's last output if it exits or the time runs out. */
export async function waitFor(child: Child, url: string, method: 'GET' | 'POST', timeoutMs: number, headers: Record<string, string> = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!alive(child)) throw new Error(`${child.name} exited (${child.proc.exitCode ?? child.proc.signalCode}) before it was ready:\n${child.tail.slice(-20).join('\n')}`);
    try {
      const res = await fetch(url, {
        method,
        signal: AbortSignal.timeout(2000),
        headers: { ...headers, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
        ...(method === 'POST' ? { body: '{}' } : {}),
      });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  throw new Error(`${child.name} not ready at ${url} after ${timeoutMs} ms (${last}):\n${child.tail.slice(-20).join('\n')}`);
}

/** The bare Fastify app (POST and GET /bench answering {ok:true}), the ceiling of this machine's HTTP stack. */
export async function startBareServer(): Promise<{ child: Child; base: string }> {
  const port = await freePort();
  const child = startChild('bare fastify', [BARE_SERVER_FILE], { ...process.env, PORT: String(port), HOST });
  const base = `http://${HOST}:${port}`;
  await waitFor(child, `${base}/bench`, 'POST', 30_000);
  return { child, base };
}

// Variables of the service's configuration a benchmark sets itself: never inherited from the shell.
const SERVICE_VARIABLES = [
  'PORT', 'HOST', 'DATA_DIR', 'EVENT_STORE_URL', 'REDIS_URL', 'REDIS_NAMESPACE', 'SMTP_URL', 'MAIL_FROM', 'REMINDER_OFFSETS', 'ROLES',
  'LOG_LEVEL', 'API_KEYS_FILE', 'AUTH', 'RATE_LIMIT', 'CORS_ORIGINS', 'PUBLIC_URL', 'BODY_LIMIT',
];

export type Service = { child: Child; base: string; port: number };

/**
 * Starts services/api/src/main.ts on a free loopback port with exactly `env` as its
 * configuration, and waits until GET /ready is 200 (read models rebuilt from the log).
 * `listens: false` for a process without the api role: then only its start is awaited.
 */
export async function startService(name: string, env: Record<string, string>, options: { readyTimeoutMs?: number; listens?: boolean } = {}): Promise<Service> {
  const port = await freePort();
  const full: NodeJS.ProcessEnv = { ...process.env };
  for (const k of SERVICE_VARIABLES) delete full[k];
  Object.assign(full, { HOST, PORT: String(port), LOG_LEVEL: 'warn', ...env });
  const child = startChild(name, ['services/api/src/main.ts'], full);
  const base = `http://${HOST}:${port}`;
  if (options.listens === false) {
    await sleep(1500);
    if (!alive(child)) throw new Error(`${name} exited (${child.proc.exitCode ?? child.proc.signalCode}) at start:\n${child.tail.slice(-20).join('\n')}`);
  } else {
    await waitFor(child, `${base}/ready`, 'GET', options.readyTimeoutMs ?? 60_000);
  }
  return { child, base, port };
}

/** Warnings and errors the service logged (pino levels 40-60), for the report; the one AUTH=off always logs is expected. */
export const loggedProblems = (c: Child) => c.tail.filter((l) => /"level":(40|50|60)/.test(l) && !/"msg":"AUTH=off/.test(l));

// ---------------------------------------------------------------------------------------------
// Cleanups: run in reverse order of registration, each once, whether the run ends, fails or is interrupted.
// ---------------------------------------------------------------------------------------------

const cleanups: { name: string; run: () => Promise<void> | void }[] = [];

export type Cleanup = { /** Runs it now, once. */ now(): Promise<void>; /** Forgets it: nothing left to clean. */ drop(): void };

/** Registers `run` to be run by runCleanups() unless it is run or dropped before. */
export function onCleanup(name: string, run: () => Promise<void> | void): Cleanup {
  const entry = { name, run };
  cleanups.push(entry);
  const drop = () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
    return i >= 0;
  };
  return {
    async now() {
      if (drop()) await entry.run();
    },
    drop() {
      drop();
    },
  };
}

/** Stops every child and runs every registered cleanup; failures are reported, not thrown. */
export async function runCleanups(report: (message: string) => void): Promise<void> {
  while (cleanups.length > 0) {
    const entry = cleanups.pop()!;
    try {
      await entry.run();
    } catch (err) {
      report(`cleanup "${entry.name}" failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  await Promise.all([...children].map(stopChild));
}
