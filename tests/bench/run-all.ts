// `pnpm bench`: every benchmark suite in one invocation, one table where each figure stands
// beside a baseline measured in the same run (issue 7). Not a test: it prints figures.
//
//   pnpm bench                          full run (a few minutes)
//   pnpm bench --quick                  shorter runs, same scenarios and dataset sizes
//   pnpm bench --only commands,lag      a subset: suites (http, capacity) or groups of the
//                                       http suite (commands, queries, lag, auth)
//
// Progress goes to stderr with timestamps; the table to stdout; the rows with the machine's
// description to bench/results/bench-<timestamp>.json, and the table as Markdown (for the
// README's "Performance" section) beside it as .md. Exit 1 when a suite failed or a command
// audit found an answer without its event. Loopback only; Ctrl-C stops every server it started.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchOptions, BenchRow, BenchSuite } from './bench-kit.js';
import { REPO_ROOT, runCleanups } from './bench-processes.js';
import { describeMachine, machineLine, renderMarkdown, renderText } from './bench-report.js';
import { capacitySuite } from './capacity-suite.js';
import { HTTP_GROUPS, createHttpSuite, type HttpGroup } from './http-suite.js';

type Selection = { http: HttpGroup[]; capacity: boolean };
type Settings = { quick: boolean; selection: Selection; only: string[] | null };

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: pnpm bench [--quick] [--only <name,...>]  names: http, capacity, ${HTTP_GROUPS.join(', ')}\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Settings {
  let quick = false;
  let only: string[] | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    switch (flag) {
      case '--quick':
        quick = true;
        break;
      case '--only': {
        const value = inline ?? argv[++i];
        if (value === undefined || value.trim() === '') usage('--only needs a comma-separated list');
        only = value.split(',').map((x) => x.trim()).filter((x) => x !== '');
        break;
      }
      case '--help':
      case '-h':
        usage('pnpm bench: every benchmark, one table');
        break;
      case '--':
        break;
      default:
        usage(`unknown argument ${arg}`);
    }
  }
  const selection: Selection = only === null ? { http: [...HTTP_GROUPS], capacity: true } : { http: [], capacity: false };
  for (const name of only ?? []) {
    if (name === 'http') selection.http = [...HTTP_GROUPS];
    else if (name === 'capacity') selection.capacity = true;
    else if ((HTTP_GROUPS as readonly string[]).includes(name)) {
      if (!selection.http.includes(name as HttpGroup)) selection.http.push(name as HttpGroup);
    } else usage(`unknown name in --only: ${name}`);
  }
  return { quick, selection, only };
}

const t0 = Date.now();
function progress(message: string): void {
  const elapsed = Math.round((Date.now() - t0) / 1000);
  const clock = new Date().toISOString().slice(11, 19);
  process.stderr.write(`${clock} +${String(Math.floor(elapsed / 60)).padStart(2, '0')}:${String(elapsed % 60).padStart(2, '0')}  ${message}\n`);
}

let interrupted = false;

async function stop(code: number, why: string): Promise<never> {
  if (!interrupted) {
    interrupted = true;
    progress(`${why}: stopping every server and removing what the run created`);
    await runCleanups(progress);
  }
  process.exit(code);
}

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  const suites: { name: string; suite: BenchSuite }[] = [
    ...(settings.selection.http.length > 0 ? [{ name: `http (${settings.selection.http.join(', ')})`, suite: createHttpSuite(settings.selection.http) }] : []),
    ...(settings.selection.capacity ? [{ name: 'capacity', suite: capacitySuite }] : []),
  ];
  const machine = describeMachine();
  const startedAt = new Date();
  progress(`pnpm bench${settings.quick ? ' --quick' : ''}: ${suites.map((s) => s.name).join(' + ')}`);
  progress(`machine: ${machineLine(machine)}; load average ${machine.loadAverage.join(' ')}`);

  // Bounded in time: a hung server must not hold the machine.
  const budgetS = settings.quick ? 8 * 60 : 20 * 60;
  setTimeout(() => void stop(1, `the benchmark exceeded its budget of ${budgetS / 60} min`), budgetS * 1000).unref();

  const options: BenchOptions = { quick: settings.quick, progress, redisUrl: process.env['REDIS_URL'] || 'redis://127.0.0.1:6379' };
  const rows: BenchRow[] = [];
  const failures: { suite: string; error: string }[] = [];
  for (const { name, suite } of suites) {
    const started = Date.now();
    progress(`== ${name} ==`);
    try {
      rows.push(...(await suite(options)));
      progress(`== ${name}: done in ${((Date.now() - started) / 1000).toFixed(0)} s ==`);
    } catch (err) {
      if (interrupted) return;
      const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      failures.push({ suite: name, error });
      progress(`== ${name} FAILED after ${((Date.now() - started) / 1000).toFixed(0)} s: ${error}`);
    } finally {
      await runCleanups(progress);
    }
  }

  const durationS = Math.round((Date.now() - startedAt.getTime()) / 100) / 10;
  process.stdout.write(`\n${renderText(rows)}\n`);
  const mismatches = rows.filter((r) => r.details?.['auditConsistent'] === false);
  for (const r of mismatches) process.stdout.write(`AUDIT MISMATCH in "${r.name}": ${JSON.stringify(r.details?.['audit'])}\n`);
  for (const f of failures) process.stdout.write(`suite ${f.suite} failed: ${f.error.split('\n')[0]}\n`);

  const dir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const json = path.join(dir, `bench-${stamp}.json`);
  writeFileSync(json, `${JSON.stringify({ machine, startedAt: startedAt.toISOString(), durationS, quick: settings.quick, only: settings.only, rows, failures }, null, 2)}\n`);
  const caption = `\`pnpm bench${settings.quick ? ' --quick' : ''}\`${settings.only ? ` (only ${settings.only.join(', ')})` : ''}, ` +
    `${startedAt.toISOString().slice(0, 10)}, ${durationS.toFixed(0)} s on ${machine.cores} x ${machine.cpuModel}, ${machine.totalMemoryGiB} GiB, node ${machine.node}, ${machine.os}.`;
  const md = path.join(dir, `bench-${stamp}.md`);
  writeFileSync(md, renderMarkdown(rows, caption));
  process.stdout.write(`results: ${path.relative(REPO_ROOT, json)} and ${path.relative(REPO_ROOT, md)} (${durationS.toFixed(0)} s)\n`);
  if (failures.length > 0 || mismatches.length > 0) process.exitCode = 1;
}

process.on('SIGINT', () => void stop(130, 'interrupted'));
process.on('SIGTERM', () => void stop(143, 'terminated'));
main()
  .then(() => process.exit(process.exitCode === undefined ? 0 : Number(process.exitCode)))
  .catch(async (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await stop(1, 'failed');
  });
