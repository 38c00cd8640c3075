// Small helpers for the API integration tests: request bodies a ministry tool would send,
// and assertions on problem+json answers and on the log staying untouched.
import { expect } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import type { TestApp } from './test-app.js';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test bodies are read loosely

export function commitmentInput(overrides: Json = {}): Json {
  return {
    title: 'Open a joint vaccine plant',
    dueDate: '2027-06-30',
    responsible: { party: 'VEN', institution: 'Ministry of Health' },
    ...overrides,
  };
}

export function agreementInput(overrides: Json = {}): Json {
  return {
    title: 'Health cooperation agreement',
    kind: 'agreement',
    sector: 'health',
    parties: ['VEN', 'RUS'],
    signedAt: '2025-11-28',
    ...overrides,
  };
}

export async function post(t: TestApp, url: string, body: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url, payload: body as object, headers: { 'content-type': 'application/json', ...headers } });
}

export async function get(t: TestApp, url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'GET', url, headers });
}

/** Creates an agreement and waits until the read models show it. */
export async function createAgreement(t: TestApp, overrides: Json = {}): Promise<Json> {
  const res = await post(t, '/v1/agreements', agreementInput(overrides));
  expect(res.statusCode, res.body).toBe(201);
  const body = res.json<Json>();
  await settle(t, body.position);
  return body;
}

/** Sends a commitment command and expects it to succeed; waits until the read models show it. */
export async function command(t: TestApp, url: string, body: unknown, expected = 200): Promise<Json> {
  const res = await post(t, url, body);
  expect(res.statusCode, res.body).toBe(expected);
  const answer = res.json<Json>();
  await settle(t, answer.position);
  return answer;
}

/** Waits until the read models include `position` (through the API's own `?after=`). */
export async function settle(t: TestApp, position: string): Promise<void> {
  const res = await get(t, `/v1/dashboard?after=${position}`);
  expect(res.statusCode, res.body).toBe(200);
}

/** Asserts an RFC 9457 answer with the status, and returns its body. */
export function expectProblem(res: LightMyRequestResponse, status: number): Json {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json<Json>();
  expect(body).toMatchObject({ status, type: expect.any(String), title: expect.any(String), detail: expect.any(String), code: expect.any(String) });
  return body;
}

export function errorPaths(problemBody: Json): string[] {
  return ((problemBody.errors ?? []) as { path: string }[]).map((e) => e.path);
}

/** Runs `fn` and asserts the log did not grow. */
export async function expectNothingAppended<T>(t: TestApp, fn: () => Promise<T>): Promise<T> {
  const before = await t.eventStore.headPosition();
  const result = await fn();
  expect(await t.eventStore.headPosition()).toBe(before);
  return result;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
