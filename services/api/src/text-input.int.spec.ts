// What a text field of a command may hold: no NUL or other control characters (a free-text
// note keeps its line breaks and tabs), no half of a surrogate pair, and a body that is UTF-8.
// Each refusal is a 400 naming the field, and nothing is recorded. Also the JSON body's own
// refusals: keys that could reach an object's prototype, and a Content-Length that lies.
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { agreementInput, command, commitmentInput, createAgreement, errorPaths, expectNothingAppended, expectProblem, post, type Json } from './testing/api-fixtures.js';

const NOW = '2026-03-01T09:00:00.000Z';
let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ now: NOW });
  await createAgreement(t, { id: 'ag-one', commitments: [commitmentInput({ id: 'plant' })] });
  await command(t, '/v1/reviews', { id: 'rev-one', title: 'Review', scheduledFor: '2026-06-10T14:00:00Z', agreementIds: ['ag-one'], attendees: [{ email: 'desk@example.org' }] }, 201);
});
afterEach(async () => {
  await t.close();
});

type Field = { route: string; body: (v: string) => Json; path: string; multiline?: true };
const agreement = (o: Json) => agreementInput({ id: 'ag-new', ...o });
const review = (o: Json) => ({ id: 'rev-new', title: 'Review', scheduledFor: '2026-06-10T14:00:00Z', agreementIds: ['ag-one'], attendees: [{ email: 'desk@example.org' }], ...o });
const commitment = (o: Json) => ({ id: 'c-new', ...commitmentInput(), ...o });

// Every text field of every command.
const FIELDS: Field[] = [
  { route: '/v1/agreements', path: 'title', body: (v) => agreement({ title: v }) },
  { route: '/v1/agreements', path: 'summary', multiline: true, body: (v) => agreement({ summary: v }) },
  { route: '/v1/agreements', path: 'session.name', body: (v) => agreement({ session: { name: v, date: '2025-11-28' } }) },
  { route: '/v1/agreements', path: 'commitments.0.title', body: (v) => agreement({ commitments: [commitmentInput({ title: v })] }) },
  { route: '/v1/agreements', path: 'commitments.0.description', multiline: true, body: (v) => agreement({ commitments: [commitmentInput({ description: v })] }) },
  { route: '/v1/agreements', path: 'commitments.0.responsible.institution', body: (v) => agreement({ commitments: [commitmentInput({ responsible: { party: 'VEN', institution: v } })] }) },
  { route: '/v1/agreements/ag-one/commitments', path: 'title', body: (v) => commitment({ title: v }) },
  { route: '/v1/agreements/ag-one/commitments', path: 'description', multiline: true, body: (v) => commitment({ description: v }) },
  { route: '/v1/agreements/ag-one/commitments', path: 'responsible.institution', body: (v) => commitment({ responsible: { party: 'VEN', institution: v } }) },
  { route: '/v1/agreements/ag-one/commitments/plant/progress', path: 'note', multiline: true, body: (v) => ({ percent: 10, note: v }) },
  { route: '/v1/agreements/ag-one/commitments/plant/implementation', path: 'note', multiline: true, body: (v) => ({ note: v }) },
  { route: '/v1/agreements/ag-one/commitments/plant/delay', path: 'reason', multiline: true, body: (v) => ({ reason: v, newDueDate: '2027-12-31' }) },
  { route: '/v1/agreements/ag-one/commitments/plant/cancellation', path: 'reason', multiline: true, body: (v) => ({ reason: v }) },
  { route: '/v1/agreements/ag-one/termination', path: 'reason', multiline: true, body: (v) => ({ reason: v }) },
  { route: '/v1/agreements/ag-one/corrections', path: 'reason', multiline: true, body: (v) => ({ revision: 1, dueDate: '2027-07-31', reason: v }) },
  { route: '/v1/reviews', path: 'title', body: (v) => review({ title: v }) },
  { route: '/v1/reviews', path: 'location', body: (v) => review({ location: v }) },
  { route: '/v1/reviews', path: 'attendees.0.name', body: (v) => review({ attendees: [{ email: 'desk@example.org', name: v }] }) },
  { route: '/v1/reviews/rev-one/reschedule', path: 'reason', multiline: true, body: (v) => ({ scheduledFor: '2026-06-11T14:00:00Z', reason: v }) },
  { route: '/v1/reviews/rev-one/cancellation', path: 'reason', multiline: true, body: (v) => ({ reason: v }) },
  { route: '/v1/reviews/rev-one/outcome', path: 'summary', multiline: true, body: (v) => ({ summary: v, assessments: [] }) },
  { route: '/v1/reviews/rev-one/outcome', path: 'assessments.0.note', multiline: true, body: (v) => ({ assessments: [{ agreementId: 'ag-one', rating: 'on_track', note: v }] }) },
];

const ALWAYS_REFUSED = [
  ['NUL', 'a\u0000b'],
  ['ESC', 'a\u001b[31mred'],
  ['BEL', 'a\u0007b'],
  ['DEL', 'a\u007fb'],
  ['a lone high surrogate', 'a\ud800b'],
  ['a lone low surrogate', 'a\udc00b'],
] as const;
const SINGLE_LINE_REFUSED = [['CR LF', 'a\r\nBcc: evil@x.org'], ['LF', 'a\nb'], ['TAB', 'a\tb']] as const;

describe('control characters and broken Unicode in text fields', () => {
  for (const f of FIELDS) {
    const refused = f.multiline ? ALWAYS_REFUSED : [...ALWAYS_REFUSED, ...SINGLE_LINE_REFUSED];
    it.each(refused)(`POST ${f.route}: ${f.path} with %s is refused with 400 naming it`, async (_what, value) => {
      const res = await expectNothingAppended(t, () => post(t, f.route, f.body(value)));
      const p = expectProblem(res, 400);
      expect(p.code).toBe('invalid_input');
      expect(errorPaths(p)).toEqual([f.path]);
    });
  }

  it.each(FIELDS.filter((f) => f.multiline))('POST $route: $path keeps line breaks and tabs', async (f) => {
    const res = await post(t, f.route, f.body('first line\r\n\tsecond line\nthird'));
    expect(res.statusCode, res.body).toBeLessThan(300);
  });

  it('accepts text in any script, emoji (whole surrogate pairs) included', async () => {
    const res = await post(t, '/v1/agreements', agreement({ title: 'Acuerdo — Соглашение 協定 🤝', session: { name: 'CIAN XIX ✓', date: '2025-11-28' } }));
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json<Json>().title).toBe('Acuerdo — Соглашение 協定 🤝');
  });

  it('refuses an evidence URL with a line break, which the URL parser would silently drop', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements/ag-one/commitments/plant/progress', { percent: 10, evidenceUrl: 'https://a.example/x\nBcc: evil@x.org' }));
    expect(errorPaths(expectProblem(res, 400))).toEqual(['evidenceUrl']);
  });
});

const rawPost = (url: string, payload: string | Buffer) =>
  t.app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } });

describe('the JSON body', () => {
  it.each([
    ['a lone continuation byte', Buffer.from([0x80])],
    ['a truncated two-byte sequence', Buffer.from([0xc3])],
    ['an overlong encoding of "/"', Buffer.from([0xc0, 0xaf])],
    ['an encoded surrogate', Buffer.from([0xed, 0xa0, 0x80])],
  ])('refuses a body that is not UTF-8 (%s) with 400 invalid_utf8', async (_what, bytes) => {
    const payload = Buffer.concat([Buffer.from('{"percent": 10, "note": "caf'), bytes, Buffer.from('"}')]);
    const res = await expectNothingAppended(t, () => rawPost('/v1/agreements/ag-one/commitments/plant/progress', payload));
    const p = expectProblem(res, 400);
    expect(p.code).toBe('invalid_utf8');
    expect(errorPaths(p)).toEqual(['body']);
    expect(p.detail).toMatch(/UTF-8/);
  });

  it.each([
    ['__proto__ at the top', '{"__proto__": {"isAdmin": true}, "percent": 10}', '__proto__'],
    ['__proto__ nested', '{"percent": 10, "x": [{"__proto__": {"polluted": 1}}]}', 'x.0.__proto__'],
    ['constructor', '{"percent": 10, "constructor": {"prototype": {"polluted": 1}}}', 'constructor'],
    ['prototype', '{"percent": 10, "note": "n", "y": {"prototype": 1}}', 'y.prototype'],
  ])('refuses a body with %s as forbidden_key, naming where, not as invalid JSON', async (_what, payload, path) => {
    const res = await expectNothingAppended(t, () => rawPost('/v1/agreements/ag-one/commitments/plant/progress', payload));
    const p = expectProblem(res, 400);
    expect(p.code).toBe('forbidden_key');
    expect(p.detail).toMatch(/refused/);
    expect(p.detail).not.toMatch(/not valid JSON/);
    expect(errorPaths(p)).toEqual([path]);
    expect(({} as Json).polluted).toBeUndefined();
    expect(({} as Json).isAdmin).toBeUndefined();
  });

  it('names heldAt, not occurredAt, when a review outcome is held in the future', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/reviews/rev-one/outcome', { heldAt: '2026-03-02T09:00:00Z', assessments: [] }));
    const p = expectProblem(res, 400);
    expect(errorPaths(p)).toEqual(['heldAt']);
    expect(p.detail).toMatch(/heldAt/);
    expect(p.detail).not.toMatch(/occurredAt/);
  });
});

describe('a Content-Length that does not match the body', () => {
  // Over a real socket: the body is shorter than announced, and the client then closes its side.
  async function sendRaw(request: string): Promise<string> {
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = new URL(address);
    return new Promise((resolve, reject) => {
      const socket = connect({ port: Number(port), host: '127.0.0.1' });
      let answer = '';
      socket.on('data', (d) => (answer += d.toString('latin1')));
      socket.on('end', () => resolve(answer));
      socket.on('close', () => resolve(answer));
      socket.on('error', reject);
      socket.end(request);
    });
  }

  it('answers 400 problem+json invalid_content_length when the body is shorter than Content-Length', async () => {
    const body = '{"percent": 10}';
    const answer = await expectNothingAppended(t, () => sendRaw(
      `POST /v1/agreements/ag-one/commitments/plant/progress HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 20}\r\n\r\n${body}`,
    ));
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
    expect(answer).toContain('"code":"invalid_content_length"');
  });

  it('answers 400 problem+json invalid_content_length through inject as well', async () => {
    const res = await t.app.inject({
      method: 'POST', url: '/v1/agreements/ag-one/commitments/plant/progress', payload: '{"percent": 10}',
      headers: { 'content-type': 'application/json', 'content-length': '5' },
    });
    expect(expectProblem(res, 400).code).toBe('invalid_content_length');
  });
});
