// A process that starts a projector, stops it inside its resubscription window (see
// restart-window.ts), closes the log and then has nothing left to do: it must exit by itself.
// Usage: node --import tsx stop-in-restart-window.ts <dir> <after-the-refused-batch|while-resubscribing>
import { join } from 'node:path';
import { createSqliteEventStore } from '@cm/event-store';
import { createLogger } from '@cm/platform';
import { createProjector } from '../projector.js';
import { createMemoryReadStore } from '../read-store.js';
import { createLedgerWriter } from './ledger-writer.js';
import { createRestartWindowStore, type StopPoint } from './restart-window.js';

const [dir, at] = process.argv.slice(2) as [string, StopPoint];
const eventStore = createSqliteEventStore({ path: join(dir, 'events.sqlite'), pollIntervalMs: 10 });
await createLedgerWriter(eventStore).agreement('exit', {
  type: 'SignAgreement', agreementId: 'exit', title: 'Exit', kind: 'agreement', sector: 'health', parties: ['VEN', 'RUS'], signedAt: '2025-11-28',
  commitments: [{ commitmentId: 'c', title: 'Deliver c', dueDate: '2026-06-30', responsible: { party: 'VEN', institution: 'Ministry of Health' } }],
}, '2026-01-05T10:00:00.000Z');
const window = createRestartWindowStore(createMemoryReadStore(), at, () => projector.stop());
const projector = createProjector({ eventStore, readStore: window.store, logger: createLogger({ level: 'silent' }) });
await projector.start();
await window.stopped();
await eventStore.close();
process.stdout.write('stopped\n');
