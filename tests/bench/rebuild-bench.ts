// Rebuild throughput into Redis, beside a raw Redis pipeline of the same end-state writes,
// both measured in this run. Usage: pnpm bench:rebuild [--events 200000] [--quick]
// Loopback only; everything it creates lives under a namespace of its own and is deleted.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createLogger } from '@cm/platform';
import { createSqliteEventStore, type NewEvent } from '@cm/event-store';
import { dropGeneration, rebuildReadModels } from '@cm/read-models';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const target = Number(flag('--events') ?? (quick ? 20_000 : 200_000));
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ns = `bench-${randomUUID().slice(0, 8)}`;
const dir = mkdtempSync(join(tmpdir(), 'cm-rebuild-bench-'));
const redis = new Redis(redisUrl);

const COMMITMENTS = 10;
const PER_AGREEMENT = 100; // 1 signature + 10 commitments + 89 progress reports

async function writeLog() {
  const store = createSqliteEventStore({ path: join(dir, 'events.sqlite') });
  const agreements = Math.ceil(target / PER_AGREEMENT);
  const meta = (i: number) => ({ actor: 'bench', occurredAt: new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(), correlationId: randomUUID() });
  const started = Date.now();
  let written = 0;
  for (let a = 0; a < agreements && written < target; a++) {
    const id = `bench-agreement-${String(a).padStart(6, '0')}`;
    const events: NewEvent[] = [
      {
        id: randomUUID(),
        type: 'AgreementSigned',
        data: { agreementId: id, title: `Bench agreement ${a}`, kind: 'agreement', sector: ['health', 'energy', 'science', 'air_connectivity'][a % 4], parties: ['VEN', 'RUS'], signedAt: '2025-11-28', session: { name: 'CIAN XIX', date: '2025-11-28' } },
        metadata: meta(0),
      },
    ];
    for (let c = 0; c < COMMITMENTS; c++) {
      events.push({
        id: randomUUID(),
        type: 'CommitmentAdded',
        data: { agreementId: id, commitmentId: `c-${c}`, title: `Commitment ${c}`, dueDate: `202${6 + (c % 3)}-0${1 + (c % 9)}-15`, responsible: { party: c % 2 ? 'RUS' : 'VEN', institution: `Institution ${c % 7}` } },
        metadata: meta(c + 1),
      });
    }
    for (let k = 0; events.length < PER_AGREEMENT && written + events.length < target; k++) {
      events.push({ id: randomUUID(), type: 'ProgressReported', data: { commitmentId: `c-${k % COMMITMENTS}`, percent: Math.min(99, k) }, metadata: meta(k + 20) });
    }
    await store.append(`agreement-${id}`, events, { expectedRevision: 'no_stream' });
    written += events.length;
    if (a % 200 === 0) process.stdout.write(`\r  writing the log: ${written}/${target} events`);
  }
  process.stdout.write(`\r  writing the log: ${written}/${target} events in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return { store, written };
}

/** The same end state written by a bare pipeline: every document and index entry the rebuild produced. */
async function rawPipeline(generation: number, batch: number) {
  const source = `${ns}:g${generation}:`;
  const dest = `${ns}-raw:g1:`;
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${source}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  // Read everything first (not timed), then time only the writes.
  const writes: ((p: ReturnType<Redis['pipeline']>) => void)[] = [];
  let commands = 0;
  for (const key of keys) {
    const type = await redis.type(key);
    const to = dest + key.slice(source.length);
    if (type === 'string') {
      const v = (await redis.get(key))!;
      writes.push((p) => p.set(to, v));
      commands++;
    } else if (type === 'zset') {
      const members = await redis.zrange(key, '0', '-1', 'WITHSCORES');
      for (let i = 0; i < members.length; i += 2) {
        const [m, s] = [members[i]!, members[i + 1]!];
        writes.push((p) => p.zadd(to, s, m));
        commands++;
      }
    } else if (type === 'hash') {
      for (const [f, v] of Object.entries(await redis.hgetall(key))) {
        writes.push((p) => p.hset(to, f, v));
        commands++;
      }
    } else if (type === 'set') {
      for (const m of await redis.smembers(key)) {
        writes.push((p) => p.sadd(to, m));
        commands++;
      }
    }
  }
  const started = process.hrtime.bigint();
  for (let i = 0; i < writes.length; i += batch) {
    const p = redis.multi();
    for (const w of writes.slice(i, i + batch)) w(p);
    await p.exec();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await dropGeneration(redis, `${ns}-raw`, 1);
  return { commands, seconds };
}

async function main() {
  console.log(`rebuild bench: ${target} events, Redis ${redisUrl}, namespace ${ns}`);
  const { store, written } = await writeLog();
  const logger = createLogger({ level: 'warn' });
  let lastPrint = 0;
  const summary = await rebuildReadModels({
    eventStore: store,
    redisUrl,
    namespace: ns,
    logger,
    onProgress: (p) => {
      if (Date.now() - lastPrint > 1000) {
        lastPrint = Date.now();
        process.stdout.write(`\r  rebuilding: ${p.events}/${p.head ?? '?'} events, ${Math.round(p.eventsPerSecond)} events/s, ETA ${Math.round(p.etaSeconds ?? 0)} s   `);
      }
    },
  });
  process.stdout.write('\n');
  console.log('  raw pipeline of the same end state (MULTI batches of 500 commands)...');
  const raw = await rawPipeline(summary.generation, 500);
  const rebuildRate = written / summary.seconds;
  const rows = [
    ['rebuild into Redis (events/s)', Math.round(rebuildRate).toLocaleString('en'), `${summary.seconds.toFixed(1)} s`],
    ['raw pipeline, same end state (commands/s)', Math.round(raw.commands / raw.seconds).toLocaleString('en'), `${raw.seconds.toFixed(1)} s for ${raw.commands.toLocaleString('en')} writes`],
    ['rebuild time / raw pipeline time', `${(summary.seconds / raw.seconds).toFixed(1)}x`, ''],
  ];
  console.log('');
  for (const r of rows) console.log(`${r[0]!.padEnd(44)} ${r[1]!.padStart(12)}  ${r[2]}`);
  const out = join(process.cwd(), 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const file = join(out, `rebuild-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, platform: `${process.platform}/${process.arch}` },
    events: written, rebuild: summary, raw,
  }, null, 2));
  console.log(`results written to ${file}`);
  await dropGeneration(redis, ns, summary.generation);
  await redis.del(`${ns}:current`);
  await store.close();
}

main()
  .catch((err: unknown) => {
    console.error(`rebuild bench failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    rmSync(dir, { recursive: true, force: true });
    const keys = await redis.keys(`${ns}*`).catch(() => [] as string[]);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });
