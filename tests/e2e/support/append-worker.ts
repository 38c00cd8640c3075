// A child process for the multi-process log test: opens the shared SQLite log, waits for the
// parent's "go", then appends to streams of its own and to one stream every worker shares,
// with expected revisions (retried on ConcurrencyError for the shared stream only), and reports
// every append back over IPC. Forked with tsx: `node --import tsx append-worker.ts '<plan json>'`.
import { randomUUID } from 'node:crypto';
import { createSqliteEventStore, type ExpectedRevision, type NewEvent } from '@cm/event-store';

export type WorkerMessage =
  | { type: 'ready'; worker: string }
  | {
      type: 'done';
      worker: string;
      appended: { id: string; stream: string; revision: number; position: string }[];
      sharedConflicts: number;
    }
  | { type: 'failed'; worker: string; error: string };

export type WorkerPlan = {
  path: string;
  worker: string;
  ownStreams: string[];
  eventsPerOwnStream: number;
  sharedStream: string;
  sharedEvents: number;
};

const MAX_SHARED_ATTEMPTS = 500;

const isConcurrencyError = (err: unknown) => err instanceof Error && err.name === 'ConcurrencyError';

async function run(plan: WorkerPlan): Promise<void> {
  const { path, worker, ownStreams, sharedStream } = plan;
  const send = (m: WorkerMessage) => new Promise<void>((ok, fail) => process.send!(m, (e: Error | null) => (e ? fail(e) : ok())));
  const store = createSqliteEventStore({ path });
  const go = new Promise<void>((ok) => process.once('message', () => ok()));
  await send({ type: 'ready', worker });
  await go;

  const appended: { id: string; stream: string; revision: number; position: string }[] = [];
  let sharedConflicts = 0;
  const own = ownStreams.map(() => -1);
  let ownDone = 0;
  let sharedDone = 0;
  const total = ownStreams.length * plan.eventsPerOwnStream + plan.sharedEvents;

  const event = (seq: number, stream: string): NewEvent => ({
    id: randomUUID(),
    type: 'MultiProcessProbe',
    data: { worker, seq, stream },
    metadata: { actor: `worker-${worker}`, occurredAt: new Date().toISOString(), correlationId: `${worker}-${seq}` },
  });

  for (let seq = 0; seq < total; seq++) {
    // Every fourth append goes to the shared stream, so the workers contend all along.
    const sharedTurn = sharedDone < plan.sharedEvents && (seq % 4 === 3 || ownDone === ownStreams.length * plan.eventsPerOwnStream);
    if (sharedTurn) {
      const e = event(seq, sharedStream);
      for (let attempt = 1; ; attempt++) {
        const current = await store.streamRevision(sharedStream);
        const expectedRevision: ExpectedRevision = current < 0 ? 'no_stream' : current;
        // A command handler folds and decides between its read and its append: leave the
        // other processes that window, as real ones would have.
        await new Promise((r) => setTimeout(r, Math.random() * 2));
        try {
          const r = await store.append(sharedStream, [e], { expectedRevision });
          appended.push({ id: e.id, stream: sharedStream, revision: r.revision, position: r.position });
          break;
        } catch (err) {
          if (!isConcurrencyError(err) || attempt >= MAX_SHARED_ATTEMPTS) throw err;
          sharedConflicts++;
          await new Promise((r) => setTimeout(r, Math.random() * 3));
        }
      }
      sharedDone++;
    } else {
      const n = ownDone++ % ownStreams.length;
      const stream = ownStreams[n]!;
      const e = event(seq, stream);
      // Nobody else writes these streams: a conflict here would be a bug, so it is not retried.
      const r = await store.append(stream, [e], { expectedRevision: own[n]! < 0 ? 'no_stream' : own[n]! });
      own[n] = r.revision;
      appended.push({ id: e.id, stream, revision: r.revision, position: r.position });
    }
  }
  await store.close();
  await send({ type: 'done', worker, appended, sharedConflicts });
}

const arg = process.argv[2];
if (!arg || !process.send) {
  process.stderr.write("usage: node --import tsx append-worker.ts '<WorkerPlan as JSON>' (forked with an IPC channel)\n");
  process.exit(2);
}
const plan = JSON.parse(arg) as WorkerPlan;
const worker = plan.worker;
run(plan).then(
  () => process.disconnect(),
  async (err: unknown) => {
    const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    process.stderr.write(`worker ${worker} failed: ${error}\n`);
    process.send?.({ type: 'failed', worker, error } satisfies WorkerMessage, () => process.exit(1));
  },
);
