// Request plumbing shared by the resource plugins: command context (actor, times, If-Match),
// Idempotency-Key replay, and read-your-writes waiting on `?after=`.
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import canonicalizeModule from 'canonicalize';
import { normalizeInstant } from '@cm/domain';
import type { AgreementState, ExistingAgreement } from '@cm/domain';
import { POSITION_PATTERN, idempotencyOwner, type CommandContext, type CommandResult, type IdempotencyStore } from '@cm/event-store';
import { agreementDetail, waitForCheckpoint, type ReadStore } from '@cm/read-models';
import { AppError } from '@cm/domain';
import { principalOf } from './access.js';
import type { AppDeps } from './deps.js';
import { HttpProblem } from './problem.js';

// canonicalize is CommonJS whose typings declare an ES default export; Node's ESM loader hands
// over module.exports, the function itself.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/** How far in the future a caller's occurredAt may be before it is refused (clock skew). */
const OCCURRED_AT_SKEW_MS = 5 * 60_000;

export type Answer = { status: number; body: unknown; headers?: Record<string, string> };

export function parseIfMatch(header: string | string[] | undefined): number | null {
  if (header === undefined) return null;
  const value = Array.isArray(header) ? header[0]! : header;
  const m = /^\s*(?:W\/)?"(\d{1,15})"\s*$/.exec(value);
  if (!m) throw new HttpProblem(400, 'invalid_if_match', 'If-Match must be a revision in quotes, as sent in ETag', [{ path: 'If-Match', message: 'must look like "3"' }]);
  return Number(m[1]);
}

/** Refuses an instant of the world (occurredAt, heldAt) later than now plus the clock skew, naming its field. */
export function checkNotInFuture(instant: string, now: Date, field: string): string {
  const when = normalizeInstant(instant);
  if (Date.parse(when) > now.getTime() + OCCURRED_AT_SKEW_MS) {
    throw new HttpProblem(400, 'invalid_input', `${field} is in the future`, [{ path: field, message: 'must not be in the future' }]);
  }
  return when;
}

export function commandContext(request: FastifyRequest, now: Date, occurredAt: string | undefined): CommandContext {
  const when = occurredAt === undefined ? now.toISOString() : checkNotInFuture(occurredAt, now, 'occurredAt');
  const key = idempotencyKey(request);
  return {
    actor: actorOf(request),
    occurredAt: when,
    now: now.toISOString(),
    correlationId: correlationIdOf(request),
    idempotencyScope: key ? `${actorOf(request)}|${key}|${requestHashOf(request)}` : null,
    ifMatch: parseIfMatch(request.headers['if-match']),
  };
}

/** The actor recorded on events: the name of the caller's API key (`anonymous` with AUTH=off). */
export function actorOf(request: FastifyRequest): string {
  return principalOf(request).name;
}

/** The form a caller's X-Request-Id or X-Correlation-Id must take to be used; otherwise one is generated. */
export const CALLER_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The correlation id recorded on a command's events. A caller's X-Correlation-Id is stored
 * under its key's name (`<key>:<id>`), so no caller can attach its events to a correlation of
 * another key; without one (or with one outside CALLER_ID_PATTERN) a UUID is generated, which
 * has no colon and so never equals a caller's.
 */
export function correlationIdOf(request: FastifyRequest): string {
  const h = request.headers['x-correlation-id'];
  if (typeof h === 'string' && CALLER_ID_PATTERN.test(h)) return `${actorOf(request)}:${h}`;
  return (request.correlationId ??= randomUUID());
}

/** The request id: the caller's X-Request-Id when it has the bounded form, else a fresh UUID. */
export function requestIdOf(headers: Record<string, string | string[] | undefined>): string {
  const h = headers['x-request-id'];
  return typeof h === 'string' && CALLER_ID_PATTERN.test(h) ? h : randomUUID();
}

function idempotencyKey(request: FastifyRequest): string | null {
  const h = request.headers['idempotency-key'];
  if (h === undefined) return null;
  const key = Array.isArray(h) ? h[0]! : h;
  if (key.length < 1 || key.length > 200) {
    throw new HttpProblem(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1 to 200 characters', [{ path: 'Idempotency-Key', message: 'must be 1-200 characters' }]);
  }
  return key;
}

/** What the service waits for a same-key request in flight elsewhere before answering 409. */
const IN_FLIGHT_WAIT_MS = 5000;
const IN_FLIGHT_POLL_MS = 25;

/**
 * The request as far as Idempotency-Key is concerned: method, route and body (canonical JSON, so
 * key order does not matter). The caller is not hashed: it scopes the key itself (two callers'
 * keys never meet), and answers remembered before claims existed keep matching their repeats.
 * Event ids and generated resource ids derive from caller, key and this hash, so a re-run of the
 * same request names the same events and the log recognises them as a repeat.
 */
export function requestHashOf(request: FastifyRequest): string {
  return (request.idempotencyHash ??= createHash('sha256')
    .update(`${request.method} ${request.url.split('?')[0]}\n${canonicalize(request.body ?? null) ?? ''}`)
    .digest('hex'));
}

// Per store (so two apps in one process never share it): the same key in flight in this process
// waits for the request ahead of it instead of asking the store again and again.
const guards = new WeakMap<IdempotencyStore, Map<string, Promise<unknown>>>();
function guardOf(store: IdempotencyStore): Map<string, Promise<unknown>> {
  let g = guards.get(store);
  if (!g) guards.set(store, (g = new Map()));
  return g;
}

/** A refusal appended nothing, so the key may serve a corrected request; anything else may have written. */
function appendedNothing(err: unknown): boolean {
  return err instanceof AppError || (err instanceof HttpProblem && err.status < 500);
}

const reusedKey = () =>
  new HttpProblem(422, 'idempotency_key_reused', 'this Idempotency-Key was used with another request; use a new key for a new request', [{ path: 'Idempotency-Key', message: 'already used with a different request' }]);

/**
 * Answers a command, honouring Idempotency-Key. Before anything is appended the request claims
 * its key with its hash: another request under the key is refused (422) whether the first is
 * answered or still running; the same request waits for the first and gets its answer. A claim
 * left by a process that died (its lease ran out) is taken over by the same request, which runs
 * again with the same event ids: the log sees a repeat, appends nothing, and the first result is
 * answered. The first successful answer is remembered; refusals free the key.
 */
export async function answerCommand(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: Pick<AppDeps, 'idempotency' | 'now' | 'logger'> & { idempotencyTiming?: AppDeps['idempotencyTiming'] },
  run: () => Promise<Answer>,
): Promise<FastifyReply> {
  const key = idempotencyKey(request);
  const send = (a: Answer) => reply.code(a.status).headers(a.headers ?? {}).send(a.body);
  if (!key) return send(await run());

  const store = deps.idempotency;
  const scope = actorOf(request);
  const requestHash = requestHashOf(request);
  const lockKey = `${scope}|${key}`;
  const guard = guardOf(store);
  while (guard.has(lockKey)) await guard.get(lockKey)!.catch(() => undefined);
  const work = claimAndRun();
  guard.set(lockKey, work);
  try {
    return await work;
  } finally {
    if (guard.get(lockKey) === work) guard.delete(lockKey);
  }

  async function claimAndRun(): Promise<FastifyReply> {
    const owner = idempotencyOwner();
    const waitMs = deps.idempotencyTiming?.waitMs ?? IN_FLIGHT_WAIT_MS;
    const leaseMs = deps.idempotencyTiming?.leaseMs;
    const waitUntil = Date.now() + waitMs;
    for (;;) {
      const claim = await store.claim({ scope, key: key!, requestHash, owner, now: deps.now().toISOString(), ...(leaseMs ? { leaseMs } : {}) });
      if (claim.state === 'claimed') break;
      if (claim.state === 'mismatch') throw reusedKey();
      if (claim.state === 'done') {
        const previous = claim.record;
        return reply.code(previous.statusCode).headers({ ...previous.headers, 'idempotent-replayed': 'true' }).send(previous.body);
      }
      // The same request is running in another process: wait for its answer, within reason.
      if (Date.now() >= waitUntil) {
        throw new HttpProblem(409, 'idempotency_key_in_flight', 'a request with this Idempotency-Key is still being processed; retry shortly', [{ path: 'Idempotency-Key', message: 'a request with this key is in flight' }], { 'retry-after': '1' });
      }
      await new Promise((r) => setTimeout(r, IN_FLIGHT_POLL_MS));
    }

    let answer: Answer;
    try {
      answer = await run();
    } catch (err) {
      await store.release(scope, key!, owner, { forget: appendedNothing(err) })
        .catch((releaseErr: unknown) => deps.logger.error({ err: releaseErr, key }, 'releasing an idempotency claim failed; its lease frees it'));
      throw err;
    }
    // Refusals appended nothing, so only successful answers need remembering.
    if (answer.status >= 300) {
      await store.release(scope, key!, owner, { forget: true });
      return send(answer);
    }
    try {
      const kept = await store.complete({ scope, key: key!, requestHash, statusCode: answer.status, body: answer.body, headers: answer.headers ?? {}, createdAt: deps.now().toISOString() }, owner);
      if (!kept) deps.logger.warn({ key }, 'idempotency claim was taken over before its answer was stored; the answer stands, a repeat re-reads it from the log');
    } catch (err) {
      // What was appended stands and is answered; a repeat re-runs and finds its events in the log.
      deps.logger.error({ err, key }, 'storing an idempotency answer failed');
    }
    return send(answer);
  }
}

/** Read-your-writes: wait until the read models include `after`, or answer 503 after `timeoutMs`. */
export async function awaitPosition(readStore: ReadStore, after: string | undefined, timeoutMs: number): Promise<void> {
  if (after === undefined) return;
  if (!POSITION_PATTERN.test(after)) {
    throw new HttpProblem(400, 'invalid_input', 'after must be a position returned by a command', [{ path: 'after', message: 'must be a position such as "42"' }]);
  }
  const ok = await waitForCheckpoint(readStore, after, timeoutMs);
  if (!ok) {
    throw new HttpProblem(503, 'not_yet_visible', `the read models have not reached position ${after} yet; retry shortly`, undefined, { 'retry-after': '1' });
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    correlationId?: string;
    idempotencyHash?: string;
  }
}

/** The ETag of a single resource: its stream revision. */
export const etagOf = (revision: number) => `"${revision}"`;

/**
 * An agreement as it stands after a command: folded state from the command, plus what only the
 * read models know (its reviews), in one read.
 */
export async function agreementAnswer(readStore: ReadStore, result: CommandResult<AgreementState>, id: string, now: string) {
  const doc = (await readStore.getAgreements([id])).get(id);
  return {
    ...agreementDetail(
      {
        agreement: result.state as ExistingAgreement,
        revision: result.revision,
        updatedAt: result.appended.at(-1)?.metadata.recordedAt ?? doc?.updatedAt ?? now,
        reviews: doc?.reviews ?? [],
      },
      now,
    ),
    position: result.position,
  };
}
