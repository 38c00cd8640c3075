// The EventStoreDB adapter against a real server. No server runs on every machine, so the
// contract runs only where ESDB_URL points at one; elsewhere vitest reports it as skipped.
import { describe } from 'vitest';
import { eventStoreContract } from './contract/event-store-contract';
import { createEsdbEventStore } from './esdb-event-store';

const url = process.env.ESDB_URL;
if (!url) console.warn('EventStoreDB contract skipped: set ESDB_URL=esdb://localhost:2113?tls=false to run it');

describe.skipIf(!url)('EventStoreDB adapter', () => {
  eventStoreContract('EventStoreDB', async () => {
    if (!url) throw new Error('ESDB_URL is not set');
    // Stream names are unique per test, so runs share one server without clearing it.
    const store = createEsdbEventStore({ connectionString: url });
    return { store, cleanup: () => store.close() };
  });
});
