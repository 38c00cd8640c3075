import { Redis } from 'ioredis';
import { createSqliteEventStore } from '@cm/event-store';
import { createLogger } from '@cm/platform';
import { dropGeneration, rebuildReadModels } from '@cm/read-models';
const es = createSqliteEventStore({ path: process.argv[2]! });
const r = new Redis();
for (const bs of process.argv.slice(3).map(Number)) {
  const ns = `measure-${bs}-${Date.now()}`;
  const s = await rebuildReadModels({ eventStore: es, redisUrl: 'redis://127.0.0.1:6379', namespace: ns, logger: createLogger({ level: 'warn' }), batchSize: bs, dropDelayMs: 0 });
  console.log(`batch ${bs}: ${s.events} events in ${s.seconds.toFixed(1)} s = ${Math.round(s.eventsPerSecond)} events/s; rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB`);
  await dropGeneration(r, ns, 2); await r.del(`${ns}:current`);
}
await r.quit(); await es.close();
