import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventStoreContract } from './contract/event-store-contract.js';
import { createSqliteEventStore } from './sqlite-event-store.js';

eventStoreContract('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cm-es-'));
  const store = createSqliteEventStore({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20 });
  return {
    store,
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
