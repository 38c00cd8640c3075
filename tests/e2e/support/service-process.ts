// Runs the real service (services/api/src/main.ts under tsx) as a child process on a loopback
// port with its own DATA_DIR, for end-to-end tests over HTTP. Every child started here is
// tracked, so a test file's afterEach/afterAll can kill whatever is still running.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The workspace root (/work/main): the service is run from there, as `pnpm start` does. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const MAIN = 'services/api/src/main.ts';

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export type ServiceProcess = {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves once the process has exited (at once if it already has). */
  readonly exited: Promise<Exit>;
  /** SIGTERM, then wait for the exit (SIGKILL after `timeoutMs`, and the promise rejects). */
  stop(timeoutMs?: number): Promise<Exit & { ms: number }>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<Exit>;
};

const live = new Set<ServiceProcess>();

/** A loopback port nobody listens on right now (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? ok(port) : fail(new Error('no port assigned'))));
    });
  });
}

export function makeDataDir(prefix = 'cm-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The child's environment: only what a process needs plus the configuration under test, so a
 * variable set in the developer's shell (REDIS_URL, ROLES...) cannot change what is tested.
 * Authentication and rate limits are off (loopback) unless a test turns them on: the specs that
 * are about them do (tests/e2e/security.e2e.spec.ts).
 */
export function serviceEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { AUTH: 'off', RATE_LIMIT: 'off' };
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT']) if (process.env[k] !== undefined) base[k] = process.env[k];
  return { ...base, ...vars };
}

/** How the service is started: from its TypeScript with tsx (as `pnpm start`), unless a test names a built entry point. */
export type Entry = { cwd: string; args: string[] };

export function spawnService(env: NodeJS.ProcessEnv, entry: Entry = { cwd: ROOT, args: ['--import', 'tsx', MAIN] }): ChildProcess {
  return spawn(process.execPath, entry.args, { cwd: entry.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function waitExit(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type StartOptions = {
  /** Reuse a DATA_DIR (a restart); a new temp folder otherwise. */
  dataDir?: string;
  /** Extra variables (they win over the defaults). */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /**
   * A process without an HTTP listener (ROLES=projector): it counts as started once its stdout
   * matches this, instead of once GET /ready answers 200.
   */
  readyWhenStdout?: RegExp;
  /** Run another entry point (the built JavaScript) instead of the TypeScript sources. */
  entry?: Entry;
};

/** Starts the service and resolves once GET /ready answers 200 (or its stdout matches `readyWhenStdout`). */
export async function startService(options: StartOptions = {}): Promise<ServiceProcess> {
  // Another process may grab the free port between our probe and the child's listen: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      if (attempt < 3 && err instanceof Error && /EADDRINUSE/.test(err.message)) continue;
      throw err;
    }
  }
}

async function startOnce(options: StartOptions): Promise<ServiceProcess> {
  const port = await freePort();
  const dataDir = options.dataDir ?? makeDataDir();
  const child = spawnService(serviceEnv({ PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...options.env }), options.entry);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = waitExit(child);
  const url = `http://127.0.0.1:${port}`;

  const service: ServiceProcess = {
    url,
    port,
    dataDir,
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(timeoutMs = 10_000) {
      const started = Date.now();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = sleep(timeoutMs).then(() => 'timeout' as const);
      const result = await Promise.race([exited, timer]);
      if (result === 'timeout') {
        child.kill('SIGKILL');
        await exited;
        live.delete(service);
        throw new Error(`service pid ${child.pid} did not exit within ${timeoutMs} ms of SIGTERM; killed. stderr:\n${err}`);
      }
      live.delete(service);
      return { ...result, ms: Date.now() - started };
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const result = await exited;
      live.delete(service);
      return result;
    },
  };
  live.add(service);

  const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
  let last = 'no answer yet';
  const early: { exit: Exit | null } = { exit: null };
  void exited.then((e) => (early.exit = e));
  while (Date.now() < deadline) {
    if (early.exit) {
      live.delete(service);
      const e = early.exit;
      throw new Error(`service exited before it was ready (code ${e.code}, signal ${e.signal}); stderr:\n${err}`);
    }
    if (options.readyWhenStdout) {
      if (options.readyWhenStdout.test(out)) return service;
      last = `stdout does not match ${options.readyWhenStdout} yet`;
      await sleep(50);
      continue;
    }
    try {
      const res = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) {
        await res.arrayBuffer();
        return service;
      }
      last = `GET /ready answered ${res.status}: ${(await res.text()).slice(0, 300)}`;
    } catch (e) {
      last = `GET /ready failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    await sleep(50);
  }
  await service.kill();
  throw new Error(`service on port ${port} was not ready within ${options.readyTimeoutMs ?? 20_000} ms (${last}); stderr:\n${err}`);
}

/** Runs the service with a configuration expected to stop the start; resolves with its exit and output. */
export async function runUntilExit(vars: Record<string, string>, timeoutMs = 20_000): Promise<Exit & { stdout: string; stderr: string }> {
  const child = spawnService(serviceEnv(vars));
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  // Wait for 'close' (not 'exit') so every byte of stderr has been read.
  const closed = new Promise<Exit>((ok) => child.once('close', (code, signal) => ok({ code, signal })));
  const timer = sleep(timeoutMs).then(() => 'timeout' as const);
  const result = await Promise.race([closed, timer]);
  if (result === 'timeout') {
    child.kill('SIGKILL');
    await closed;
    throw new Error(`the service did not stop by itself within ${timeoutMs} ms; stderr:\n${err}\nstdout:\n${out}`);
  }
  return { ...result, stdout: out, stderr: err };
}

/** SIGKILLs every service still running (for afterEach/afterAll). */
export async function killAllServices(): Promise<void> {
  await Promise.all([...live].map((s) => s.kill()));
}

// Last resort if a test file dies without its hooks: never leave a service behind.
process.once('exit', () => {
  for (const s of live) s.child.kill('SIGKILL');
});
