// The composition root: the only place that reads process.env. Runs any set of roles in one
// process; the default (api + projector + reminders on embedded stores) needs no service.
import './heap-settings.js';
import { join } from 'node:path';
import {
  ApiKeysError, ConfigError, isLoopbackHost, maskUrlPasswords, createKeyRing, createLogger, createShutdown, defaultApiKeysPath, planFirstApiKey, type FirstApiKey, loadConfig,
  type Config, type KeyRing,
} from '@cm/platform';
import type { Logger } from 'pino';
import {
  IDEMPOTENCY_RETENTION_MS, SchemaTooNewError, createEsdbEventStore, openPostgresEventStore, createMemoryLogTree, createSqliteLogTree, loadOrCreateNoteSigner, parseVerifierKey, COSIGNATURE_V1, type LogTree, createRedisIdempotencyStore, createSqliteEventStore, createSqliteIdempotencyStore, openSqliteDatabase,
  type EventStore, type IdempotencyStore,
} from '@cm/event-store';
import {
  createMemoryReadStore, createProjector, createQueries, createRedisReadStore, runWithLease, type Projector, type ReadStore,
} from '@cm/read-models';
import { createBullmqScheduler, createInProcessScheduler, createMailer, createRedisSendLedger, createReminderSender, createRemindersRole } from '@cm/reminders';
import { buildApp } from './app.js';
import { createOutcomeCompleter } from './review-outcomes.js';
import { CHECKPOINT_INTERVAL_MS, createTransparency, defaultLogOrigin } from './transparency.js';
import { createWebhookDispatcher, createWebhookStore } from './webhooks/webhook-dispatcher.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel });
  // Keys first: a bad keys file stops the start before any store is opened.
  const { ring: keyRing, firstKey } = config.roles.has('api') ? openKeyRing(config, logger) : { ring: null, firstKey: null };
  const shutdown = createShutdown(logger);
  shutdown.listen();

  let redisStore: ReturnType<typeof createRedisReadStore> | null = null;
  if (config.redisUrl) {
    redisStore = createRedisReadStore({ url: config.redisUrl, namespace: config.redisNamespace });
    try {
      await redisStore.redis.ping();
    } catch (err) {
      logger.fatal({ err }, `cannot reach Redis at REDIS_URL=${maskUrlPasswords(config.redisUrl)}: start Redis or unset REDIS_URL to run embedded`);
      process.exit(69);
    }
    shutdown.add('read store', () => redisStore!.close());
  }

  let eventStore: EventStore;
  let idempotency: IdempotencyStore;
  let tree: LogTree;
  if (config.eventStore.kind === 'sqlite') {
    const storeLog = logger.child({ component: 'event-store' });
    const sqlite = createSqliteEventStore({
      path: config.eventStore.path,
      writer: { logger: storeLog },
      logError: (message, err) => storeLog.error({ err }, message),
    });
    eventStore = sqlite;
    idempotency = createSqliteIdempotencyStore(sqlite.db);
    tree = createSqliteLogTree(sqlite.db, sqlite, { onProgress: (leaves) => storeLog.info({ leaves }, 'Merkle tree: taking in the log') });
  } else if (config.eventStore.kind === 'postgres') {
    const storeLog = logger.child({ component: 'event-store' });
    const url = config.eventStore.url;
    try {
      // Applies the schema's missing migrations (pnpm migrate does the same for operators who run them apart).
      eventStore = await openPostgresEventStore({
        connectionString: url,
        logError: (message, err) => storeLog.error({ err }, message),
        logInfo: (message) => storeLog.warn(message),
      });
    } catch (err) {
      if (err instanceof SchemaTooNewError) {
        logger.fatal({ found: err.found, known: err.known }, err.message);
        process.exit(78);
      }
      logger.fatal({ err }, `cannot open the PostgreSQL log at EVENT_STORE_URL=${maskUrlPasswords(url)}: check the server is up, the database exists and the user may create tables in it`);
      process.exit(69);
    }
    // As with EventStoreDB: api processes on several machines share idempotency answers through
    // Redis; without Redis, a SQLite file under DATA_DIR keeps this process's answers.
    idempotency = redisStore
      ? createRedisIdempotencyStore(redisStore.redis, { namespace: config.redisNamespace })
      : createSqliteIdempotencyStore(openSqliteDatabase(`${config.dataDir}/idempotency.sqlite`), { besideLog: false });
    // The log is remote: its tree is derived from it in memory, from readAll at start.
    tree = createMemoryLogTree(eventStore, { onProgress: (leaves) => storeLog.info({ leaves }, 'Merkle tree: taking in the log') });
  } else {
    const storeLog = logger.child({ component: 'event-store' });
    eventStore = createEsdbEventStore({ connectionString: config.eventStore.url, logError: (message, err) => storeLog.error({ err }, message) });
    try {
      await eventStore.headPosition();
    } catch (err) {
      logger.fatal({ err }, 'cannot read the EventStoreDB log at EVENT_STORE_URL: check the cluster is up and the connection string (user with access to $all, tls settings)');
      process.exit(69);
    }
    // Api processes on several machines share no file: their idempotency answers go to Redis when there is one.
    // The log is remote: its tree is derived from it in memory, from readAll at start.
    tree = createMemoryLogTree(eventStore, { onProgress: (leaves) => storeLog.info({ leaves }, 'Merkle tree: taking in the log') });
    idempotency = redisStore
      ? createRedisIdempotencyStore(redisStore.redis, { namespace: config.redisNamespace })
      : createSqliteIdempotencyStore(openSqliteDatabase(`${config.dataDir}/idempotency.sqlite`), { besideLog: false });
  }
  shutdown.add('event store', () => eventStore.close());
  logger.info(
    { roles: [...config.roles], log: config.eventStore.kind === 'sqlite' ? config.eventStore.path : config.eventStore.kind === 'postgres' ? maskUrlPasswords(config.eventStore.url) : 'eventstoredb', readModels: redisStore ? 'redis' : 'memory' },
    'starting',
  );

  let readStore: ReadStore;
  let projector: Projector | null = null;
  if (!redisStore) {
    readStore = createMemoryReadStore();
    // In-memory read models live in this process, so the projector always runs beside the api.
    projector = createProjector({ eventStore, readStore, logger });
    await projector.start();
    shutdown.add('projector', () => projector!.stop());
  } else {
    readStore = redisStore;
    const leaseStore = redisStore;
    if (config.roles.has('projector')) {
      const lease = runWithLease({ redis: leaseStore.redis, key: `${config.redisNamespace}:lease:ledger`, logger }, async (held) => {
        const leased = createProjector({ eventStore, readStore, logger, fence: held });
        await leased.start();
        projector = leased;
        return async () => {
          projector = null;
          await leased.stop();
        };
      });
      shutdown.add('projector lease', () => lease.stop());
    }
  }
  const queries = createQueries(readStore);

  if (config.roles.has('reminders')) {
    const mailer = createMailer({ smtpUrl: config.smtpUrl, outboxDir: join(config.dataDir, 'outbox'), from: config.mailFrom });
    // Claims and "sent" markers shared by every reminders process on this Redis (without it, one
    // process holds every send and keeps them in memory).
    const ledger = config.redisUrl ? createRedisSendLedger({ redisUrl: config.redisUrl, namespace: config.redisNamespace }) : undefined;
    const sender = createReminderSender({
      eventStore, mailer, offsets: config.reminderOffsets, now: () => new Date(), publicUrl: config.publicUrl, logger, ...(ledger ? { ledger } : {}),
    });
    // With Redis the sends live in BullMQ, so they outlive this process and several reminders
    // processes share them; without it, timers in this process.
    const scheduler = config.redisUrl
      ? createBullmqScheduler({ redisUrl: config.redisUrl, namespace: config.redisNamespace, processor: sender, logger })
      : createInProcessScheduler({ processor: sender, logger });
    const reminders = createRemindersRole({ eventStore, scheduler, offsets: config.reminderOffsets, now: () => new Date(), logger });
    await reminders.start();
    shutdown.add('reminders', async () => {
      await reminders.stop();
      await mailer.close();
      await ledger?.close();
    });
    logger.info(
      { mail: config.smtpUrl ? 'smtp' : join(config.dataDir, 'outbox'), scheduler: config.redisUrl ? 'bullmq' : 'in-process', offsets: config.reminderOffsets.map((o) => o.label) },
      'reminders role running',
    );
  }

  if (config.roles.has('api')) {
    // Answers to Idempotency-Key are kept 48 hours (the contract promises at least 24).
    const prune = () => {
      idempotency.prune(new Date(Date.now() - IDEMPOTENCY_RETENTION_MS).toISOString())
        .then((n) => n > 0 && logger.info({ pruned: n }, 'old idempotency answers pruned'))
        .catch((err: unknown) => logger.error({ err }, 'pruning idempotency answers failed; will retry in an hour'));
    };
    prune();
    const pruning = setInterval(prune, 3_600_000);
    pruning.unref();
    shutdown.add('idempotency pruning', async () => clearInterval(pruning));
    // Review outcomes left half written (ReviewHeld without its agreement events) are completed
    // here, in the role that writes them: it runs wherever outcomes are recorded, needs no lease
    // (several api processes completing the same outcome write the same event ids, kept once),
    // and its start scan finds what a crash of the previous process left.
    const origin = config.logOrigin ?? defaultLogOrigin(config.publicUrl);
    const signer = loadOrCreateNoteSigner(join(config.dataDir, 'log-signing-key.pem'), origin);
    if (signer.created) logger.info({ file: join(config.dataDir, 'log-signing-key.pem'), origin }, 'first start: generated the Ed25519 key that signs the log\'s checkpoints (keep the file: a new key makes earlier checkpoints unverifiable against GET /v1/log/key)');
    const treeStarted = Date.now();
    const leaves = await tree.sync();
    logger.info({ leaves, ms: Date.now() - treeStarted }, 'Merkle tree of the log up to date');
    let witnesses;
    try {
      witnesses = config.witnessKeys.map((k) => parseVerifierKey(k, COSIGNATURE_V1));
    } catch (err) {
      process.stderr.write(`invalid configuration: WITNESS_KEYS: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(78);
    }
    const transparency = createTransparency({ tree, origin, signer, now: () => new Date(), witnesses });
    // A checkpoint about every minute while the log grows, whether or not anyone asks (checked
    // four times a minute, so timer jitter never skips a minute).
    const checkpointing = setInterval(() => {
      transparency.checkpoint().catch((err: unknown) => logger.error({ err }, 'signing a checkpoint failed; retrying in a minute'));
    }, CHECKPOINT_INTERVAL_MS / 4);
    checkpointing.unref();
    shutdown.add('checkpoints', async () => clearInterval(checkpointing));
    const outcomes = createOutcomeCompleter({ eventStore, logger });
    await outcomes.start();
    shutdown.add('review outcomes', () => outcomes.stop());
    // Webhook subscriptions and their delivery cursors, durably in DATA_DIR; deliveries run in
    // this process, a pass every second (the cursor makes a restart resume where it stopped).
    const webhookStore = createWebhookStore(openSqliteDatabase(join(config.dataDir, 'webhooks.sqlite')));
    const webhookOptions = { allowLoopbackHttp: isLoopbackHost(config.host), allowHosts: config.webhookAllowHosts };
    const dispatcher = createWebhookDispatcher({ eventStore, store: webhookStore, now: () => new Date(), logger: logger.child({ component: 'webhooks' }), ...webhookOptions });
    const delivering = setInterval(() => {
      dispatcher.runOnce().catch((err: unknown) => logger.error({ err }, 'webhook deliveries failed; retrying in a second'));
    }, 1000);
    // A pass in flight is not awaited (a slow receiver would hold the shutdown): its cursor is
    // checkpointed per event, so the next start sends at most the event in flight again.
    shutdown.add('webhooks', () => clearInterval(delivering));
    const app = await buildApp({
      webhooks: { store: webhookStore, dispatcher, ...webhookOptions },
      eventStore, readStore, queries, idempotency, projector, logger, now: () => new Date(), readWaitMs: 5000, bodyLimit: config.bodyLimit,
      keyRing,
      rateLimit: config.rateLimit && { ...config.rateLimit, redis: redisStore?.redis, namespace: config.redisNamespace },
      corsOrigins: config.corsOrigins,
      reminderOffsets: config.reminderOffsets,
      publicUrl: config.publicUrl,
      transparency,
    });
    shutdown.add('api', () => app.close());
    await app.listen({ port: config.port, host: config.host });
    logger.info({ url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`, docs: '/docs' }, 'commitment monitor listening');
    if (firstKey) announceFirstKey(firstKey, keyRing!, config);
  }
}

/**
 * The API keys this process accepts. The embedded start with no API_KEYS_FILE plans an admin
 * key on first start; it is written (only its hash, under DATA_DIR) and its secret printed once
 * the service listens, so a start that fails leaves no key behind.
 */
function openKeyRing(config: Config, logger: Logger): { ring: KeyRing | null; firstKey: FirstApiKey | null } {
  if (config.auth === 'off') {
    logger.warn({ host: config.host }, 'AUTH=off: no API key is checked and every caller acts as "anonymous" with every right; accepted only because HOST is a loopback address. Never forward this port.');
    return { ring: null, firstKey: null };
  }
  const path = config.apiKeysFile ?? defaultApiKeysPath(config.dataDir);
  try {
    const firstKey = config.apiKeysFile ? null : planFirstApiKey(path);
    const ring = createKeyRing(path, {
      missingIsEmpty: firstKey !== null,
      onError: (err) => logger.error({ err: err.message }, 'the API keys file changed but cannot be used; the previous keys stay in force until it is fixed'),
      onReload: (count) => logger.info({ keys: count, file: path }, 'API keys loaded'),
      onMissing: (file) => logger.error({ file }, 'the API keys file is missing: every API key is refused (401) until it is restored; pnpm keys add creates a new one'),
    });
    if (ring.size === 0 && !firstKey) logger.warn({ file: path }, 'the API keys file holds no key: every request but /health, /ready and /docs is refused; add one with pnpm keys add');
    return { ring, firstKey };
  } catch (err) {
    if (err instanceof ApiKeysError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
}

/**
 * Writes the first admin key and prints its secret as a plain banner on stderr, outside the JSON
 * log stream on stdout (log collectors never see it).
 */
function announceFirstKey(firstKey: FirstApiKey, ring: KeyRing, config: Config): void {
  const path = defaultApiKeysPath(config.dataDir);
  firstKey.write();
  ring.reload();
  process.stderr.write(
    `\n  First start: created the API key "${firstKey.name}" (role admin). Only its SHA-256 is stored, in ${path}.\n` +
    `  Its secret is shown this once; keep it somewhere safe:\n\n    ${firstKey.secret}\n\n` +
    `  Send it as:  Authorization: Bearer <the secret above>\n` +
    `  Create keys for each ministry tool with: pnpm keys add --name <name> --role editor --parties VEN\n` +
    `  Lost it? Make another admin key with:     pnpm keys add --name <name> --role admin\n\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
