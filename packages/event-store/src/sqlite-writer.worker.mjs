// The write side of the embedded log, on its own thread (see sqlite-writer.ts): its own
// connection, synchronous=FULL, runs each group of appends in one BEGIN IMMEDIATE transaction
// and answers only after COMMIT, i.e. after the fsync. Blocking here, not on the thread that
// serves HTTP, lets the next group be decided while this one is being made durable.
// Plain JavaScript so that it starts under any loader (tsx, vitest, plain node).
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { CURRENT_HASH_SCHEME, eventHash, genesisHash } from './event-hash.mjs';

const db = new Database(workerData.path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 10000');

const stmt = {
  streamHead: db.prepare('SELECT revision, hash FROM streams WHERE stream = ?'),
  byEventId: db.prepare('SELECT * FROM events WHERE event_id = ?'),
  lastRecordedAt: db.prepare("SELECT json_extract(metadata, '$.recordedAt') AS recorded_at FROM events ORDER BY position DESC LIMIT 1"),
  streamEventAt: db.prepare('SELECT position FROM events WHERE stream = ? AND revision = ?'),
  insert: db.prepare(
    `INSERT INTO events (event_id, stream, revision, type, data, metadata, recorded_at, prev_hash, hash)
     VALUES (@id, @stream, @revision, @type, @data, @metadata, @recordedAt, @prevHash, @hash)`,
  ),
  upsertStream: db.prepare(
    `INSERT INTO streams (stream, revision, hash, created_position) VALUES (@stream, @revision, @hash, @position)
     ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision, hash = excluded.hash`,
  ),
};

class Conflict extends Error {
  constructor(stream, expected, actual) {
    super(`stream ${stream} is at revision ${actual}, not ${expected}`);
    this.conflict = { stream, expected, actual };
  }
}

// One append: the same rules as the in-thread version had (sqlite-event-store.ts documents them).
// Answers rows for a repeated append, and only what the caller does not already hold otherwise.
const appendTx = db.transaction((stream, events, expected, clock) => {
  const first = events[0];
  if (first) {
    const existing = stmt.byEventId.get(first.id);
    if (existing) return repeatedAppend(stream, events, existing);
  }
  const head = stmt.streamHead.get(stream);
  const current = head ? head.revision : -1;
  if (expected !== 'any') {
    const want = expected === 'no_stream' ? -1 : expected;
    if (want !== current) throw new Conflict(stream, want, current);
  }
  if (events.length === 0) {
    const last = current >= 0 ? stmt.streamEventAt.get(stream, current) : undefined;
    return { revision: current, position: last ? String(last.position) : '0', written: [] };
  }
  // recordedAt never goes backwards, so "as of an instant" is always a prefix of the log.
  const lastAt = stmt.lastRecordedAt.get()?.recorded_at;
  const recordedAt = lastAt && lastAt > clock ? lastAt : clock;
  let prevHash = head?.hash ?? genesisHash(CURRENT_HASH_SCHEME, stream);
  let revision = current;
  let firstPosition = null;
  let position = '0';
  const written = [];
  for (const e of events) {
    revision++;
    const metadata = { ...e.metadata, recordedAt, hashScheme: CURRENT_HASH_SCHEME };
    const hash = eventHash({ stream, id: e.id, revision, prevHash, type: e.type, data: e.data, metadata });
    const info = stmt.insert.run({
      id: e.id, stream, revision, type: e.type, data: JSON.stringify(e.data), metadata: JSON.stringify(metadata), recordedAt, prevHash, hash,
    });
    position = String(info.lastInsertRowid);
    firstPosition ??= position;
    written.push({ revision, position, prevHash, hash });
    prevHash = hash;
  }
  stmt.upsertStream.run({ stream, revision, hash: prevHash, position: firstPosition });
  exitIf('exit-before-commit');
  return { revision, position, recordedAt, hashScheme: CURRENT_HASH_SCHEME, written };
});

function repeatedAppend(stream, events, first) {
  // The same ids again: answer what the first append wrote, write nothing.
  const rows = [first];
  for (const e of events.slice(1)) {
    const r = stmt.byEventId.get(e.id);
    if (!r) throw new Error(`append to ${stream} repeats event ${first.event_id} but not ${e.id}: refusing a partial duplicate`);
    rows.push(r);
  }
  if (rows.some((r) => r.stream !== stream)) {
    throw new Error(`event ${first.event_id} was already appended to stream ${first.stream}, not ${stream}`);
  }
  return { duplicateRows: rows };
}

// Each append in its own savepoint: one refused append does not undo the others of its group.
const groupTx = db.transaction((group, clock) =>
  group.map((p) => {
    try {
      return { ok: appendTx(p.stream, p.events, p.expected, clock) };
    } catch (err) {
      return err instanceof Conflict ? { conflict: err.conflict } : { error: describe(err) };
    }
  }),
);

function describe(err) {
  return err instanceof Error ? { message: err.message, name: err.name, code: err.code } : { message: String(err) };
}

// Test hook (sqlite-writer.ts, WriterFault): how this thread is made to stop at a chosen moment.
let fault = null;
const exitIf = (at) => {
  if (fault === at) process.exit(1);
};

parentPort.on('message', (msg) => {
  if (msg.type === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  if (msg.type === 'fault') {
    if (msg.fault === 'crash') throw new Error('writer thread crash injected by a test');
    fault = msg.fault;
    return;
  }
  let reply;
  try {
    reply = { id: msg.id, outcomes: groupTx.immediate(msg.group, msg.clock) };
  } catch (err) {
    reply = { id: msg.id, error: describe(err) };
  }
  exitIf('exit-after-commit');
  parentPort.postMessage(reply);
});

// The connection is open and the statements prepared: appends can be taken.
parentPort.postMessage({ type: 'ready' });
