// Rebuild throughput into Redis, beside a raw Redis pipeline of the same end-state writes,
// both measured in this run. Usage: pnpm bench:rebuild [--events 200000] [--quick]
// The log, the rebuild and the baseline are those of the capacity suite (capacity-suite.ts,
// part of `pnpm bench`); this keeps the single figure at hand with its results file.
// Loopback only; everything it creates lives under a namespace of its own and is deleted.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { measureRedisRebuild, writeLedgerLog } from './capacity-suite.js';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const target = Number(flag('--events') ?? (quick ? 20_000 : 200_000));
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const dir = mkdtempSync(join(tmpdir(), 'cm-rebuild-bench-'));
const progress = (m: string) => process.stderr.write(`${m}\n`);

async function main() {
  console.log(`rebuild bench: ${target} events, Redis ${redisUrl}`);
  const log = await writeLedgerLog(join(dir, 'events.sqlite'), target, progress);
  const { summary, raw } = await measureRedisRebuild(log, redisUrl, progress);
  const rows = [
    ['rebuild into Redis (events/s)', Math.round(summary.events / summary.seconds).toLocaleString('en'), `${summary.seconds.toFixed(1)} s`],
    ['raw pipeline, same end state (entries/s)', Math.round(raw.entries / raw.seconds).toLocaleString('en'), `${raw.seconds.toFixed(1)} s for ${raw.entries.toLocaleString('en')} entries in ${raw.commands.toLocaleString('en')} commands`],
    ['rebuild time / raw pipeline time', `${(summary.seconds / raw.seconds).toFixed(1)}x`, ''],
  ];
  console.log('');
  for (const r of rows) console.log(`${r[0]!.padEnd(44)} ${r[1]!.padStart(12)}  ${r[2]}`);
  const out = join(process.cwd(), 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const file = join(out, `rebuild-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, platform: `${process.platform}/${process.arch}` },
    events: log.events, agreements: log.agreements, commitments: log.commitments, rebuild: summary, raw,
  }, null, 2));
  console.log(`results written to ${file}`);
}

main()
  .catch((err: unknown) => {
    console.error(`rebuild bench failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
