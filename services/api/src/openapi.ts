// The OpenAPI document ministry tools generate their clients from: every operation names its
// operationId in its route schema and, under `problems`, the problem codes it can answer with
// beyond those every route of its kind shares (added here). Each refusal is documented as an
// application/problem+json response of the one `Problem` schema, its `code` an enum.
import type { FastifyDynamicSwaggerOptions, OpenAPIV3_2 } from '@fastify/swagger';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { accessOf } from './access.js';

/** The statuses a refusal is documented under, with what each means to a caller. */
const REFUSALS = {
  400: 'The request is not valid; `errors` names each field (or header, or query parameter) and why.',
  401: 'No valid API key: send `Authorization: Bearer <secret>`.',
  403: "The key's role or parties do not cover this request.",
  404: 'The resource does not exist.',
  409: 'A rule of the ledger refuses the command in the state the resource is in.',
  412: '`If-Match` names a revision the resource has moved past: read it again.',
  413: 'The body (or its declared Content-Length) is larger than the limit.',
  415: 'The body is not application/json.',
  422: 'This `Idempotency-Key` was used with another request.',
  429: 'Over the rate limit of the key; retry after `Retry-After` seconds.',
  503: 'Not answerable now; retry after `Retry-After` seconds.',
} as const;

export type RefusalStatus = keyof typeof REFUSALS;
/** Problem codes by status. */
export type ProblemCodes = Partial<Record<RefusalStatus, readonly string[]>>;

declare module 'fastify' {
  interface FastifySchema {
    /** Problem codes particular to this operation; those shared by its kind are added (see refusalsOf). */
    problems?: ProblemCodes;
  }
}

/** Every request: a declared body over the limit is refused unread, and a closing service refuses everything. */
const EVERY_ROUTE: ProblemCodes = { 413: ['body_too_large'], 503: ['shutting_down'] };
/** Routes behind an API key (all but the probes and the documentation). */
const KEYED: ProblemCodes = { 401: ['credentials_required', 'invalid_credentials'], 403: ['role_not_allowed'], 429: ['rate_limited'] };
/** Every POST: a JSON body through answerCommand and runCommand (If-Match, Idempotency-Key, stream retries). */
const COMMAND: ProblemCodes = {
  400: ['invalid_input', 'invalid_json', 'invalid_utf8', 'forbidden_key', 'invalid_content_length', 'invalid_if_match', 'invalid_idempotency_key'],
  403: ['outside_parties'],
  409: ['idempotency_key_in_flight'],
  412: ['stale_revision'],
  415: ['unsupported_media_type'],
  422: ['idempotency_key_reused'],
  503: ['stream_busy'],
};

/** What a read honouring `?after=` adds: the position is checked, then waited for. */
export const READ: ProblemCodes = { 400: ['invalid_input'], 503: ['not_yet_visible'] };

export function mergeProblems(...tables: ProblemCodes[]): ProblemCodes {
  const merged: Record<number, string[]> = {};
  for (const table of tables) {
    for (const [status, codes] of Object.entries(table)) {
      const list = (merged[Number(status)] ??= []);
      for (const code of codes ?? []) if (!list.includes(code)) list.push(code);
    }
  }
  return merged as ProblemCodes;
}

/** All the problem codes an operation can answer with: its own and those of its kind. */
export function refusalsOf(method: string, url: string, own: ProblemCodes = {}): ProblemCodes {
  const access = accessOf(method, url);
  return mergeProblems(EVERY_ROUTE, access === 'public' ? {} : KEYED, method === 'POST' ? COMMAND : {}, own);
}

const PROBLEM_REF = '#/components/schemas/Problem';

/** A JSON Schema of an OpenAPI 3.1 document (not a $ref). */
type SchemaObject = Exclude<NonNullable<NonNullable<OpenAPIV3_2.Document['components']>['schemas']>[string], { $ref: string }>;

/** The body of every refusal (problem.ts): RFC 9457 problem details with a stable `code`. */
export const problemSchema: SchemaObject = {
  type: 'object',
  description: 'RFC 9457 problem details. `code` is stable and meant for programs; `detail` is for people and may change.',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string', format: 'uri', description: 'https://commitment-monitor.dev/problems/ followed by `code` with hyphens' },
    title: { type: 'string', description: 'The standard phrase of the status, such as "Invalid input"' },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    detail: { type: 'string', description: 'What was refused and why, for a person' },
    code: { type: 'string', description: 'Why, for a program; each response lists the codes it can carry' },
    errors: {
      type: 'array',
      description: 'The fields at fault, when the refusal is about some (mostly 400)',
      items: {
        type: 'object',
        required: ['path', 'message'],
        properties: {
          path: { type: 'string', description: 'Dotted path of the field in the body (`commitments.0.dueDate`), or the header or query parameter' },
          message: { type: 'string' },
        },
      },
    },
    projections: {
      type: 'array',
      description: 'Only on GET /ready answering `projections_behind`: where each projection stands',
      items: { type: 'object' },
    },
  },
};

const retryAfter = { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' } } };

function refusalResponse(status: RefusalStatus, codes: readonly string[]) {
  return {
    description: `${REFUSALS[status]} Codes: ${codes.map((c) => `\`${c}\``).join(', ')}.`,
    ...(status === 429 || status === 503 ? { headers: retryAfter } : {}),
    content: {
      'application/problem+json': {
        schema: { allOf: [{ $ref: PROBLEM_REF }, { type: 'object', properties: { code: { type: 'string', enum: [...codes] } } }] },
      },
    },
  };
}

type Operation = { operationId?: string; responses?: Record<string, unknown> };
type Document = { paths?: Record<string, Record<string, Operation>> };

/**
 * The swagger options that turn the route schemas into the document: zod schemas to JSON Schema
 * (jsonSchemaTransform), each operation's problem codes collected on the way, then added to
 * its responses once the document is built.
 */
export function documentTransforms(): Required<Pick<FastifyDynamicSwaggerOptions, 'transform' | 'transformObject'>> {
  const problemsOf = new Map<string, ProblemCodes>();
  return {
    transform: (input) => {
      const result = jsonSchemaTransform(input) as { schema: Record<string, unknown> & { problems?: ProblemCodes; operationId?: string }; url: string };
      const { problems, ...schema } = result.schema ?? {};
      const method = [input.route.method].flat()[0]!;
      if (schema.operationId) problemsOf.set(schema.operationId, refusalsOf(method, input.url, problems));
      return { schema, url: result.url };
    },
    transformObject: (document) => {
      if (!('openapiObject' in document)) return document.swaggerObject;
      const { openapiObject } = document;
      for (const methods of Object.values((openapiObject as Document).paths ?? {})) {
        for (const operation of Object.values(methods)) {
          const problems = operation.operationId ? problemsOf.get(operation.operationId) : undefined;
          if (!problems) continue;
          for (const [status, codes] of Object.entries(problems)) {
            if (codes?.length) operation.responses = { ...operation.responses, [status]: refusalResponse(Number(status) as RefusalStatus, codes) };
          }
        }
      }
      return openapiObject;
    },
  };
}
