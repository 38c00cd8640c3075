// The operator's command line, and its composition root: the only place here that reads
// process.env and argv. `rebuild [--check]` rebuilds the Redis read models from the log into a
// new generation and switches readers to it, or with --check compares instead of switching.
// Exit codes: 0 done (no differences), 1 differences found (--check), 2 the rebuild failed,
// 64 bad usage, 69 Redis unreachable, 75 another rebuild is running, 78 configuration, 130 interrupted.
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { ConfigError, createLogger, loadConfig } from '@cm/platform';
import { createEsdbEventStore, createSqliteEventStore } from '@cm/event-store';
import { RebuildAbortedError, RebuildInProgressError, rebuildReadModels } from '@cm/read-models';
import { createProgressPrinter, summaryLines } from './rebuild-report';

const USAGE = 'usage: cli rebuild [--check]   (from the repository root: pnpm rebuild-read-models [--check])';

async function main(): Promise<number> {
  const [command, ...flags] = process.argv.slice(2);
  const unknown = flags.filter((f) => f !== '--check');
  if (command !== 'rebuild' || unknown.length > 0) {
    process.stderr.write(`${command && command !== 'rebuild' ? `unknown command: ${command}\n` : unknown.length ? `unknown option: ${unknown.join(' ')}\n` : ''}${USAGE}\n`);
    return 64;
  }
  const check = flags.includes('--check');

  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 78;
    }
    throw err;
  }
  if (!config.redisUrl) {
    process.stderr.write('in embedded mode read models are rebuilt at every start; rebuild needs REDIS_URL\n');
    return 78;
  }
  // Opening a missing file would create an empty log, and a rebuild from nothing.
  if (config.eventStore.kind === 'sqlite' && !existsSync(config.eventStore.path)) {
    process.stderr.write(`no event log at ${config.eventStore.path}: set DATA_DIR (or EVENT_STORE_URL=sqlite:<path>) to the one the service writes\n`);
    return 78;
  }
  const redisUrl = config.redisUrl;
  const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // The connection error says why (refused, unknown host, auth); the rejected connect() only says it closed.
  let cause: unknown = null;
  probe.on('error', (err: unknown) => {
    cause ??= err;
  });
  try {
    await probe.connect();
    await probe.ping();
  } catch (err) {
    const why = cause ?? err;
    process.stderr.write(`cannot reach Redis at REDIS_URL=${redisUrl}: ${why instanceof Error ? why.message : String(why)}\n`);
    return 69;
  } finally {
    probe.disconnect();
  }

  // stdout carries the progress and the summary; the JSON log goes to stderr.
  const logger = createLogger({ level: config.logLevel, fd: 2 });
  const eventStore = config.eventStore.kind === 'sqlite'
    ? createSqliteEventStore({ path: config.eventStore.path })
    : createEsdbEventStore({ connectionString: config.eventStore.url });
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    process.stdout.write(`\n${signal}: stopping after the current batch; the live read models are left as they are\n`);
    interrupt.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const printer = createProgressPrinter({ tty: process.stdout.isTTY === true, write: (s) => process.stdout.write(s) });
  process.stdout.write(`${check ? 'checking' : 'rebuilding'} the read models of namespace ${config.redisNamespace} from ${config.eventStore.kind === 'sqlite' ? config.eventStore.path : 'EventStoreDB'}\n`);
  try {
    const summary = await rebuildReadModels({
      eventStore, redisUrl, namespace: config.redisNamespace, logger, check, signal: interrupt.signal, onProgress: (p) => printer.update(p),
    });
    printer.end();
    for (const line of summaryLines(summary, check)) process.stdout.write(`${line}\n`);
    return check && summary.differences.length > 0 ? 1 : 0;
  } catch (err) {
    printer.end();
    if (err instanceof RebuildAbortedError) {
      process.stderr.write(`${err.message}\n`);
      return 130;
    }
    if (err instanceof RebuildInProgressError) {
      process.stderr.write(`${err.message}\n`);
      return 75;
    }
    logger.error({ err }, 'rebuild failed');
    process.stderr.write(`rebuild failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  } finally {
    await eventStore.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`rebuild failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
