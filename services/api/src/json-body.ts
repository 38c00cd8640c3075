// The one parser of request bodies (application/json). It refuses, each with its own code,
// what the default parser either lets through or calls "not valid JSON": bytes that are not
// UTF-8 (decoded with replacement characters, they would be recorded as something the caller
// never sent) and keys that reach an object's prototype in code that copies or merges bodies.
import type { FastifyInstance } from 'fastify';
import type { FieldError } from '@cm/domain';
import { HttpProblem } from './problem.js';

/** Keys refused anywhere in a body: no field of the contract has these names. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function parseJsonBody(raw: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new HttpProblem(400, 'invalid_utf8', 'the body is not valid UTF-8 text; send JSON encoded as UTF-8', [{ path: 'body', message: 'must be UTF-8 encoded' }]);
  }
  if (text.trim() === '') {
    throw new HttpProblem(400, 'invalid_input', 'the JSON body is empty', [{ path: 'body', message: 'must be a JSON object' }]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HttpProblem(400, 'invalid_json', 'the body is not valid JSON', [{ path: 'body', message: (err as Error).message.slice(0, 200) }]);
  }
  const forbidden = forbiddenKeyPaths(value);
  if (forbidden.length) {
    throw new HttpProblem(
      400, 'forbidden_key',
      `keys named ${[...FORBIDDEN_KEYS].join(', ')} are refused anywhere in a body (found at ${forbidden.map((e) => e.path).join(', ')})`,
      forbidden,
    );
  }
  return value;
}

/** Where the forbidden keys are (JSON.parse makes them plain own properties), at most ten. */
function forbiddenKeyPaths(root: unknown): FieldError[] {
  const found: FieldError[] = [];
  const stack: { value: unknown; path: string }[] = [{ value: root, path: '' }];
  while (stack.length && found.length < 10) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    for (const key of Object.keys(value)) {
      const at = path ? `${path}.${key}` : key;
      if (FORBIDDEN_KEYS.has(key)) found.push({ path: at, message: 'is a refused key' });
      else stack.push({ value: (value as Record<string, unknown>)[key], path: at });
    }
  }
  return found;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any server/logger/type-provider flavour
export function installJsonBodyParser(app: FastifyInstance<any, any, any, any, any>): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}
