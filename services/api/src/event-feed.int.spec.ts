// The event feed as an integration reads it: JSON pages in log order that miss nothing, what a
// key with parties sees (and a viewer's masked attendees), and the Server-Sent Events stream
// over real HTTP on a listening app: new events arrive, a dropped connection resumes from
// Last-Event-ID without a gap, heartbeats flow, and closing the app ends open streams.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agreementInput, commitmentInput, expectNothingAppended, expectProblem, get, post, type Json } from './testing/api-fixtures.js';
import { bearer, createTestApp, type TestApp, type TestKey } from './testing/test-app.js';

const admin: TestKey = { name: 'ops-admin', role: 'admin', secret: 'cm_feed_admin_0001' };
const venEditor: TestKey = { name: 'mfa-ven', role: 'editor', parties: ['VEN'], secret: 'cm_feed_ven_editor_01' };
const rusAuditor: TestKey = { name: 'rus-audit', role: 'auditor', parties: ['RUS'], secret: 'cm_feed_rus_audit_01' };
const venViewer: TestKey = { name: 'ven-press', role: 'viewer', parties: ['VEN'], secret: 'cm_feed_ven_viewer_01' };

const VISIBLE = 'ven-rus-oil';
const HIDDEN = 'rus-chn-energy';
const JOINT = 'joint-review';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ keys: [admin, venEditor, rusAuditor, venViewer], feedHeartbeatMs: 40 });
  const ok = async (url: string, body: Json) => {
    const r = await post(t, url, body, bearer(admin));
    expect(r.statusCode, r.body).toBe(201);
  };
  await ok('/v1/agreements', agreementInput({ id: VISIBLE, parties: ['VEN', 'RUS'], commitments: [commitmentInput({ id: 'ven-oil' })] }));
  await ok('/v1/agreements', agreementInput({
    id: HIDDEN, parties: ['RUS', 'CHN'], commitments: [commitmentInput({ id: 'rus-gas', responsible: { party: 'RUS', institution: 'Gazprom' } })],
  }));
  await ok('/v1/reviews', {
    id: JOINT, title: 'Joint review', scheduledFor: new Date(Date.now() + 30 * 86_400_000).toISOString(), agreementIds: [VISIBLE, HIDDEN],
    attendees: [{ email: 'maria.perez@mppre.gob.ve', name: 'María Pérez', locale: 'es' }],
  });
});
afterAll(async () => t.close());

const feed = async (query: string, key: TestKey = admin) => {
  const r = await get(t, `/v1/events${query}`, bearer(key));
  expect(r.statusCode, r.body).toBe(200);
  return r.json<Json>();
};

/** Every page from the start, following `next`, `limit` at a time. */
async function allPages(limit: number, key: TestKey = admin, extra = ''): Promise<Json[]> {
  const events: Json[] = [];
  let after = '';
  for (let i = 0; i < 100; i += 1) {
    const page = await feed(`?limit=${limit}${extra}${after}`, key);
    events.push(...page.events);
    if (!page.more) return events;
    after = `&after=${page.next}`;
  }
  throw new Error('the feed never ended');
}

describe('JSON pages', () => {
  it('give every event of the log once, in log order, page after page', async () => {
    const log = await t.eventStore.readAll({ after: null, limit: 1000 });
    const paged = await allPages(2);
    expect(paged.map((e) => e.id)).toEqual(log.map((e) => e.id));
    expect(paged.map((e) => e.position)).toEqual(log.map((e) => e.position));
    expect(paged[0]).toMatchObject({ type: 'AgreementSigned', agreementId: VISIBLE, revision: 0, actor: admin.name });
    // A page from the last position holds nothing new and keeps the cursor where it was.
    const last = log.at(-1)!.position;
    expect(await feed(`?after=${last}`)).toEqual({ events: [], next: last, more: false });
  });

  it('filter by type and by agreement (its reviews included)', async () => {
    const signed = await feed('?types=AgreementSigned,ReviewScheduled');
    expect(signed.events.map((e: Json) => e.type)).toEqual(['AgreementSigned', 'AgreementSigned', 'ReviewScheduled']);
    const hidden = await allPages(1, admin, `&agreementId=${HIDDEN}`);
    expect(hidden.every((e) => e.agreementId === HIDDEN || e.agreementIds?.includes(HIDDEN))).toBe(true);
    expect(hidden.map((e) => e.type)).toContain('ReviewScheduled');
    expect(hidden.some((e) => e.agreementId === VISIBLE)).toBe(false);
  });

  it('refuse a bad query naming the field, and an unknown key', async () => {
    await expectNothingAppended(t, async () => {
      expect(expectProblem(await get(t, '/v1/events?types=AgreementSigned,Nope', bearer(admin)), 400).errors[0].path).toBe('types');
      expect(expectProblem(await get(t, '/v1/events?after=abc', bearer(admin)), 400).errors[0].path).toBe('after');
      expect(expectProblem(await get(t, '/v1/events?limit=0', bearer(admin)), 400).errors[0].path).toBe('limit');
      expect(expectProblem(await get(t, '/v1/events', { authorization: 'Bearer not-a-key-000' }), 401).code).toBe('invalid_credentials');
    });
  });
});

describe('scope', () => {
  it('a VEN key sees its agreements and the joint review cut to them; a RUS key sees both', async () => {
    const ven = await allPages(100, venEditor);
    expect(JSON.stringify(ven).includes(HIDDEN)).toBe(false);
    expect(new Set(ven.map((e) => e.agreementId ?? e.reviewId))).toEqual(new Set([VISIBLE, JOINT]));
    const review = ven.find((e) => e.type === 'ReviewScheduled')!;
    expect(review.agreementIds).toEqual([VISIBLE]);
    expect(review.data.agreementIds).toEqual([VISIBLE]);
    // An editor may see whom it meets.
    expect(review.data.attendees[0]).toMatchObject({ email: 'maria.perez@mppre.gob.ve', name: 'María Pérez' });

    const rus = await allPages(100, rusAuditor);
    expect(rus.map((e) => e.id)).toEqual((await allPages(100, admin)).map((e) => e.id));
    expect(rus.find((e) => e.type === 'ReviewScheduled')!.agreementIds).toEqual([VISIBLE, HIDDEN]);
    // A filter on a hidden agreement finds nothing for the key that does not see it.
    expect((await feed(`?agreementId=${HIDDEN}`, venEditor)).events).toEqual([]);
  });

  it('a viewer sees attendees masked: no address, no name', async () => {
    const events = await allPages(100, venViewer);
    const review = events.find((e) => e.type === 'ReviewScheduled')!;
    expect(review.data.attendees).toEqual([{ email: 'm***@mppre.gob.ve', locale: 'es' }]);
    expect(JSON.stringify(events)).not.toContain('maria.perez');
    expect(JSON.stringify(events)).not.toContain('Pérez');
  });
});

type SseEvent = { id?: string; event?: string; data?: string };

/** A Server-Sent Events client over real HTTP: events and comments as they arrive. */
async function openStream(base: string, key: TestKey, headers: Record<string, string> = {}, query = '') {
  const controller = new AbortController();
  const res = await fetch(`${base}/v1/events${query}`, { headers: { accept: 'text/event-stream', ...bearer(key), ...headers }, signal: controller.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: SseEvent[] = [];
  const comments: string[] = [];
  let ended = false;
  const decoder = new TextDecoder();
  let buffer = '';
  const done = (async () => {
    const reader = res.body!.getReader();
    try {
      for (;;) {
        const { value, done: finished } = await reader.read();
        if (finished) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event: SseEvent = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) event.id = line.slice(4);
            else if (line.startsWith('event: ')) event.event = line.slice(7);
            else if (line.startsWith('data: ')) event.data = line.slice(6);
          }
          if (event.id) events.push(event);
        }
      }
    } catch {
      // Aborted by the test: the connection dropped.
    }
    ended = true;
  })();
  const until = async (what: () => boolean, ms = 3000) => {
    const deadline = Date.now() + ms;
    while (!what()) {
      if (Date.now() > deadline) throw new Error(`stream: timed out; got ${events.length} events`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { events, comments, until, drop: () => controller.abort(), done, get ended() { return ended; } };
}

describe('Server-Sent Events', () => {
  let base: string;
  beforeAll(async () => {
    base = await t.app.listen({ host: '127.0.0.1', port: 0 });
  });

  const progress = async (percent: number) => {
    const r = await post(t, `/v1/agreements/${VISIBLE}/commitments/ven-oil/progress`, { percent }, bearer(admin));
    expect(r.statusCode, r.body).toBe(200);
    return r.json<Json>().position as string;
  };

  it('pushes the log, then new events as they are appended, and resumes after a dropped connection without a gap', async () => {
    const start = await openStream(base, venEditor);
    const before = await allPages(100, venEditor);
    await start.until(() => start.events.length === before.length);
    expect(start.events.map((e) => e.id)).toEqual(before.map((e) => e.position));

    const p1 = await progress(10);
    await start.until(() => start.events.at(-1)?.id === p1);
    const pushed = JSON.parse(start.events.at(-1)!.data!);
    expect(start.events.at(-1)!.event).toBe('ProgressReported');
    expect(pushed).toMatchObject({ type: 'ProgressReported', agreementId: VISIBLE, position: p1, data: { commitmentId: 'ven-oil', percent: 10 } });
    // An event the key does not see is not pushed.
    const hiddenWrite = await post(t, `/v1/agreements/${HIDDEN}/commitments/rus-gas/progress`, { percent: 5 }, bearer(admin));
    expect(hiddenWrite.statusCode).toBe(200);

    start.drop();
    await start.done;
    const lastSeen = start.events.at(-1)!.id!;
    // Appended while nobody listens.
    const missed = [await progress(20), await progress(30)];
    const resumed = await openStream(base, venEditor, { 'last-event-id': lastSeen });
    const p4 = await progress(40);
    await resumed.until(() => resumed.events.at(-1)?.id === p4);
    expect(resumed.events.map((e) => e.id)).toEqual([...missed, p4]);
    expect(JSON.stringify(resumed.events).includes(HIDDEN)).toBe(false);
    resumed.drop();
  });

  it('sends heartbeats on an idle stream, and refuses a Last-Event-ID that is no position', async () => {
    const head = (await t.eventStore.headPosition())!;
    const idle = await openStream(base, admin, {}, `?after=${head}`);
    await idle.until(() => idle.comments.includes('heartbeat'));
    expect(idle.events).toEqual([]);
    idle.drop();
    const bad = await fetch(`${base}/v1/events`, { headers: { accept: 'text/event-stream', ...bearer(admin), 'last-event-id': 'yesterday' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Json).errors[0].path).toBe('Last-Event-ID');
  });

  it('closing the app ends open streams instead of waiting on them', async () => {
    const a = await openStream(base, admin);
    const b = await openStream(base, venViewer, {}, '?types=ProgressReported');
    await a.until(() => a.events.length > 0);
    const started = Date.now();
        await t.app.close();
    expect(Date.now() - started).toBeLessThan(2000);
    await a.until(() => a.ended);
    await b.until(() => b.ended);
  });
});
