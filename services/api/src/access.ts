// Who is calling and what they may reach, before any body is read: the 413 on a declared
// Content-Length, then the API key (Bearer), the rate limit per key, and the route's access.
// What an editor may change inside an agreement is decided with the state (see scoped()).
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import {
  ANONYMOUS, agreementDecider, agreementStream, allows, checkAgreementCommand, checkReviewScope, reviewStream, rolesWith,
  type Access, type AgreementCommand, type AgreementEvent, type AgreementState, type Decider, type Principal,
} from '@cm/domain';
import type { EventStore } from '@cm/event-store';
import type { KeyRing } from '@cm/platform';
import { refuseBodyTooLarge } from './http-edges.js';
import { problem, sendProblem, HttpProblem } from './problem.js';

export type AccessOptions = {
  /** null: AUTH=off, every caller is `anonymous` with every right (loopback only). */
  keyRing: KeyRing | null;
  rateLimit: { max: number; windowMs: number; redis?: Redis | undefined; namespace?: string | undefined } | null;
  bodyLimit: number;
};

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    access?: Access;
  }
}

const AUDIT_SUFFIXES = ['/history', '/integrity', '/explain', '/export'];

/**
 * The access a route needs, from one table: probes, documentation and the dashboard's page are public, the audit
 * trail is for auditors, other reads for every key, and every POST is a command.
 */
export function accessOf(method: string, url: string): Access | null {
  if (method === 'OPTIONS') return 'public';
  // The dashboard page and its assets: the page asks for a key and sends it with each API call.
  if (method === 'GET' || method === 'HEAD') {
    if (url === '/' || url.startsWith('/assets/')) return 'public';
  }
  if (url === '/health' || url === '/ready' || url === '/openapi.json' || url === '/docs' || url.startsWith('/docs/')) return 'public';
  // The checkpoints' verifier key is a public key: whoever holds a checkpoint may check it.
  if (url === '/v1/log/key') return 'public';
  // Witnesses hold auditor keys: they read the log and hand back their cosignatures.
  if (method === 'POST' && url === '/v1/log/cosignatures') return 'audit';
  if (method === 'GET' || method === 'HEAD') return AUDIT_SUFFIXES.some((s) => url.endsWith(s)) || url.startsWith('/v1/log/') ? 'audit' : 'read';
  if (method === 'POST') return 'command';
  // Anything else would need a decision: nobody but an admin until it has one.
  return null;
}

// The scheme is case-insensitive (RFC 9110 section 11.1); the secret is not.
const BEARER = /^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9._~+/=-]{8,512})$/;

function windowText(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}

const accessControl = async (app: FastifyInstance, options: AccessOptions) => {
  app.decorateRequest('principal', null);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const access = route.config?.access ?? accessOf(methods[0]!, route.url);
    route.config = { ...(route.config ?? {}), ...(access ? { access } : {}) };
  });

  // A declared body over the limit is refused before anything else, its bytes drained unparsed.
  app.addHook('onRequest', async (request, reply) => {
    const declared = Number(request.headers['content-length']);
    // A route may take larger bodies than the service's limit (a spreadsheet import): its own limit counts.
    const limit = request.routeOptions.bodyLimit ?? options.bodyLimit;
    if (Number.isFinite(declared) && declared > limit) return refuseBodyTooLarge(request, reply, limit);
    request.principal = identify(request, options.keyRing);
    // Every later line of this request (including "request completed") names the caller's key.
    if (request.principal && options.keyRing) request.log = request.log.child({ key: request.principal.name });
  });

  if (options.rateLimit) {
    const { max, windowMs } = options.rateLimit;
    await app.register(rateLimit, {
      max,
      timeWindow: windowMs,
      hook: 'onRequest',
      ...(options.rateLimit.redis ? { redis: options.rateLimit.redis, nameSpace: `${options.rateLimit.namespace ?? 'cm'}:rate:` } : {}),
      // If Redis fails, serve rather than refuse everybody; the read models will say if it is down.
      skipOnError: true,
      keyGenerator: (request) => (request.principal ? `key:${request.principal.name}` : `ip:${request.ip}`),
      allowList: (request) => request.routeOptions.config.access === 'public',
      errorResponseBuilder: (request, ctx) =>
        new HttpProblem(429, 'rate_limited', `more than ${ctx.max} requests in ${windowText(windowMs)} from ${request.principal ? `key ${request.principal.name}` : 'this address'}; retry after ${ctx.after}`),
    });
  }

  // After the rate limit, before the body is parsed: does the route's access admit the caller?
  app.addHook('preParsing', async (request, reply) => {
    const access = request.routeOptions.config.access;
    if (access === 'public' || request.routeOptions.url === undefined) return;
    const principal = request.principal;
    if (!principal) {
      const presented = request.headers.authorization !== undefined;
      return sendProblem(
        reply,
        problem(401, presented ? 'invalid_credentials' : 'credentials_required', presented
          ? 'the API key is not valid: send Authorization: Bearer <secret> with a key from API_KEYS_FILE'
          : 'send Authorization: Bearer <secret> with an API key'),
        { 'www-authenticate': `Bearer realm="commitment-monitor"${presented ? ', error="invalid_token"' : ''}` },
      );
    }
    if (!access || !allows(principal, access)) {
      const needed = access ? rolesWith(access).join(' or ') : 'admin';
      return sendProblem(reply, problem(403, 'role_not_allowed', `key ${principal.name} has role ${principal.role}; ${request.method} ${request.routeOptions.url} needs ${needed}`));
    }
  });
};

function identify(request: FastifyRequest, keyRing: KeyRing | null): Principal | null {
  if (!keyRing) return ANONYMOUS;
  const header = request.headers.authorization;
  if (typeof header !== 'string') return null;
  const m = BEARER.exec(header.trim());
  return m ? keyRing.lookup(m[1]!) : null;
}

export const accessPlugin = fp(accessControl, { name: 'access-control' });

/** The caller, for code that runs after the access hooks (which refuse a request without one). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new HttpProblem(401, 'credentials_required', 'send Authorization: Bearer <secret> with an API key');
  return request.principal;
}

/** The agreement decider with the caller's limits applied to the state each command meets. */
export function agreementDeciderFor(principal: Principal): Decider<AgreementState, AgreementCommand, AgreementEvent> {
  if (principal.role !== 'editor') return agreementDecider;
  return {
    ...agreementDecider,
    decide(command, state, time) {
      checkAgreementCommand(principal, command, state);
      return agreementDecider.decide(command, state, time);
    },
  };
}

/** The parties a caller speaks for in a joint act: an editor its key's, anyone else (admin) all of them. */
export const actingPartiesOf = (principal: Principal): readonly string[] | null => (principal.role === 'editor' ? principal.parties : null);

/** The parties of a review: those of the agreements in its scope (fixed by its first event). */
export async function reviewPartiesOf(eventStore: EventStore, reviewId: string): Promise<string[]> {
  const [first] = await eventStore.readStream(reviewStream(reviewId), { fromRevision: 0, limit: 1 });
  if (!first) return [];
  const parties = await partiesOf(eventStore, (first.data as { agreementIds: string[] }).agreementIds);
  return [...new Set(parties.flatMap((p) => p ?? []))].sort();
}

/** The parties of each agreement, read from its first event (parties never change); null for one that does not exist. */
export async function partiesOf(eventStore: EventStore, agreementIds: readonly string[]): Promise<(string[] | null)[]> {
  return Promise.all(agreementIds.map(async (id) => {
    const [first] = await eventStore.readStream(agreementStream(id), { fromRevision: 0, limit: 1 });
    return first ? (first.data as { parties: string[] }).parties : null;
  }));
}

/**
 * Refuses an editor a command on an existing review that covers an agreement of other parties.
 * A review's scope is fixed by its first event, so reading that event is enough.
 */
export async function checkReviewAccess(eventStore: EventStore, principal: Principal, reviewId: string): Promise<void> {
  if (principal.role !== 'editor') return;
  const [first] = await eventStore.readStream(reviewStream(reviewId), { fromRevision: 0, limit: 1 });
  if (!first) return; // the command answers 404
  const ids = (first.data as { agreementIds: string[] }).agreementIds;
  const parties = await partiesOf(eventStore, ids);
  checkReviewScope(principal, ids.map((id, i) => ({ id, parties: parties[i] ?? [] })));
}
