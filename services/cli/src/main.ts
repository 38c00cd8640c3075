// The operator's command line, and its composition root: the only place here that reads
// process.env and argv. Each command's work lives in its own file; this one parses, opens the
// stores the configuration names, and passes them down.
//   rebuild [--check]  rebuilds the Redis read models from the log into a new generation and
//                      switches readers to it, or with --check compares instead of switching.
//                      0 done (no differences), 1 differences found (--check), 2 the rebuild failed,
//                      69 Redis unreachable, 75 another rebuild is running, 130 interrupted.
//   export [--out f]   every stream, global order, as an NDJSON bundle. 0 written, 2 failed.
//   verify <file>      offline, no configuration read. 0 valid, 1 invalid, 2 unreadable.
//   import <file>      into an empty SQLite or PostgreSQL log. 0 imported, 1 refused, 2 unreadable or failed.
//   migrate            applies the PostgreSQL log's missing schema migrations. 0 done, 69 server
//                      unreachable, 78 not a PostgreSQL log or its schema is newer than this version.
//   keys add|list|rotate|revoke   the API keys file (API_KEYS_FILE, else DATA_DIR/api-keys.json).
//                      0 done, 1 no key matched, 64 refused, 78 keys file missing or invalid,
//                      2 write failed, 75 locked by another keys command (see keys-command.ts).
// All: 64 bad usage, 78 configuration.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { ConfigError, createLogger, maskUrlPasswords, defaultApiKeysPath, loadConfig, type Config } from '@cm/platform';
import { SchemaTooNewError, cosignerKey, createEsdbEventStore, createSqliteEventStore, loadOrCreateNoteSigner, migratePostgres, openPostgresEventStore, type EventStore } from '@cm/event-store';
import { RebuildAbortedError, RebuildInProgressError, rebuildReadModels } from '@cm/read-models';
import { runExport } from './export-command.js';
import { runImport } from './import-command.js';
import { KEYS_USAGE, parseKeysArgs, runKeys } from './keys-command.js';
import { createProgress } from './progress.js';
import { createProgressPrinter, summaryLines } from './rebuild-report.js';
import { runVerify } from './verify-command.js';
import { runWitness } from './witness-command.js';

const USAGE = [
  'usage: cli rebuild [--check]       rebuild the Redis read models from the log   (pnpm rebuild-read-models [--check])',
  '       cli export [--out <file>]   every stream as an NDJSON bundle, to stdout or a file   (pnpm export-log)',
  '       cli verify <file>           verify a bundle offline   (pnpm verify-bundle <file>)',
  '       cli import <file>           restore a bundle into an empty log   (pnpm import-log <file>)',
  '       cli migrate                 apply the PostgreSQL log schema migrations   (pnpm migrate)',
  '       cli keys add|list|rotate|revoke   manage the API keys   (pnpm keys --help)',
  '       cli witness --log <url> --key <file> --state <file> [--name <name>] [--print-key]   check the log\'s latest checkpoint against the last one co-signed, and co-sign it   (pnpm witness; WITNESS_API_KEY: an auditor key)',
].join('\n');

const usageError = (problem: string) => {
  process.stderr.write(`${problem}\n${USAGE}\n`);
  return 64;
};

/** The configuration, or null after saying in one line what is wrong with it. */
function configOrNull(): Config | null {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return null;
    }
    throw err;
  }
}

// `pnpm verify-bundle <file>` runs from the repository root; pnpm says where it was typed
// (INIT_CWD), and a relative file name means that folder.
const callerPath = (file: string) => resolve(process.env.INIT_CWD ?? process.cwd(), file);

const logDescription = (config: Config) =>
  config.eventStore.kind === 'sqlite' ? config.eventStore.path : config.eventStore.kind === 'postgres' ? maskUrlPasswords(config.eventStore.url) : 'EventStoreDB';

/** The log the configuration names. A PostgreSQL log must be at the current schema (pnpm migrate), not migrated here. */
/** The log, or the exit code after one line on stderr saying why it cannot be opened (78 a newer schema, 69 unreachable). */
async function openLogOrSay(config: Config): Promise<EventStore | number> {
  try {
    return await openLog(config);
  } catch (err) {
    process.stderr.write(`cannot open the log at ${logDescription(config)}: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof SchemaTooNewError ? 78 : 69;
  }
}

async function openLog(config: Config): Promise<EventStore> {
  const es = config.eventStore;
  if (es.kind === 'sqlite') return createSqliteEventStore({ path: es.path });
  if (es.kind === 'postgres') return openPostgresEventStore({ connectionString: es.url, migrate: false, logInfo: (l) => process.stderr.write(`${l}\n`) });
  return createEsdbEventStore({ connectionString: es.url });
}
const stderrProgress = (label: string) => createProgress({ label, tty: process.stderr.isTTY === true, write: (s) => process.stderr.write(s) });

async function main(): Promise<number> {
  const [command, ...args] = process.argv.slice(2);
  switch (command) {
    case 'rebuild':
      return rebuild(args);
    case 'export':
      return exportLog(args);
    case 'verify':
      return verify(args);
    case 'witness':
      return witness(args);
    case 'import':
      return importLog(args);
    case 'keys':
      return keys(args);
    case 'migrate':
      return migrate(args);
    default:
      return usageError(command ? `unknown command: ${command}` : 'no command given');
  }
}

async function exportLog(args: string[]): Promise<number> {
  let out: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--out' && args[i + 1] !== undefined) out = callerPath(args[++i]!);
    else if (a.startsWith('--out=') && a.length > 6) out = callerPath(a.slice(6));
    else return usageError(a === '--out' ? '--out needs a file name' : `unknown option: ${a}`);
  }
  const config = configOrNull();
  if (!config) return 78;
  // Opening a missing file would create an empty log, and export nothing from it.
  if (config.eventStore.kind === 'sqlite' && !existsSync(config.eventStore.path)) {
    process.stderr.write(`no event log at ${config.eventStore.path}: set DATA_DIR (or EVENT_STORE_URL=sqlite:<path>) to the one the service writes\n`);
    return 78;
  }
  const eventStore = await openLogOrSay(config);
  if (typeof eventStore === 'number') return eventStore;
  try {
    return await runExport({
      eventStore, source: logDescription(config), out, stdout: process.stdout, stderr: (s) => process.stderr.write(s), progress: stderrProgress, now: () => new Date(),
    });
  } finally {
    await eventStore.close();
  }
}

// 0 co-signed (the cosignature line on stdout), 1 refused (why on stderr), 2 the log unreachable, 64 usage.
async function witness(args: string[]): Promise<number> {
  const flags = new Map<string, string>();
  // --print-key: the witness's cosigner key, for the log's WITNESS_KEYS (the key file is created if missing).
  const printKey = args.includes('--print-key');
  if (printKey) args = args.filter((a) => a !== '--print-key');
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i]!, args[i + 1]];
    if (!['--log', '--key', '--state', '--name'].includes(flag) || value === undefined) return usageError(`witness: unknown or incomplete option ${flag}`);
    flags.set(flag, value);
  }
  const [log, key, state] = [flags.get('--log'), flags.get('--key'), flags.get('--state')];
  if (printKey) {
    if (!key) return usageError('witness --print-key needs --key <file>');
    process.stdout.write(`${cosignerKey(loadOrCreateNoteSigner(callerPath(key), flags.get('--name') ?? 'witness'))}\n`);
    return 0;
  }
  if (!log || !key || !state) return usageError('witness needs --log <url>, --key <file> and --state <file>');
  try {
    const r = await runWitness({ logUrl: log, keyFile: callerPath(key), stateFile: callerPath(state), name: flags.get('--name') ?? 'witness', apiKey: process.env.WITNESS_API_KEY ?? null });
    if (r.outcome === 'refused') {
      process.stderr.write(`witness: refused: ${r.reason}\n`);
      return 1;
    }
    process.stderr.write(`witness: size ${r.size} is consistent with ${r.previous === null ? 'nothing yet (first checkpoint, trusted on first use)' : `size ${r.previous}`}; co-signed; cosignature ${r.posted}\n`);
    process.stdout.write(r.cosignature);
    return 0;
  } catch (err) {
    process.stderr.write(`witness: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
}

async function verify(args: string[]): Promise<number> {
  // Deliberately no configuration: an auditor runs this with nothing but the file.
  const [file, ...rest] = args;
  if (!file || rest.length > 0 || file.startsWith('--')) return usageError(file ? 'verify takes exactly one file' : 'verify needs a file');
  return runVerify({ file: callerPath(file), stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) });
}

async function importLog(args: string[]): Promise<number> {
  const [file, ...rest] = args;
  if (!file || rest.length > 0 || file.startsWith('--')) return usageError(file ? 'import takes exactly one file' : 'import needs a file');
  const config = configOrNull();
  if (!config) return 78;
  const es = config.eventStore;
  if (es.kind === 'postgres') {
    // The schema is created (migrated) here: an import is how a new server's log begins.
    return runImport({
      file: callerPath(file), target: logDescription(config), logExists: true,
      openStore: () => openPostgresEventStore({ connectionString: es.url, logInfo: (l) => process.stderr.write(`${l}\n`) }),
      stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s), progress: stderrProgress, now: () => new Date(),
    });
  }
  if (es.kind !== 'sqlite') {
    process.stderr.write('import restores into a SQLite or PostgreSQL log only: set EVENT_STORE_URL to sqlite:<path> or postgres://...\n');
    return 78;
  }
  const path = es.path;
  return runImport({
    file: callerPath(file), target: path, logExists: existsSync(path), openStore: () => createSqliteEventStore({ path }),
    stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s), progress: stderrProgress, now: () => new Date(),
  });
}

function keys(args: string[]): number {
  const command = parseKeysArgs(args);
  if ('error' in command) {
    process.stderr.write(command.usage ? `${command.error}\n${KEYS_USAGE}\n` : `${command.error}\n`);
    return 64;
  }
  if (command.kind === 'help') {
    process.stdout.write(`${KEYS_USAGE}\n`);
    return 0;
  }
  const config = configOrNull();
  if (!config) return 78;
  // The same file the service opens (services/api/src/main.ts), relative names meaning the same.
  const file = config.apiKeysFile ?? defaultApiKeysPath(config.dataDir);
  const wait = process.env.KEYS_LOCK_WAIT_MS;
  if (wait !== undefined && !/^\d{1,9}$/.test(wait)) {
    process.stderr.write(`KEYS_LOCK_WAIT_MS ${JSON.stringify(wait)} must be a whole number of milliseconds, such as 10000\n`);
    return 64;
  }
  return runKeys(command, {
    file, stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s), now: () => new Date(),
    ...(wait !== undefined ? { lockWaitMs: Number(wait) } : {}),
  });
}

async function migrate(args: string[]): Promise<number> {
  if (args.length > 0) return usageError(`migrate takes no argument: ${args.join(' ')}`);
  const config = configOrNull();
  if (!config) return 78;
  const es = config.eventStore;
  if (es.kind !== 'postgres') {
    process.stderr.write(`migrate applies the PostgreSQL log's schema: set EVENT_STORE_URL=postgres://user@host:5432/db (the ${es.kind === 'sqlite' ? 'SQLite' : 'EventStoreDB'} log needs none)\n`);
    return 78;
  }
  try {
    const r = await migratePostgres(es.url);
    process.stdout.write(r.applied.length > 0
      ? `the PostgreSQL log at ${logDescription(config)} is at schema version ${r.to} (applied ${r.applied.join(', ')}; was ${r.from})\n`
      : `the PostgreSQL log at ${logDescription(config)} is already at schema version ${r.to}: nothing to apply\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`migrate failed at ${logDescription(config)}: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof SchemaTooNewError ? 78 : 69;
  }
}

async function rebuild(flags: string[]): Promise<number> {
  const unknown = flags.filter((f) => f !== '--check');
  if (unknown.length > 0) return usageError(`unknown option: ${unknown.join(' ')}`);
  const check = flags.includes('--check');

  const config = configOrNull();
  if (!config) return 78;
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
    process.stderr.write(`cannot reach Redis at REDIS_URL=${maskUrlPasswords(redisUrl)}: ${why instanceof Error ? why.message : String(why)}\n`);
    return 69;
  } finally {
    probe.disconnect();
  }

  // stdout carries the progress and the summary; the JSON log goes to stderr.
  const logger = createLogger({ level: config.logLevel, fd: 2 });
  const eventStore = await openLogOrSay(config);
  if (typeof eventStore === 'number') return eventStore;
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    process.stdout.write(`\n${signal}: stopping after the current batch; the live read models are left as they are\n`);
    interrupt.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const printer = createProgressPrinter({ tty: process.stdout.isTTY === true, write: (s) => process.stdout.write(s) });
  process.stdout.write(`${check ? 'checking' : 'rebuilding'} the read models of namespace ${config.redisNamespace} from ${logDescription(config)}\n`);
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
    process.stderr.write(`${process.argv[2] ?? 'cli'} failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
