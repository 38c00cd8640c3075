// The README's "Five minutes with curl" block, run as a newcomer would paste it: with bash and
// curl, against the real service with authentication on and the example dataset loaded first
// (so the log's positions are not the ones of an empty service). Every request's status is
// recorded by curl on stderr; the walkthrough must get what its comments promise.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, killAllServices, removeDataDir, startService } from './support/service-process.js';

const SECRET = /cm_[A-Za-z0-9_-]{43}/;
const work = mkdtempSync(join(tmpdir(), 'cm-e2e-readme-'));
const dirs: string[] = [work];
afterAll(async () => {
  await killAllServices();
  dirs.forEach(removeDataDir);
});

/** The shell block of a README section, from its heading to the first closing fence. */
function shellBlockOf(heading: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(`## ${heading}`));
  const start = section.indexOf('```sh\n') + '```sh\n'.length;
  return section.slice(start, section.indexOf('\n```', start));
}

function bash(script: string, env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('bash', ['-c', script], { cwd: work, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((ok) => child.once('close', (code) => {
    clearTimeout(timer);
    ok({ code, stdout, stderr });
  }));
}

describe('the README walkthrough', () => {
  it('works as written on a service that already holds the examples', async () => {
    const svc = await startService({ env: { AUTH: 'on' } });
    dirs.push(svc.dataDir);
    const secret = SECRET.exec(svc.stderr())![0];
    const loaded = await bash(`"${join(ROOT, 'node_modules/.bin/tsx')}" "${join(ROOT, 'examples/load.ts')}" ${svc.url}`, { CM_API_KEY: secret }, 120_000);
    expect(loaded.code, loaded.stderr).toBe(0);

    const block = shellBlockOf('Five minutes with curl');
    expect(block).toMatch(/^API=http:\/\/127\.0\.0\.1:3000$/m);
    expect(block).toMatch(/^KEY=cm_\.\.\./m);
    // The two lines a reader edits; curl reports each request's status and URL on stderr;
    // pnpm runs in the repository (the bundle it verifies lands in this test's folder).
    const script = [
      'curl() { command curl -w "%{stderr}STATUS %{http_code} %{method} %{url_effective}\\n" "$@"; }',
      `pnpm() { (cd "${ROOT}" && command pnpm --silent "$@" "${work}/agreement.ndjson"; echo "VERIFY $?" >&2); }`,
      block
        .replace(/^API=.*$/m, `API=${svc.url}`)
        .replace(/^KEY=.*$/m, `KEY=${secret}`)
        .replace(/^pnpm verify-bundle agreement\.ndjson$/m, 'pnpm verify-bundle'),
    ].join('\n');
    writeFileSync(join(work, 'walkthrough.sh'), script);
    const ran = await bash(script, {}, 120_000);
    expect(ran.code, ran.stderr).toBe(0);

    const calls = [...ran.stderr.matchAll(/^STATUS (\d{3}) (\S+) (\S+)$/gm)].map(([, status, method, url]) => ({ status: Number(status), method, url: url!.replace(svc.url, '') }));
    const statusOf = (method: string, path: RegExp) => calls.filter((c) => c.method === method && path.test(c.url)).map((c) => c.status);
    expect(calls.length, ran.stderr).toBeGreaterThanOrEqual(20);
    expect(calls.filter((c) => c.status >= 500), ran.stderr).toEqual([]);
    expect(statusOf('POST', /^\/v1\/agreements$/)).toEqual([201, 400]); // the agreement, then the bad input of step 8
    // Read-your-writes with the position the previous command printed: 200, not a 503 wait.
    expect(statusOf('GET', /^\/v1\/agreements\/cancer-vaccines-protocol\?after=\d/)).toEqual([200]);
    expect(statusOf('GET', /^\/v1\/reviews\/health-review-2027\?after=\d/)).toEqual([200]);
    expect(statusOf('POST', /\/joint-lab\/progress$/)).toEqual([412]);
    expect(statusOf('POST', /\/corrections$/)).toEqual([200]);
    expect(statusOf('GET', /\?asOf=2026-01-01/)).toEqual([404]);
    expect(statusOf('POST', /^\/v1\/reviews$/)).toEqual([201]);
    expect(ran.stderr).toMatch(/^VERIFY 0$/m);
  }, 240_000);
});
