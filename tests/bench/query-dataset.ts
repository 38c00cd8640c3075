// A log of N commitments written straight into a fresh SQLite event log (no HTTP), for the
// query benchmarks: the service started on it rebuilds its read models from these events.
// Deterministic shape: 50 commitments per agreement, five sectors, VEN and RUS responsible in
// turn, due dates spread over 2025-2028, and of every 20 commitments 6 in progress, 2 delayed,
// 3 implemented, 1 cancelled, 8 pending (so some are overdue and some delayed in every sector).
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createSqliteEventStore, type NewEvent } from '@cm/event-store';

export const COMMITMENTS_PER_AGREEMENT = 50;
export const SECTORS = ['health', 'energy', 'science', 'air_connectivity', 'education'] as const;
/** Agreements sharing one group-committed transaction while writing. */
const AGREEMENTS_PER_BATCH = 200;

export type QueryDataset = { agreements: number; commitments: number; events: number; seconds: number };

const dayOf = (start: number, offsetDays: number) => new Date(start + offsetDays * 86_400_000).toISOString().slice(0, 10);
const START = Date.UTC(2025, 0, 1);

const agreementIdOf = (a: number) => `q-agreement-${String(a).padStart(6, '0')}`;

function agreementEvents(a: number): NewEvent[] {
  const id = agreementIdOf(a);
  const sector = SECTORS[a % SECTORS.length]!;
  let minute = 0;
  const meta = () => ({ actor: 'bench', occurredAt: new Date(Date.UTC(2025, 10, 28, 12) + minute++ * 60_000).toISOString(), correlationId: randomUUID() });
  const events: NewEvent[] = [{
    id: randomUUID(),
    type: 'AgreementSigned',
    data: { agreementId: id, title: `Query bench agreement ${a}`, kind: 'agreement', sector, parties: ['VEN', 'RUS'], signedAt: '2025-11-28', session: { name: 'CIAN XIX', date: '2025-11-28' } },
    metadata: meta(),
  }];
  const status: NewEvent[] = [];
  for (let c = 0; c < COMMITMENTS_PER_AGREEMENT; c++) {
    const n = a * COMMITMENTS_PER_AGREEMENT + c;
    const commitmentId = `c-${String(c).padStart(3, '0')}`;
    const dueDate = dayOf(START, (n * 37) % 1460);
    events.push({
      id: randomUUID(),
      type: 'CommitmentAdded',
      data: { agreementId: id, commitmentId, title: `Commitment ${n}`, dueDate, responsible: { party: c % 2 === 0 ? 'VEN' : 'RUS', institution: `Institution ${c % 7}` } },
      metadata: meta(),
    });
    const kind = (n * 7) % 20;
    if (kind < 6) status.push({ id: randomUUID(), type: 'ProgressReported', data: { commitmentId, percent: 10 + (n % 80) }, metadata: meta() });
    else if (kind < 8) status.push({ id: randomUUID(), type: 'CommitmentDelayed', data: { commitmentId, reason: 'bench delay', previousDueDate: dueDate, newDueDate: dayOf(Date.parse(`${dueDate}T00:00:00Z`), 180) }, metadata: meta() });
    else if (kind < 11) status.push({ id: randomUUID(), type: 'CommitmentImplemented', data: { commitmentId }, metadata: meta() });
    else if (kind < 12) status.push({ id: randomUUID(), type: 'CommitmentCancelled', data: { commitmentId, reason: 'bench cancellation' }, metadata: meta() });
  }
  return [...events, ...status];
}

/**
 * Grows the log in `dataDir/events.sqlite` to ceil(commitments / 50) agreements, writing those
 * after the first `alreadyWritten` (0 for a new log; the figures returned count the whole log).
 */
export async function writeQueryDataset(
  dataDir: string, commitments: number, progress: (m: string) => void, alreadyWritten: QueryDataset | null = null,
): Promise<QueryDataset> {
  const store = createSqliteEventStore({ path: path.join(dataDir, 'events.sqlite') });
  const agreements = Math.ceil(commitments / COMMITMENTS_PER_AGREEMENT);
  const started = Date.now();
  let events = alreadyWritten?.events ?? 0;
  let lastReport = started;
  try {
    for (let a = alreadyWritten?.agreements ?? 0; a < agreements; a += AGREEMENTS_PER_BATCH) {
      const batch: Promise<unknown>[] = [];
      // Appends issued in one turn of the event loop share one transaction (the store's group commit).
      for (let b = a; b < Math.min(agreements, a + AGREEMENTS_PER_BATCH); b++) {
        const stream = agreementEvents(b);
        events += stream.length;
        batch.push(store.append(`agreement-${agreementIdOf(b)}`, stream, { expectedRevision: 'no_stream' }));
      }
      await Promise.all(batch);
      if (Date.now() - lastReport > 3000) {
        lastReport = Date.now();
        progress(`  writing the log: ${Math.min(agreements, a + AGREEMENTS_PER_BATCH)}/${agreements} agreements, ${events} events`);
      }
    }
  } finally {
    await store.close();
  }
  return { agreements, commitments: agreements * COMMITMENTS_PER_AGREEMENT, events, seconds: (alreadyWritten?.seconds ?? 0) + (Date.now() - started) / 1000 };
}
