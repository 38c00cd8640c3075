// Loads examples/cian-xix.json into a running service through its HTTP API, as a ministry tool
// would: `pnpm load-examples [base URL]` (or BASE_URL; else the service's own PUBLIC_URL, or
// HOST and PORT as the service reads them). With authentication on, CM_API_KEY holds
// the secret of an admin key (or an editor for every party of the dataset), sent as a Bearer token.
// Safe to run again: existing agreements are skipped and every command has an Idempotency-Key.
import { readFile } from 'node:fs/promises';

type Action = 'progress' | 'implementation' | 'delay' | 'cancellation';

type AgreementInput = { id: string } & Record<string, unknown>;

type ExampleEvent = {
  agreementId: string;
  commitmentId: string;
  action: Action;
  body: Record<string, unknown>;
  occurredAt: string;
};

type Dataset = { agreements: AgreementInput[]; events: ExampleEvent[] };

type Problem = { detail?: unknown; errors?: unknown };

type Reply = { status: number; body: unknown };

const SIGNED_AT = '2025-11-28T15:00:00Z';
const ACTIONS: ReadonlySet<string> = new Set<Action>(['progress', 'implementation', 'delay', 'cancellation']);
const MAX_ATTEMPTS = 5;

class Fatal extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseDataset(raw: unknown): Dataset {
  if (!isObject(raw) || !Array.isArray(raw.agreements) || !Array.isArray(raw.events)) {
    throw new Fatal('the dataset must be an object with "agreements" and "events" arrays');
  }
  const agreements = raw.agreements.map((a: unknown, i): AgreementInput => {
    if (!isObject(a) || typeof a.id !== 'string') throw new Fatal(`agreements[${i}] has no string id`);
    return { ...a, id: a.id };
  });
  const events = raw.events.map((e: unknown, i): ExampleEvent => {
    if (
      !isObject(e) ||
      typeof e.agreementId !== 'string' ||
      typeof e.commitmentId !== 'string' ||
      typeof e.action !== 'string' ||
      !ACTIONS.has(e.action) ||
      !isObject(e.body) ||
      typeof e.occurredAt !== 'string'
    ) {
      throw new Fatal(`events[${i}] is not {agreementId, commitmentId, action, body, occurredAt}`);
    }
    return {
      agreementId: e.agreementId,
      commitmentId: e.commitmentId,
      action: e.action as Action,
      body: e.body,
      occurredAt: e.occurredAt,
    };
  });
  return { agreements, events };
}

const env = (name: string) => process.env[name]?.trim() || undefined;

/** Where a service started with this environment listens (a wildcard HOST is reached on loopback). */
function serviceAddress(): string {
  const host = env('HOST') ?? '127.0.0.1';
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${env('PORT') ?? '3000'}`;
}

function normalizeBase(arg: string | undefined): string {
  // An empty variable counts as unset, as in the service's own configuration.
  const raw = arg || env('BASE_URL') || env('PUBLIC_URL') || serviceAddress();
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Fatal(`invalid base URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Fatal(`invalid base URL: ${raw}`);
  return url.href.replace(/\/+$/, '');
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function retryDelayMs(res: Response, attempt: number): number {
  const seconds = Number(res.headers.get('retry-after'));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 30) * 1000 : 500 * 2 ** attempt;
}

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function describeFailure(method: string, path: string, reply: Reply): string {
  const lines = [`${method} ${path} -> ${reply.status}`];
  const problem: Problem = isObject(reply.body) ? reply.body : {};
  if (problem.detail !== undefined) lines.push(`  detail: ${String(problem.detail)}`);
  if (Array.isArray(problem.errors)) {
    for (const err of problem.errors) {
      lines.push(isObject(err) ? `  ${String(err.path ?? '')}: ${String(err.message ?? '')}` : `  ${JSON.stringify(err)}`);
    }
  }
  if (problem.detail === undefined && problem.errors === undefined && reply.body !== null) {
    lines.push(`  ${typeof reply.body === 'string' ? reply.body.slice(0, 500) : JSON.stringify(reply.body).slice(0, 500)}`);
  }
  // A viewer or auditor key, or an editor for one side only (the dataset has commitments of both).
  if (reply.status === 403) lines.push(`  the key in CM_API_KEY may not do this: use an admin key, or an editor key for every party of the dataset`);
  return lines.join('\n');
}

// The service refuses requests without an API key unless it runs with AUTH=off on loopback.
const AUTH_HINT = 'set CM_API_KEY to an editor or admin key';

function createClient(base: string, apiKey: string | undefined) {
  async function send(method: 'GET' | 'POST', path: string, body?: unknown, idempotencyKey?: string): Promise<Reply> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      } catch {
        throw new Fatal(`cannot reach ${base}: start the service first with \`pnpm start\``);
      }
      if (res.status === 401) {
        await res.body?.cancel();
        throw new Fatal(`${method} ${base}${path} -> 401: ${apiKey ? 'the key in CM_API_KEY is not valid (revoked, or mistyped); ' : ''}${AUTH_HINT}`);
      }
      // Rate limiting and read-model lag are transient; the idempotency key makes a retry safe.
      if ((res.status === 429 || res.status === 503) && attempt + 1 < MAX_ATTEMPTS) {
        await res.body?.cancel();
        await sleep(retryDelayMs(res, attempt));
        continue;
      }
      return { status: res.status, body: await readBody(res) };
    }
  }
  return { send };
}

function revisionOf(body: unknown): number | undefined {
  return isObject(body) && typeof body.revision === 'number' ? body.revision : undefined;
}

type Send = ReturnType<typeof createClient>['send'];

function sessionNameOf(agreements: AgreementInput[]): string | undefined {
  const session = agreements[0]?.session;
  return isObject(session) && typeof session.name === 'string' ? session.name : undefined;
}

async function listExisting(send: Send, session: string | undefined, revisions: Map<string, number>): Promise<Set<string>> {
  const ids = new Set<string>();
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({ limit: '500' });
    if (session) query.set('session', session);
    if (cursor) query.set('cursor', cursor);
    const path = `/v1/agreements?${query.toString()}`;
    const reply = await send('GET', path);
    if (reply.status < 200 || reply.status > 299) throw new Fatal(describeFailure('GET', path, reply));
    const page = isObject(reply.body) ? reply.body : {};
    for (const item of Array.isArray(page.items) ? page.items : []) {
      if (!isObject(item) || typeof item.id !== 'string') continue;
      ids.add(item.id);
      const revision = revisionOf(item);
      if (revision !== undefined) revisions.set(item.id, revision);
    }
    cursor = typeof page.nextCursor === 'string' && page.nextCursor ? page.nextCursor : undefined;
  } while (cursor);
  return ids;
}

const interactive = process.stdout.isTTY === true;
let progressShown = false;

function showProgress(text: string): void {
  if (!interactive) return;
  process.stdout.write(`\r\x1b[2K${text}`);
  progressShown = true;
}

function say(text: string): void {
  if (progressShown) {
    process.stdout.write('\r\x1b[2K');
    progressShown = false;
  }
  console.log(text);
}

async function main(): Promise<void> {
  const started = performance.now();
  const base = normalizeBase(process.argv[2]);
  const file = new URL('./cian-xix.json', import.meta.url);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch (err) {
    throw new Fatal(`cannot read ${file.pathname}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const { agreements, events } = parseDataset(raw);
  // An empty variable counts as unset, as in the service's own configuration.
  const { send } = createClient(base, process.env.CM_API_KEY?.trim() || undefined);

  // The last stream revision known per agreement: a command answered with a revision that is not
  // beyond it was an idempotent replay of an earlier run, so nothing new was appended.
  const knownRevision = new Map<string, number>();
  // A repeated create with the same idempotency key answers 201 again, so only a listing tells
  // which agreements an earlier run already loaded.
  const preexisting = await listExisting(send, sessionNameOf(agreements), knownRevision);
  const tally = { created: 0, agreementsSkipped: 0, applied: 0, eventsSkipped: 0 };

  for (const [i, agreement] of agreements.entries()) {
    const path = '/v1/agreements';
    if (preexisting.has(agreement.id)) {
      tally.agreementsSkipped++;
      say(`skip: agreement ${agreement.id} already exists`);
      showProgress(`agreements ${i + 1}/${agreements.length}`);
      continue;
    }
    const reply = await send('POST', path, { ...agreement, occurredAt: SIGNED_AT }, `example-agreement-${agreement.id}`);
    if (reply.status === 409) {
      tally.agreementsSkipped++;
      preexisting.add(agreement.id);
      say(`skip: agreement ${agreement.id} already exists`);
      const current = await send('GET', `/v1/agreements/${encodeURIComponent(agreement.id)}`);
      if (current.status < 200 || current.status > 299) {
        throw new Fatal(describeFailure('GET', `/v1/agreements/${agreement.id}`, current));
      }
      const revision = revisionOf(current.body);
      if (revision !== undefined) knownRevision.set(agreement.id, revision);
    } else if (reply.status >= 200 && reply.status <= 299) {
      tally.created++;
      const revision = revisionOf(reply.body);
      if (revision !== undefined) knownRevision.set(agreement.id, revision);
    } else {
      throw new Fatal(describeFailure('POST', path, reply));
    }
    showProgress(`agreements ${i + 1}/${agreements.length}`);
  }
  say(`agreements: ${tally.created} created, ${tally.agreementsSkipped} skipped`);

  for (const [i, event] of events.entries()) {
    const path =
      `/v1/agreements/${encodeURIComponent(event.agreementId)}` +
      `/commitments/${encodeURIComponent(event.commitmentId)}/${event.action}`;
    // Keyed by content rather than position, so editing the dataset does not shift other keys.
    const key = `example-event-${event.agreementId}-${event.commitmentId}-${event.action}-${event.occurredAt}`.slice(0, 200);
    const reply = await send('POST', path, { ...event.body, occurredAt: event.occurredAt }, key);
    if (reply.status >= 200 && reply.status <= 299) {
      const revision = revisionOf(reply.body);
      const known = knownRevision.get(event.agreementId);
      if (revision !== undefined && known !== undefined && revision <= known) {
        tally.eventsSkipped++;
      } else {
        tally.applied++;
        if (revision !== undefined) knownRevision.set(event.agreementId, revision);
      }
    } else if (reply.status === 409 && preexisting.has(event.agreementId)) {
      // An agreement loaded earlier may already be past this step (for instance, implemented).
      tally.eventsSkipped++;
    } else {
      throw new Fatal(describeFailure('POST', path, reply));
    }
    showProgress(`events ${i + 1}/${events.length}`);
  }
  say(`events: ${tally.applied} applied, ${tally.eventsSkipped} skipped`);

  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  say(
    `done in ${seconds} s: agreements ${tally.created} created / ${tally.agreementsSkipped} skipped, ` +
      `events ${tally.applied} applied / ${tally.eventsSkipped} skipped (${base})`,
  );
}

main().catch((err: unknown) => {
  if (progressShown) process.stdout.write('\n');
  console.error(err instanceof Fatal ? err.message : err);
  process.exit(1);
});
