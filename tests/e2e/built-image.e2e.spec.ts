// The production image's two stages, run on this machine as infra/Dockerfile runs them: a build
// stage that installs everything and runs `pnpm build`, and a runtime stage that installs
// production dependencies only, takes the build's dist/ folders and runs `node` on them. The
// service must start, take commands and answer reads with no TypeScript tooling installed, and
// the CLI must work the same way.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, killAllServices, removeDataDir, startService } from './support/service-process.js';

const work = mkdtempSync(join(tmpdir(), 'cm-e2e-built-'));
afterAll(async () => {
  await killAllServices();
  removeDataDir(work);
});

/** The repository as a fresh checkout has it: tracked files and new ones not ignored, nothing built. */
function checkout(to: string): void {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f && existsSync(join(ROOT, f)));
  for (const f of files) {
    mkdirSync(dirname(join(to, f)), { recursive: true });
    cpSync(join(ROOT, f), join(to, f));
  }
}

function pnpm(cwd: string, args: string[]): string {
  const run = spawnSync('pnpm', args, { cwd, encoding: 'utf8', env: { ...process.env, CI: 'true' }, timeout: 240_000 });
  if (run.status !== 0) throw new Error(`pnpm ${args.join(' ')} in ${cwd} exited ${run.status}:\n${run.stdout}\n${run.stderr}`);
  return run.stderr;
}

const dists = (dir: string) =>
  ['packages', 'services'].flatMap((g) => readdirSync(join(dir, g)).map((n) => join(g, n, 'dist'))).concat('examples/dist').filter((d) => existsSync(join(dir, d)));

describe('the production build', () => {
  it('runs the service and its CLI with node on the build output and production dependencies only', async () => {
    const build = join(work, 'build');
    checkout(build);
    pnpm(build, ['install', '--frozen-lockfile', '--prefer-offline']);
    const log = pnpm(build, ['build']);
    expect(log).toMatch(/build: done, \d+ files/);
    expect(dists(build)).toEqual(expect.arrayContaining(['packages/domain/dist', 'packages/event-store/dist', 'services/api/dist', 'services/cli/dist']));

    const runtime = join(work, 'runtime');
    checkout(runtime);
    pnpm(runtime, ['install', '--frozen-lockfile', '--prod', '--prefer-offline']);
    for (const d of dists(build)) cpSync(join(build, d), join(runtime, d), { recursive: true });
    // Nothing that compiles or runs TypeScript is there to fall back on.
    for (const tool of ['tsx', 'typescript', 'vitest']) expect(existsSync(join(runtime, 'node_modules', tool)), tool).toBe(false);

    const data = join(work, 'data');
    mkdirSync(data);
    const svc = await startService({ dataDir: data, env: { AUTH: 'on' }, entry: { cwd: runtime, args: ['--conditions=built', 'services/api/dist/main.js'] }, readyTimeoutMs: 60_000 });
    const secret = /cm_[A-Za-z0-9_-]{43}/.exec(svc.stderr())![0];
    const headers = { authorization: `Bearer ${secret}`, 'content-type': 'application/json' };
    const created = await fetch(`${svc.url}/v1/agreements`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ id: 'built-check', title: 'Built image check', kind: 'protocol', sector: 'health', parties: ['VEN', 'RUS'], signedAt: '2026-01-15' }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const { position } = (await created.json()) as { position: string };
    const read = await fetch(`${svc.url}/v1/agreements/built-check?after=${position}`, { headers });
    expect(read.status).toBe(200);
    expect(((await read.json()) as { title: string }).title).toBe('Built image check');
    // The SQLite writer thread (a plain .mjs next to the build output) took that write.
    expect(existsSync(join(data, 'events.sqlite'))).toBe(true);
    await svc.stop();

    const keys = spawnSync(process.execPath, ['--conditions=built', 'services/cli/dist/main.js', 'keys', 'list'], { cwd: runtime, encoding: 'utf8', env: { PATH: process.env.PATH, DATA_DIR: data } });
    expect(keys.status, keys.stderr).toBe(0);
    expect(keys.stdout + keys.stderr).toMatch(/admin/);
  }, 600_000);
});
