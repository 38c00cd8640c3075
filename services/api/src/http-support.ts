// Request plumbing shared by the resource plugins: command context (actor, times, If-Match),
// Idempotency-Key replay, and read-your-writes waiting on `?after=`.
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import canonicalize from 'canonicalize';
import { normalizeInstant } from '@cm/domain';
import type { AgreementState, ExistingAgreement } from '@cm/domain';
import { POSITION_PATTERN, type CommandContext, type CommandResult, type IdempotencyStore } from '@cm/event-store';
import { agreementDetail, waitForCheckpoint, type ReadStore } from '@cm/read-models';
import { principalOf } from './access';
import { HttpProblem } from './problem';

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

export function commandContext(request: FastifyRequest, now: Date, occurredAt: string | undefined): CommandContext {
  let when = now.toISOString();
  if (occurredAt !== undefined) {
    when = normalizeInstant(occurredAt);
    if (Date.parse(when) > now.getTime() + OCCURRED_AT_SKEW_MS) {
      throw new HttpProblem(400, 'invalid_input', 'occurredAt is in the future', [{ path: 'occurredAt', message: 'must not be in the future' }]);
    }
  }
  const key = idempotencyKey(request);
  return {
    actor: actorOf(request),
    occurredAt: when,
    now: now.toISOString(),
    correlationId: correlationIdOf(request),
    idempotencyScope: key ? `${actorOf(request)}|${key}` : null,
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

const inFlight = new Map<string, Promise<unknown>>();

/**
 * Answers a command, honouring Idempotency-Key: the first successful answer is remembered
 * with a hash of the request; a repeat gets it back, another body under the same key gets 422.
 */
export async function answerCommand(
  request: FastifyRequest,
  reply: FastifyReply,
  store: IdempotencyStore,
  now: () => Date,
  run: () => Promise<Answer>,
): Promise<FastifyReply> {
  const key = idempotencyKey(request);
  const send = (a: Answer) => reply.code(a.status).headers(a.headers ?? {}).send(a.body);
  if (!key) return send(await run());

  const scope = actorOf(request);
  const requestHash = createHash('sha256')
    .update(`${request.method} ${request.url.split('?')[0]}\n${canonicalize(request.body ?? null) ?? ''}`)
    .digest('hex');
  const lockKey = `${scope}|${key}`;
  // Two identical requests racing in this process: the second waits for the first's answer.
  while (inFlight.has(lockKey)) await inFlight.get(lockKey)!.catch(() => undefined);

  const previous = await store.get(scope, key);
  if (previous) {
    if (previous.requestHash !== requestHash) {
      throw new HttpProblem(422, 'idempotency_key_reused', 'this Idempotency-Key was used with another request; use a new key for a new request', [{ path: 'Idempotency-Key', message: 'already used with a different request' }]);
    }
    return reply.code(previous.statusCode).headers({ ...previous.headers, 'idempotent-replayed': 'true' }).send(previous.body);
  }

  const work = (async () => {
    // Refusals appended nothing, so only successful answers need remembering.
    const answer = await run();
    if (answer.status >= 300) return answer;
    await store.put({ scope, key, requestHash, statusCode: answer.status, body: answer.body, headers: answer.headers ?? {}, createdAt: now().toISOString() });
    return answer;
  })();
  inFlight.set(lockKey, work);
  try {
    return send(await work);
  } finally {
    inFlight.delete(lockKey);
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
