// The composition root: the only place that reads process.env. Runs any set of roles in one
// process; the default (api + projector + reminders on embedded stores) needs no service.
import { loadConfig, ConfigError, createLogger, createShutdown } from '@cm/platform';
import { createSqliteEventStore, createSqliteIdempotencyStore } from '@cm/event-store';
import { createMemoryReadStore, createProjector, createQueries } from '@cm/read-models';
import { buildApp } from './app';

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
  const shutdown = createShutdown(logger);
  shutdown.listen();

  if (config.eventStore.kind === 'esdb') {
    logger.fatal('EVENT_STORE_URL=esdb://... needs the EventStoreDB adapter, which this version does not include yet; unset EVENT_STORE_URL to use the embedded SQLite log');
    process.exit(78);
  }
  if (config.redisUrl) {
    logger.fatal('REDIS_URL is set, but this version keeps read models in memory only; unset REDIS_URL to run embedded');
    process.exit(78);
  }

  const eventStore = createSqliteEventStore({ path: config.eventStore.path });
  shutdown.add('event store', () => eventStore.close());
  const idempotency = createSqliteIdempotencyStore(eventStore.db);
  const readStore = createMemoryReadStore();
  const queries = createQueries(readStore);
  logger.info({ roles: [...config.roles], log: config.eventStore.path }, 'starting');

  // In-memory read models live in this process, so the projector always runs beside the api.
  const projector = createProjector({ eventStore, readStore, logger });
  await projector.start();
  shutdown.add('projector', () => projector.stop());

  if (config.roles.has('reminders')) {
    logger.warn('the reminders role is not part of this version yet: no reminder e-mail will be sent');
  }

  if (config.roles.has('api')) {
    const app = await buildApp({ eventStore, readStore, queries, idempotency, projector, logger, now: () => new Date(), readWaitMs: 5000, bodyLimit: config.bodyLimit });
    shutdown.add('api', () => app.close());
    await app.listen({ port: config.port, host: config.host });
    logger.info({ url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`, docs: '/docs' }, 'commitment monitor listening');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
