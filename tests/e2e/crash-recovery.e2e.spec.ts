// Crash recovery of the embedded service (SQLite log + in-memory read models rebuilt at start):
// SIGKILL while commands are in flight, SIGTERM, and a crash between the append and the
// remembered Idempotency-Key answer. What was answered 2xx must survive, nothing may be applied
// twice, every stream must stay gap-free and verifiable, and a rebuild must answer as before.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { client, type Client, type Reply } from './support/http.js';
import { checkLog, readHistory, snapshot, type HistoryEvent, type Snapshot } from './support/ledger-checks.js';
import { killAllServices, removeDataDir, startService, type ServiceProcess } from './support/service-process.js';

const DUE = '2099-06-30';
const LATER = '2100-01-31';
const SECTORS = ['health', 'aviation', 'science', 'economy'];
const dirs: string[] = [];

afterAll(async () => {
  await killAllServices();
  dirs.forEach(removeDataDir);
});

type Command = {
  /** Idempotency-Key, and the tag that finds the command's event in the history. */
  key: string;
  kind: 'create' | 'progress' | 'delay' | 'implement' | 'cancel' | 'add';
  agreementId: string;
  commitmentId?: string;
  path: string;
  body: any;
};
type Outcome = { command: Command; reply: Reply | null; error?: unknown };

const commitment = (id: string, party: string) => ({
  id,
  title: `Commitment ${id}`,
  dueDate: DUE,
  responsible: { party, institution: party === 'VEN' ? 'Ministerio del Poder Popular para la Salud' : 'Ministry of Health' },
});

function create(agreementId: string, commitmentIds: string[], i: number): Command {
  return {
    key: `create-${agreementId}`,
    kind: 'create',
    agreementId,
    path: '/v1/agreements',
    body: {
      id: agreementId,
      title: `Agreement ${agreementId}`,
      kind: 'agreement',
      sector: SECTORS[i % SECTORS.length],
      parties: ['VEN', 'RUS'],
      signedAt: '2025-11-28',
      session: { name: 'CIAN XIX', date: '2025-11-28' },
      commitments: commitmentIds.map((c, n) => commitment(c, n % 2 ? 'RUS' : 'VEN')),
    },
  };
}

function onCommitment(kind: 'progress' | 'delay' | 'implement' | 'cancel', agreementId: string, commitmentId: string, key: string, percent = 0): Command {
  const base = `/v1/agreements/${agreementId}/commitments/${commitmentId}`;
  const [path, body] =
    kind === 'progress' ? [`${base}/progress`, { percent, note: key }]
    : kind === 'delay' ? [`${base}/delay`, { reason: key, newDueDate: LATER }]
    : kind === 'implement' ? [`${base}/implementation`, { note: key }]
    : [`${base}/cancellation`, { reason: key }];
  return { key, kind, agreementId, commitmentId, path, body };
}

function addCommitment(agreementId: string, commitmentId: string, key: string): Command {
  return { key, kind: 'add', agreementId, commitmentId, path: `/v1/agreements/${agreementId}/commitments`, body: { ...commitment(commitmentId, 'RUS'), description: key } };
}

/** Whether a history event is the one this command appended (its last one, for a create). */
function isEventOf(c: Command, e: HistoryEvent, history: HistoryEvent[]): boolean {
  switch (c.kind) {
    case 'create':
      return history[0]?.type === 'AgreementSigned' && history[0].data.title === c.body.title && e.revision === c.body.commitments.length;
    case 'progress':
      return e.type === 'ProgressReported' && e.data.note === c.key && e.data.percent === c.body.percent && e.data.commitmentId === c.commitmentId;
    case 'delay':
      return e.type === 'CommitmentDelayed' && e.data.reason === c.key && e.data.commitmentId === c.commitmentId;
    case 'implement':
      return e.type === 'CommitmentImplemented' && e.data.note === c.key && e.data.commitmentId === c.commitmentId;
    case 'cancel':
      return e.type === 'CommitmentCancelled' && e.data.reason === c.key && e.data.commitmentId === c.commitmentId;
    case 'add':
      return e.type === 'CommitmentAdded' && e.data.description === c.key && e.data.commitmentId === c.commitmentId;
  }
}

/** How many times the log holds the command's effect (0 or 1 when nothing is doubled). */
function timesApplied(c: Command, histories: Map<string, HistoryEvent[]>): number {
  const history = histories.get(c.agreementId) ?? [];
  if (c.kind === 'create') return history.filter((e) => e.type === 'AgreementSigned').length;
  return history.filter((e) => isEventOf(c, e, history)).length;
}

const send = (api: Client, c: Command) => api.post(c.path, c.body, { 'idempotency-key': c.key });
/** As most ministry tools send them: no Idempotency-Key, so only the body tells the command's event. */
const sendBare = (api: Client, c: Command) => api.post(c.path, c.body);

describe('SIGKILL while a burst of commands is in flight', () => {
  const AGREEMENTS = 10;
  const ids = Array.from({ length: AGREEMENTS }, (_, i) => `crash-a${i}`);
  const answered: { command: Command; reply: Reply }[] = [];
  let burst: Outcome[] = [];
  let service: ServiceProcess;
  let api: Client;
  let dataDir: string;
  let afterCrash: Snapshot;
  let histories: Map<string, HistoryEvent[]>;

  const landed = (c: Command) => timesApplied(c, histories) > 0;

  afterAll(killAllServices);

  beforeAll(async () => {
    service = await startService();
    dataDir = service.dataDir;
    dirs.push(dataDir);
    api = client(service.url);

    // Ten agreements signed at once, then four commands on each, all at once (they commute).
    const creates = ids.map((id, i) => create(id, ['cm1', 'cm2', 'cm3', 'cm4', 'cm5'], i));
    const updates = ids.flatMap((id) => [
      onCommitment('progress', id, 'cm1', `${id}-cm1-progress-40`, 40),
      onCommitment('delay', id, 'cm2', `${id}-cm2-delay`),
      onCommitment('implement', id, 'cm3', `${id}-cm3-implement`),
      onCommitment('cancel', id, 'cm4', `${id}-cm4-cancel`),
    ]);
    for (const wave of [creates, updates]) {
      const replies = await Promise.all(wave.map((c) => send(api, c)));
      replies.forEach((reply, n) => {
        expect(reply.status, `${wave[n]!.key}: ${JSON.stringify(reply.body)}`).toBeLessThan(300);
        answered.push({ command: wave[n]!, reply });
      });
    }

    // The burst: fifty commands at once; the process is killed when ten have been answered.
    const commands = ids.flatMap((id, i) => [
      onCommitment('progress', id, 'cm1', `${id}-cm1-progress-burst`, 50 + i),
      create(`crash-b${i}`, ['bm1', 'bm2'], i),
      onCommitment('progress', id, 'cm2', `${id}-cm2-progress-burst`, 30 + i),
      addCommitment(id, 'cm6', `${id}-cm6-add`),
      onCommitment('progress', id, 'cm5', `${id}-cm5-progress-burst`, 10 + i),
    ]);
    let replies = 0;
    burst = await Promise.all(
      commands.map((command) =>
        send(api, command).then(
          (reply): Outcome => {
            if (++replies === 10) service.child.kill('SIGKILL');
            return { command, reply };
          },
          (error: unknown): Outcome => ({ command, reply: null, error }),
        ),
      ),
    );
    expect(await service.exited).toEqual({ code: null, signal: 'SIGKILL' });
    for (const o of burst) {
      if (!o.reply) continue;
      expect(o.reply.status, `${o.command.key}: ${JSON.stringify(o.reply.body)}`).toBeLessThan(300);
      answered.push({ command: o.command, reply: o.reply });
    }
    expect(burst.filter((o) => o.reply).length).toBeGreaterThanOrEqual(10);

    service = await startService({ dataDir });
    api = client(service.url);
    afterCrash = await snapshot(api);
    histories = new Map(await Promise.all(afterCrash.list.items.map(async (a: { id: string }) => [a.id, await readHistory(api, a.id)] as const)));
  }, 60_000);

  it('left commands in flight when the process was killed', () => {
    // Otherwise this file would test nothing about a crash.
    expect(burst.filter((o) => !o.reply).length).toBeGreaterThan(0);
  });

  it('keeps every command answered 2xx: its event is where the answer said, and the read models show it', () => {
    for (const { command, reply } of answered) {
      const history = histories.get(command.agreementId);
      expect(history, `${command.key}: agreement ${command.agreementId} is gone`).toBeDefined();
      const event = history![reply.body.revision as number];
      expect(event, `${command.key}: no event at revision ${reply.body.revision}`).toBeDefined();
      expect(isEventOf(command, event!, history!), `${command.key}: revision ${reply.body.revision} holds ${JSON.stringify(event)}`).toBe(true);
      expect(event!.position, command.key).toBe(reply.body.position);
      const detail = afterCrash.details[command.agreementId]!.body as any;
      expect(detail.revision).toBeGreaterThanOrEqual(reply.body.revision);
      if (command.kind === 'create') {
        expect(detail.commitments.map((c: { id: string }) => c.id)).toEqual(expect.arrayContaining(command.body.commitments.map((c: { id: string }) => c.id)));
        continue;
      }
      const c = detail.commitments.find((x: { id: string }) => x.id === command.commitmentId);
      expect(c, `${command.key}: commitment missing`).toBeDefined();
      if (command.kind === 'implement') expect(c).toMatchObject({ status: 'implemented', progress: 100 });
      if (command.kind === 'cancel') expect(c.status).toBe('cancelled');
      if (command.kind === 'delay') expect(c).toMatchObject({ status: 'delayed', dueDate: LATER, originalDueDate: DUE });
      if (command.kind === 'add') expect(c).toMatchObject({ status: 'pending', description: command.key });
    }
  });

  it('shows exactly the state the log implies, each command applied at most once and all or nothing', () => {
    const all = [...answered.map((a) => a.command), ...burst.filter((o) => !o.reply).map((o) => o.command)];
    for (const c of all) expect(timesApplied(c, histories), c.key).toBeLessThanOrEqual(1);
    for (const { command } of answered) expect(timesApplied(command, histories), command.key).toBe(1);

    const burstOf = (key: string) => burst.find((o) => o.command.key === key)!.command;
    ids.forEach((id, i) => {
      const detail = afterCrash.details[id]!.body as any;
      const c = (cid: string) => detail.commitments.find((x: { id: string }) => x.id === cid);
      const p1 = landed(burstOf(`${id}-cm1-progress-burst`));
      const p2 = landed(burstOf(`${id}-cm2-progress-burst`));
      const p5 = landed(burstOf(`${id}-cm5-progress-burst`));
      const added = landed(burstOf(`${id}-cm6-add`));
      expect(c('cm1')).toMatchObject({ status: 'in_progress', progress: p1 ? 50 + i : 40 });
      expect(c('cm2')).toMatchObject({ status: 'delayed', dueDate: LATER, progress: p2 ? 30 + i : 0 });
      expect(c('cm2').delays).toHaveLength(1);
      expect(c('cm3')).toMatchObject({ status: 'implemented', progress: 100 });
      expect(c('cm4')).toMatchObject({ status: 'cancelled' });
      expect(c('cm5')).toMatchObject(p5 ? { status: 'in_progress', progress: 10 + i } : { status: 'pending', progress: 0 });
      expect(detail.commitments.map((x: { id: string }) => x.id)).toEqual(['cm1', 'cm2', 'cm3', 'cm4', 'cm5', ...(added ? ['cm6'] : [])]);
      expect(detail.status).toBe('delayed');
      expect(detail.revision).toBe(9 + [p1, p2, p5, added].filter(Boolean).length);
    });
    // A burst agreement exists whole (signed with both commitments) or not at all.
    for (let i = 0; i < AGREEMENTS; i++) {
      const doc = afterCrash.details[`crash-b${i}`]?.body as any;
      const history = histories.get(`crash-b${i}`);
      if (!doc) {
        expect(history).toBeUndefined();
        continue;
      }
      expect(history!.map((e) => e.type)).toEqual(['AgreementSigned', 'CommitmentAdded', 'CommitmentAdded']);
      expect(doc).toMatchObject({ revision: 2, status: 'signed', commitmentCounts: { total: 2, pending: 2 } });
    }
    expect(afterCrash.list.total).toBe(AGREEMENTS + [...Array(AGREEMENTS).keys()].filter((i) => histories.has(`crash-b${i}`)).length);
  });

  it('keeps every stream gap-free and hash-chained, and the global log without a hole', async () => {
    const checked = await checkLog(api);
    expect(new Set(checked.keys())).toEqual(new Set(histories.keys()));
  });

  it('answers after a second restart exactly what it answered after the crash', async () => {
    const stopped = await service.stop();
    expect(stopped.code).toBe(0);
    service = await startService({ dataDir });
    api = client(service.url);
    expect(await snapshot(api)).toEqual(afterCrash);
  }, 30_000);

  it('applies each unanswered command exactly once when retried with its Idempotency-Key, and replays answered ones', async () => {
    let last = '0';
    const note = (p: string) => (BigInt(p) > BigInt(last) ? (last = p) : last);
    for (const o of burst) {
      const reply = await send(api, o.command);
      expect(reply.status, `${o.command.key}: ${JSON.stringify(reply.body)}`).toBeLessThan(300);
      note(reply.body.position);
      if (o.reply) {
        // The remembered answer survived the crash: the same status and body, marked as a replay.
        expect(reply.status).toBe(o.reply.status);
        expect(reply.body).toEqual(o.reply.body);
        expect(reply.headers.get('idempotent-replayed')).toBe('true');
      }
    }
    const after = new Map<string, HistoryEvent[]>();
    for (const id of new Set(burst.map((o) => o.command.agreementId))) after.set(id, await readHistory(api, id));
    for (const o of [...burst, ...answered]) expect(timesApplied(o.command, after), o.command.key).toBe(1);
    await checkLog(api);
    const live = await snapshot(api, last);
    for (let i = 0; i < AGREEMENTS; i++) {
      expect((live.details[`crash-a${i}`]!.body as any).commitments.map((c: { progress: number }) => c.progress)).toEqual([50 + i, 30 + i, 100, 0, 10 + i, 0]);
    }

    // What the live projection answers now, a rebuild from the log answers too.
    const stopped = await service.stop();
    expect(stopped.code).toBe(0);
    service = await startService({ dataDir });
    api = client(service.url);
    expect(await snapshot(api)).toEqual(live);
  }, 40_000);
});

describe('SIGKILL while commands without an Idempotency-Key are in flight', () => {
  // Without a key nothing can be replayed: what was answered 2xx must be in the log exactly once,
  // what was not answered at most once, and a stream's queued commands (decided together, written
  // in one append) land all or nothing with the others of their write group.
  const AGREEMENTS = 6;
  const ids = Array.from({ length: AGREEMENTS }, (_, i) => `bare-a${i}`);
  const answered: { command: Command; reply: Reply }[] = [];
  let burst: Outcome[] = [];
  let service: ServiceProcess;
  let api: Client;
  let histories: Map<string, HistoryEvent[]>;

  afterAll(killAllServices);

  beforeAll(async () => {
    service = await startService();
    dirs.push(service.dataDir);
    api = client(service.url);
    for (const [i, id] of ids.entries()) {
      const reply = await sendBare(api, create(id, ['cm1', 'cm2', 'cm3'], i));
      expect(reply.status, JSON.stringify(reply.body)).toBe(201);
    }
    // Many reports queued on each stream (one commitment takes twenty), new agreements and added
    // commitments, all at once; the process is killed when a quarter has been answered.
    const commands = ids.flatMap((id, i) => [
      ...Array.from({ length: 20 }, (_, n) => onCommitment('progress', id, 'cm1', `${id}-cm1-bare-${n}`, n + 1)),
      onCommitment('delay', id, 'cm2', `${id}-cm2-bare-delay`),
      addCommitment(id, 'cm4', `${id}-cm4-bare-add`),
      create(`bare-b${i}`, ['bm1', 'bm2'], i),
    ]);
    let replies = 0;
    burst = await Promise.all(
      commands.map((command) =>
        sendBare(api, command).then(
          (reply): Outcome => {
            if (++replies === Math.floor(commands.length / 4)) service.child.kill('SIGKILL');
            return { command, reply };
          },
          (error: unknown): Outcome => ({ command, reply: null, error }),
        ),
      ),
    );
    expect(await service.exited).toEqual({ code: null, signal: 'SIGKILL' });
    for (const o of burst) {
      if (!o.reply) continue;
      expect(o.reply.status, `${o.command.key}: ${JSON.stringify(o.reply.body)}`).toBeLessThan(300);
      answered.push({ command: o.command, reply: o.reply });
    }
    service = await startService({ dataDir: service.dataDir });
    api = client(service.url);
    histories = await checkLog(api);
  }, 60_000);

  it('left commands in flight when the process was killed', () => {
    expect(answered.length).toBeGreaterThanOrEqual(Math.floor(burst.length / 4));
    expect(burst.filter((o) => !o.reply).length).toBeGreaterThan(0);
  });

  it('keeps every command answered 2xx exactly once, at the revision and position it was told', () => {
    for (const { command, reply } of answered) {
      expect(timesApplied(command, histories), command.key).toBe(1);
      const history = histories.get(command.agreementId)!;
      const event = history[reply.body.revision as number];
      expect(event && isEventOf(command, event, history), `${command.key} at revision ${reply.body.revision}`).toBe(true);
      expect(event!.position).toBe(reply.body.position);
    }
    for (const o of burst) expect(timesApplied(o.command, histories), o.command.key).toBeLessThanOrEqual(1);
  });

  it('shows in the read models exactly what the log holds', async () => {
    for (const id of ids) {
      const history = histories.get(id)!;
      const detail = await api.get(`/v1/agreements/${id}`);
      expect(detail.body.revision).toBe(history.length - 1);
      const reports = history.filter((e) => e.type === 'ProgressReported' && e.data.commitmentId === 'cm1');
      const cm1 = detail.body.commitments.find((c: { id: string }) => c.id === 'cm1');
      expect(cm1.progress).toBe(reports.at(-1)?.data.percent ?? 0);
      const added = history.some((e) => e.type === 'CommitmentAdded' && e.data.commitmentId === 'cm4');
      expect(detail.body.commitments.some((c: { id: string }) => c.id === 'cm4')).toBe(added);
    }
  });

  it('a client retrying an unanswered create without a key meets the agreement if it landed, and creates it if not', async () => {
    for (const o of burst.filter((x) => !x.reply && x.command.kind === 'create')) {
      const landed = histories.has(o.command.agreementId);
      const retry = await sendBare(api, o.command);
      expect(retry.status, `${o.command.key}: ${JSON.stringify(retry.body)}`).toBe(landed ? 409 : 201);
      const history = await readHistory(api, o.command.agreementId);
      expect(history.filter((e) => e.type === 'AgreementSigned')).toHaveLength(1);
    }
    await checkLog(api);
  });
});

describe('SIGTERM', () => {
  afterEach(killAllServices);

  it('on an idle service: exits 0 promptly, and the restart answers exactly what it answered before', async () => {
    let service = await startService();
    dirs.push(service.dataDir);
    let api = client(service.url);
    const ids = ['term-a0', 'term-a1', 'term-a2', 'term-a3'];
    await Promise.all(ids.map(async (id, i) => expect((await send(api, create(id, ['cm1', 'cm2'], i))).status).toBe(201)));
    const moves = await Promise.all(
      ids.flatMap((id, i) => [
        send(api, onCommitment('progress', id, 'cm1', `${id}-p`, 20 + i)),
        send(api, onCommitment(i % 2 ? 'implement' : 'delay', id, 'cm2', `${id}-c2`)),
      ]),
    );
    for (const m of moves) expect(m.status).toBe(200);
    const last = moves.map((m) => BigInt(m.body.position)).reduce((a, b) => (a > b ? a : b)).toString();
    const before = await snapshot(api, last);

    const stopped = await service.stop();
    expect(stopped).toMatchObject({ code: 0, signal: null });
    expect(stopped.ms, 'exit after SIGTERM (ms)').toBeLessThan(5_000);

    service = await startService({ dataDir: service.dataDir });
    api = client(service.url);
    expect(await snapshot(api)).toEqual(before);
    await checkLog(api);
  }, 40_000);

  it('during a burst: in-flight commands finish, each 2xx is durable, and a refused one appended nothing', async () => {
    let service = await startService();
    dirs.push(service.dataDir);
    let api = client(service.url);
    const ids = ['term-b0', 'term-b1', 'term-b2', 'term-b3', 'term-b4'];
    for (const [i, id] of ids.entries()) expect((await send(api, create(id, ['cm1', 'cm2', 'cm3', 'cm4'], i))).status).toBe(201);

    const commands = ids.flatMap((id, i) => ['cm1', 'cm2', 'cm3', 'cm4'].map((cid, n) => onCommitment('progress', id, cid, `${id}-${cid}-burst`, 10 * n + i + 1)));
    let replies = 0;
    let stopping: Promise<{ code: number | null; signal: string | null; ms: number }> | null = null;
    const outcomes = await Promise.all(
      commands.map((command) =>
        send(api, command).then(
          (reply): Outcome => {
            if (++replies === 5) stopping = service.stop();
            return { command, reply };
          },
          (error: unknown): Outcome => ({ command, reply: null, error }),
        ),
      ),
    );
    stopping ??= service.stop();
    const stopped = await stopping;
    expect(stopped).toMatchObject({ code: 0, signal: null });
    expect(stopped.ms, 'exit after SIGTERM (ms)').toBeLessThan(5_000);

    service = await startService({ dataDir: service.dataDir });
    api = client(service.url);
    const histories = await checkLog(api);
    for (const o of outcomes) {
      // No answer (the connection was reset while closing): either applied once or not at all.
      if (!o.reply) {
        expect(timesApplied(o.command, histories), o.command.key).toBeLessThanOrEqual(1);
        continue;
      }
      if (o.reply.status < 300) {
        expect(timesApplied(o.command, histories), o.command.key).toBe(1);
        const history = histories.get(o.command.agreementId)!;
        expect(history[o.reply.body.revision]!.position).toBe(o.reply.body.position);
      } else {
        // Refused while closing: allowed, but then it must have appended nothing.
        expect(o.reply.status, `${o.command.key}: ${JSON.stringify(o.reply.body)}`).toBe(503);
        expect(timesApplied(o.command, histories), o.command.key).toBe(0);
      }
    }
    expect(outcomes.filter((o) => o.reply && o.reply.status < 300).length).toBeGreaterThanOrEqual(5);
  }, 40_000);
});

describe('a crash after the append but before the Idempotency-Key answer was remembered', () => {
  // Simulated exactly: the events are in the log, the remembered answer is not (SIGKILL between
  // the two writes leaves this). A client that got no answer retries with the same key and body.
  let service: ServiceProcess;
  let api: Client;
  const first = {} as { agreement: Reply; commitment: Reply; progress: Reply };
  const agreementBody = { title: 'Air connectivity memorandum', kind: 'memorandum', sector: 'aviation', parties: ['VEN', 'RUS'], signedAt: '2025-11-28' };
  const commitmentBody = { title: 'Open a direct Caracas-Moscow route', dueDate: DUE, responsible: { party: 'RUS', institution: 'Federal Air Transport Agency' } };

  beforeAll(async () => {
    service = await startService();
    dirs.push(service.dataDir);
    api = client(service.url);
    first.agreement = await api.post('/v1/agreements', agreementBody, { 'idempotency-key': 'lost-create' });
    expect(first.agreement.status).toBe(201);
    const id = first.agreement.body.id as string;
    first.commitment = await api.post(`/v1/agreements/${id}/commitments`, commitmentBody, { 'idempotency-key': 'lost-add' });
    expect(first.commitment.status).toBe(201);
    first.progress = await api.post(`/v1/agreements/${id}/commitments/${first.commitment.body.id}/progress`, { percent: 30 }, { 'idempotency-key': 'lost-progress' });
    expect(first.progress.status).toBe(200);
    expect((await service.stop()).code).toBe(0);

    const db = new Database(join(service.dataDir, 'events.sqlite'));
    try {
      expect(db.prepare('DELETE FROM idempotency').run().changes).toBe(3);
    } finally {
      db.close();
    }
    service = await startService({ dataDir: service.dataDir });
    api = client(service.url);
  }, 40_000);

  afterAll(killAllServices);

  it('a progress report retried is answered from the log and appends nothing', async () => {
    const id = first.agreement.body.id as string;
    const retry = await api.post(`/v1/agreements/${id}/commitments/${first.commitment.body.id}/progress`, { percent: 30 }, { 'idempotency-key': 'lost-progress' });
    expect(retry.status).toBe(200);
    expect(retry.body).toMatchObject({ revision: first.progress.body.revision, position: first.progress.body.position, progress: 30 });
    expect(await readHistory(api, id)).toHaveLength(3);
  });

  it('an agreement created without an id, retried, is the same agreement, not a second one', async () => {
    const retry = await api.post('/v1/agreements', agreementBody, { 'idempotency-key': 'lost-create' });
    expect(retry.status).toBe(201);
    expect(retry.body).toMatchObject({ id: first.agreement.body.id, revision: first.agreement.body.revision, position: first.agreement.body.position });
    const list = await api.get(`/v1/agreements?limit=500&after=${retry.body.position}`);
    expect(list.body.items.map((a: { title: string }) => a.title)).toEqual([agreementBody.title]);
  });

  it('a commitment added without an id, retried, is the same commitment, not an error or a second one', async () => {
    const id = first.agreement.body.id as string;
    const retry = await api.post(`/v1/agreements/${id}/commitments`, commitmentBody, { 'idempotency-key': 'lost-add' });
    expect(retry.status, JSON.stringify(retry.body)).toBe(201);
    expect(retry.body).toMatchObject({ id: first.commitment.body.id, revision: first.commitment.body.revision, position: first.commitment.body.position });
    const detail = await api.get(`/v1/agreements/${id}`);
    expect(detail.body.commitments).toHaveLength(1);
  });
});
