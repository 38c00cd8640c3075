// The one place errors become HTTP answers: RFC 9457 problem+json, never a stack or an
// internal message on a 5xx.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, type FieldError } from '@cm/domain';
import { StreamBusyError, WriterUnavailableError } from '@cm/event-store';

export type Problem = {
  type: string; title: string; status: number; detail: string; code: string; errors?: FieldError[];
  /** For a retryable refusal: whether and how repeating the request is safe. */
  retry?: string;
};

const TITLES: Record<number, string> = {
  400: 'Invalid input',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict',
  412: 'Precondition failed',
  413: 'Payload too large',
  415: 'Unsupported media type',
  422: 'Idempotency key reused',
  429: 'Too many requests',
  500: 'Internal error',
  503: 'Service unavailable',
};

/** Thrown by route code for HTTP-level refusals that are not domain errors. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
    readonly errors?: FieldError[],
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

/**
 * What an answer echoes of the input is bounded, so a large hostile body cannot make a larger
 * answer: at most MAX_ERRORS field errors (the detail says how many more), each path and
 * message cut to MAX_ECHO characters, the detail to MAX_DETAIL.
 */
export const MAX_ERRORS = 20;
export const MAX_ECHO = 100;
const MAX_DETAIL = 1000;
/** How much of a request path a 404 echoes. */
export const MAX_PATH_ECHO = 200;

/** `s` cut to `max` characters, marked with an ellipsis when cut. */
export function truncate(s: string, max = MAX_ECHO): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function problem(status: number, code: string, detail: string, errors?: FieldError[]): Problem {
  const listed = (errors ?? []).slice(0, MAX_ERRORS).map((e) => ({ path: truncate(e.path), message: truncate(e.message, 300) }));
  const more = (errors?.length ?? 0) - listed.length;
  return {
    type: `https://commitment-monitor.dev/problems/${code.replaceAll('_', '-')}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail: truncate(more > 0 ? `${detail} (and ${more} more errors not listed)` : detail, MAX_DETAIL),
    code,
    ...(listed.length ? { errors: listed } : {}),
  };
}

export function sendProblem(reply: FastifyReply, p: Problem, headers: Record<string, string> = {}): FastifyReply {
  return reply.code(p.status).headers(headers).type('application/problem+json').send(p);
}

function dotted(instancePath: string): string {
  return instancePath.replace(/^\//, '').split('/').filter(Boolean).join('.');
}

const STATUS_OF_KIND = { validation: 400, forbidden: 403, not_found: 404, conflict: 409, concurrency: 412 } as const;

function logUnavailableDetail(error: WriterUnavailableError): string {
  return error.outcomeUnknown
    ? 'the log writer stopped while this request was being written; it was written whole or not at all'
    : 'the log writer is restarting; nothing was written';
}

/** What a client may do next: for an answer lost in flight, only a retry under the same key is known to be safe. */
function retryHint(error: WriterUnavailableError): string {
  return error.outcomeUnknown
    ? 'retry with the same Idempotency-Key: if it was written, the retry answers what was written and writes nothing again; without a key, read the resource before repeating the request'
    : 'retry shortly: nothing was written';
}

export function installErrorHandling(
  app: FastifyInstance<any, any, any, any, any>, // eslint-disable-line @typescript-eslint/no-explicit-any -- any server/logger/type-provider flavour
  /** How a body found over the limit while read is refused (http-edges.ts drains it first). */
  bodyTooLarge: (request: FastifyRequest, reply: FastifyReply, limit: number) => Promise<FastifyReply> = async (_request, reply, limit) =>
    sendProblem(reply, problem(413, 'body_too_large', `the request body is larger than the limit of ${limit} bytes`)),
): void {
  app.setNotFoundHandler((request, reply) => {
    sendProblem(reply, problem(404, 'route_not_found', `no route ${request.method} ${truncate(request.url.split('?')[0]!, MAX_PATH_ECHO)}`));
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const where = error.validationContext ?? 'body';
      const errors = error.validation.map((v) => {
        const base = dotted(v.instancePath);
        const keys = (v.params as { keys?: string[] }).keys;
        // A union whose input matched one option's type (an object for a rule): that option's own errors, by field.
        const branches = (v.params as { errors?: { path: PropertyKey[]; message: string }[][] }).errors;
        const matched = v.keyword === 'invalid_union' && branches ? branches.filter((b) => b.length > 0 && b.every((i) => i.path.length > 0)) : [];
        if (matched.length === 1) {
          return matched[0]!.map((i) => ({ path: [base, ...i.path.map(String)].filter(Boolean).join('.'), message: i.message }));
        }
        if (v.keyword === 'unrecognized_keys' && keys?.length) {
          // An empty key ("": 1) is quoted, so the path still names something.
          return keys.map((k) => (k === '' ? '""' : k)).map((k) => ({ path: base ? `${base}.${k}` : k, message: 'is not a known field' }));
        }
        return [{ path: base || where, message: v.message ?? 'is invalid' }];
      }).flat();
      const named = errors.slice(0, MAX_ERRORS).map((e) => truncate(e.path)).join(', ');
      return sendProblem(reply, problem(400, 'invalid_input', `invalid ${where}: ${named}`, errors));
    }
    if (error instanceof AppError) {
      const status = STATUS_OF_KIND[error.kind];
      return sendProblem(reply, problem(status, error.code, error.message, error.errors));
    }
    if (error instanceof StreamBusyError) {
      return sendProblem(reply, problem(503, 'stream_busy', error.message), { 'retry-after': '1' });
    }
    if (error instanceof WriterUnavailableError) {
      return sendProblem(reply, { ...problem(503, 'log_unavailable', logUnavailableDetail(error)), retry: retryHint(error) }, { 'retry-after': '1' });
    }
    if (error instanceof HttpProblem) {
      return sendProblem(reply, problem(error.status, error.code, error.message, error.errors), error.headers);
    }
    switch (error.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return bodyTooLarge(request, reply, request.routeOptions.bodyLimit);
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return sendProblem(reply, problem(400, 'invalid_content_length', 'the body is not as long as its Content-Length says', [{ path: 'Content-Length', message: 'must be the length of the body in bytes' }]));
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendProblem(reply, problem(415, 'unsupported_media_type', 'send the body as application/json'));
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return sendProblem(reply, problem(400, 'invalid_input', 'the JSON body is empty', [{ path: 'body', message: 'must be a JSON object' }]));
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return sendProblem(reply, problem(400, 'invalid_json', 'the body is not valid JSON', [{ path: 'body', message: 'must be valid JSON' }]));
    }
    if (error instanceof SyntaxError || error.statusCode === 400) {
      // JSON.parse failures and prototype-poisoning refusals from the body parser.
      return sendProblem(reply, problem(400, 'invalid_json', 'the body is not valid JSON', [{ path: 'body', message: error.message.slice(0, 200) }]));
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return sendProblem(reply, problem(error.statusCode, 'bad_request', error.message.slice(0, 300)));
    }
    request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, problem(500, 'internal_error', `the request failed; quote request id ${request.id} when reporting it`));
  });
}
