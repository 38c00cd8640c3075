// Reads scoped by party, through the real app: a key with parties sees only agreements one of
// its parties is a party to (and their reviews, cut to them); everything else is 404 as if it
// did not exist. Every read route the app serves has a case here: a new one without a case
// fails the first test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessOf } from './access.js';
import { agreementInput, commitmentInput, expectNothingAppended, expectProblem, get, post, type Json } from './testing/api-fixtures.js';
import { bearer, createTestApp, type TestApp, type TestKey } from './testing/test-app.js';

const admin: TestKey = { name: 'ops-admin', role: 'admin', secret: 'cm_admin_secret_0001' };
// Auditors, so that the audit routes are open to the role and only the parties decide.
const ven: TestKey = { name: 'ven-audit', role: 'auditor', parties: ['VEN'], secret: 'cm_ven_auditor_0001' };
const rus: TestKey = { name: 'rus-audit', role: 'auditor', parties: ['RUS'], secret: 'cm_rus_auditor_0001' };
const everyone: TestKey = { name: 'court-of-audit', role: 'auditor', secret: 'cm_all_auditor_0001' };
const venViewer: TestKey = { name: 'ven-press', role: 'viewer', parties: ['VEN'], secret: 'cm_ven_viewer_0001' };
const venEditor: TestKey = { name: 'mfa-ven', role: 'editor', parties: ['VEN'], secret: 'cm_ven_editor_0001' };
const venAdmin: TestKey = { name: 'ven-ops', role: 'admin', parties: ['VEN'], secret: 'cm_ven_admin_0001' };

const VISIBLE = 'ven-rus-oil';
const HIDDEN = 'rus-chn-energy';
const REVIEWS = { visible: 'ven-rus-review', hidden: 'rus-chn-review', joint: 'joint-review' };

let t: TestApp;
/** An instant after everything was recorded, for `asOf`. */
let settledAt: string;
beforeAll(async () => {
  t = await createTestApp({ keys: [admin, ven, rus, everyone, venViewer, venEditor, venAdmin] });
  const as = bearer(admin);
  const ok = async (url: string, body: Json) => {
    const r = await post(t, url, body, as);
    expect(r.statusCode, r.body).toBe(201);
    return r.json<Json>();
  };
  await ok('/v1/agreements', agreementInput({
    id: VISIBLE, title: 'Oil cooperation', sector: 'energy', parties: ['VEN', 'RUS'],
    commitments: [commitmentInput({ id: 'ven-oil', dueDate: '2026-01-31', responsible: { party: 'VEN', institution: 'PDVSA' } }),
      commitmentInput({ id: 'rus-oil', responsible: { party: 'RUS', institution: 'Rosneft' } })],
  }));
  await ok('/v1/agreements', agreementInput({
    id: HIDDEN, title: 'Energy dialogue', sector: 'energy', parties: ['RUS', 'CHN'],
    commitments: [commitmentInput({ id: 'rus-gas', dueDate: '2026-01-31', responsible: { party: 'RUS', institution: 'Gazprom' } })],
  }));
  const review = (id: string, agreementIds: string[]) => ({
    id, title: `Review ${id}`, scheduledFor: new Date(Date.now() + 30 * 86_400_000).toISOString(), agreementIds, attendees: [{ email: `${id}@example.org`, locale: 'en' }],
  });
  await ok('/v1/reviews', review(REVIEWS.visible, [VISIBLE]));
  await ok('/v1/reviews', review(REVIEWS.hidden, [HIDDEN]));
  const last = await ok('/v1/reviews', review(REVIEWS.joint, [VISIBLE, HIDDEN]));
  expect((await get(t, `/v1/dashboard?after=${last.position}`, as)).statusCode).toBe(200);
  settledAt = new Date(Date.now() + 1).toISOString();
  await new Promise((r) => setTimeout(r, 5));
});
afterAll(async () => t.close());

type Expect = (key: TestKey) => Promise<void>;
const read = (url: string, key: TestKey) => get(t, url, bearer(key));
const seesAll = (key: TestKey) => key === everyone || key === rus;

/** One agreement's or review's route: 404 with `code` for a key that does not see `id`, 200 for one that does. */
function one(path: (id: string) => string, code: string, ids: { hidden: string[]; shown: string[] }): Expect {
  return async (key) => {
    for (const id of ids.hidden) {
      const r = await read(path(id), key);
      if (key === ven) expect(expectProblem(r, 404).code, path(id)).toBe(code);
      else expect(r.statusCode, `${path(id)} ${r.body}`).toBe(200);
      // The answer for a hidden id is the one for an id that does not exist.
      if (key === ven) expect(r.json<Json>().detail).toBe((await read(path(`no-such-${id}`.slice(0, 40)), key)).json<Json>().detail.replace(`no-such-${id}`.slice(0, 40), id));
    }
    for (const id of ids.shown) {
      const r = await read(path(id), key);
      expect(r.statusCode, `${path(id)} ${r.body}`).toBe(200);
    }
  };
}

const agreement = (path: (id: string) => string) => one(path, 'agreement_not_found', { hidden: [HIDDEN], shown: [VISIBLE] });
const reviewWhole = (path: (id: string) => string) => one(path, 'review_not_found', { hidden: [REVIEWS.hidden, REVIEWS.joint], shown: [REVIEWS.visible] });
const cid = (id: string) => (id === HIDDEN ? 'rus-gas' : 'ven-oil');

/** Every non-public GET route the app serves, by `GET <url>` and its constraint. */
const CASES: Record<string, Expect> = {
  'GET /v1/agreements': async (key) => {
    const ids = (await read('/v1/agreements', key)).json<Json>().items.map((a: Json) => a.id);
    expect(ids.sort()).toEqual(seesAll(key) ? [VISIBLE, HIDDEN].sort() : [VISIBLE]);
    const byParty = (await read('/v1/agreements?party=CHN', key)).json<Json>();
    expect(byParty.total).toBe(seesAll(key) ? 1 : 0);
  },
  'GET /v1/agreements/:id': async (key) => {
    await agreement((id) => `/v1/agreements/${id}`)(key);
    // The time-travel views of the same route replay the log: scoped all the same.
    await agreement((id) => `/v1/agreements/${id}?revision=0`)(key);
    await agreement((id) => `/v1/agreements/${id}?asOf=${settledAt}`)(key);
  },
  'GET /v1/agreements/:id/commitments/:cid': agreement((id) => `/v1/agreements/${id}/commitments/${cid(id)}`),
  'GET /v1/agreements/:id/commitments/:cid/explain': agreement((id) => `/v1/agreements/${id}/commitments/${cid(id)}/explain`),
  'GET /v1/agreements/:id/history': agreement((id) => `/v1/agreements/${id}/history`),
  'GET /v1/agreements/:id/history?format=ndjson': agreement((id) => `/v1/agreements/${id}/history?format=ndjson`),
  'GET /v1/agreements/:id/integrity': agreement((id) => `/v1/agreements/${id}/integrity`),
  'GET /v1/agreements/:id/export': agreement((id) => `/v1/agreements/${id}/export`),
  'GET /v1/commitments': async (key) => {
    const body = (await read('/v1/commitments', key)).json<Json>();
    expect(body.items.map((c: Json) => c.agreementId).sort()).toEqual(seesAll(key) ? [VISIBLE, VISIBLE, HIDDEN].sort() : [VISIBLE, VISIBLE]);
    expect(body.total).toBe(seesAll(key) ? 3 : 2);
    const overdue = (await read('/v1/commitments?overdue=true', key)).json<Json>().items.map((c: Json) => c.id).sort();
    expect(overdue).toEqual(seesAll(key) ? ['rus-gas', 'ven-oil'] : ['ven-oil']);
    // The spreadsheet export holds the same rows: only the key's agreements.
    const csv = await read('/v1/commitments?format=csv', key);
    expect(csv.body.includes(HIDDEN)).toBe(seesAll(key));
    expect(csv.body).toContain(VISIBLE);
  },
  'GET /v1/dashboard': async (key) => {
    const d = (await read('/v1/dashboard', key)).json<Json>();
    expect(d.agreements.total).toBe(seesAll(key) ? 2 : 1);
    expect(d.agreements.bySector.energy.total).toBe(seesAll(key) ? 2 : 1);
    expect(d.commitments.total).toBe(seesAll(key) ? 3 : 2);
    expect(d.commitments.overdue).toBe(seesAll(key) ? 2 : 1);
    const upcoming = Object.fromEntries(d.upcomingReviews.map((r: Json) => [r.id, r.agreementIds]));
    expect(upcoming).toEqual(seesAll(key)
      ? { [REVIEWS.visible]: [VISIBLE], [REVIEWS.hidden]: [HIDDEN], [REVIEWS.joint]: [VISIBLE, HIDDEN] }
      : { [REVIEWS.visible]: [VISIBLE], [REVIEWS.joint]: [VISIBLE] });
  },
  'GET /v1/reviews': async (key) => {
    const items = (await read('/v1/reviews', key)).json<Json>().items;
    expect(Object.fromEntries(items.map((r: Json) => [r.id, r.agreementIds]))).toEqual(seesAll(key)
      ? { [REVIEWS.visible]: [VISIBLE], [REVIEWS.hidden]: [HIDDEN], [REVIEWS.joint]: [VISIBLE, HIDDEN] }
      : { [REVIEWS.visible]: [VISIBLE], [REVIEWS.joint]: [VISIBLE] });
    const byHidden = (await read(`/v1/reviews?agreementId=${HIDDEN}`, key)).json<Json>().items.map((r: Json) => r.id);
    expect(byHidden.sort()).toEqual(seesAll(key) ? [REVIEWS.joint, REVIEWS.hidden] : []);
  },
  'GET /v1/reviews.ics': async (key) => {
    const r = await read('/v1/reviews.ics', key);
    expect(r.statusCode).toBe(200);
    expect(r.body.includes(`${REVIEWS.hidden}@commitment-monitor`)).toBe(seesAll(key));
    expect(r.body.includes(HIDDEN)).toBe(seesAll(key));
    expect(r.body).toContain(`${REVIEWS.joint}@commitment-monitor`);
  },
  'GET /v1/reviews/:id': async (key) => {
    for (const suffix of ['', '?revision=0']) {
      const hidden = await read(`/v1/reviews/${REVIEWS.hidden}${suffix}`, key);
      if (key === ven) expect(expectProblem(hidden, 404).code).toBe('review_not_found');
      else expect(hidden.statusCode).toBe(200);
      // A joint review is shown cut to what the key sees: its agreements and its agenda.
      const joint = (await read(`/v1/reviews/${REVIEWS.joint}${suffix}`, key)).json<Json>();
      expect(joint.agreementIds).toEqual(seesAll(key) ? [VISIBLE, HIDDEN] : [VISIBLE]);
      expect(joint.agenda.map((a: Json) => a.agreementId)).toEqual(seesAll(key) ? [VISIBLE, HIDDEN] : [VISIBLE]);
      expect(JSON.stringify(joint).includes(HIDDEN)).toBe(seesAll(key));
    }
  },
  // A review's audit trail is its hashed stream, which cannot be cut: whole, or not at all.
  'GET /v1/reviews/:id/history': reviewWhole((id) => `/v1/reviews/${id}/history`),
  'GET /v1/reviews/:id/history?format=ndjson': reviewWhole((id) => `/v1/reviews/${id}/history?format=ndjson`),
  'GET /v1/reviews/:id/integrity': reviewWhole((id) => `/v1/reviews/${id}/integrity`),
  'GET /v1/reviews/:id/export': reviewWhole((id) => `/v1/reviews/${id}/export`),
  // Log-wide, for every auditor whatever its parties: hashes and the log's size, no agreement's data.
  'GET /v1/log/checkpoint': async (key) => {
    const r = await read('/v1/log/checkpoint', key);
    expect(r.statusCode).toBe(200);
    expect(r.body).not.toContain(HIDDEN);
  },
  'GET /v1/log/proofs/inclusion': async (key) => {
    const r = await read('/v1/log/proofs/inclusion?leafIndex=0&treeSize=2', key);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.body).not.toContain(HIDDEN);
  },
  'GET /v1/log/proofs/consistency': async (key) => {
    const r = await read('/v1/log/proofs/consistency?from=1&to=3', key);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.body).not.toContain(HIDDEN);
  },
  // The feed: the events of what the key sees, a joint review's cut to its visible agreements.
  'GET /v1/events': async (key) => {
    const events = (await read('/v1/events?limit=1000', key)).json<Json>().events;
    expect(JSON.stringify(events).includes(HIDDEN)).toBe(seesAll(key));
    expect(events.some((e: Json) => e.reviewId === REVIEWS.hidden)).toBe(seesAll(key));
    expect(events.find((e: Json) => e.reviewId === REVIEWS.joint && e.type === 'ReviewScheduled').agreementIds).toEqual(seesAll(key) ? [VISIBLE, HIDDEN] : [VISIBLE]);
  },
  // The service's own settings: for admins only, whatever the parties.
  'GET /v1/webhooks': async (key) => {
    expect(expectProblem(await read('/v1/webhooks', key), 403).code).toBe('role_not_allowed');
  },
  // The caller itself: its own name, role and parties, nothing of any agreement.
  'GET /v1/me': async (key) => {
    const me = (await read('/v1/me', key)).json<Json>();
    expect(me).toMatchObject({ name: key.name, role: key.role, parties: key.parties ?? [], auth: 'on' });
    expect(JSON.stringify(me)).not.toContain(HIDDEN);
  },
  // An empty template: no agreement's data.
  'GET /v1/imports/template': async (key) => {
    const r = await read('/v1/imports/template?format=csv', key);
    expect(r.statusCode).toBe(200);
    expect(r.body).not.toContain(HIDDEN);
  },
  // Counters by route template and the log's head: no agreement's data.
  'GET /metrics': async (key) => {
    const r = await read('/metrics', key);
    expect(r.statusCode).toBe(200);
    expect(r.body).not.toContain(HIDDEN);
  },
};

describe('reads scoped by party', () => {
  it('has a case for every read route the app serves', () => {
    const served = t.app.servedRoutes
      .filter((r) => r.method === 'GET' && accessOf('GET', r.url) !== 'public')
      .map((r) => `GET ${r.url}${r.constraints.format ? `?format=${String(r.constraints.format)}` : ''}`);
    expect([...new Set(served)].sort()).toEqual(Object.keys(CASES).sort());
  });

  describe.each([
    ['a VEN key (RUS-CHN hidden, VEN-RUS shown)', ven],
    ['a RUS key (both shown)', rus],
    ['a key without parties (everything shown)', everyone],
  ])('%s', (_what, key) => {
    it.each(Object.keys(CASES))('%s', async (route) => CASES[route]!(key));
  });

  it('scopes viewer and admin keys too; a command on a hidden agreement or review is refused as if it did not exist', async () => {
    expect(expectProblem(await read(`/v1/agreements/${HIDDEN}`, venViewer), 404).code).toBe('agreement_not_found');
    expect((await read(`/v1/agreements/${VISIBLE}`, venViewer)).statusCode).toBe(200);
    expect((await read('/v1/agreements', venViewer)).json<Json>().total).toBe(1);
    // A command on what the key cannot see: 404, not a refusal that names the other parties.
    await expectNothingAppended(t, async () => {
      expect(expectProblem(await post(t, `/v1/agreements/${HIDDEN}/commitments/rus-gas/progress`, { percent: 5 }, bearer(venEditor)), 404).code).toBe('agreement_not_found');
      expect(expectProblem(await post(t, `/v1/reviews/${REVIEWS.hidden}/cancellation`, { reason: 'no' }, bearer(venEditor)), 404).code).toBe('review_not_found');
      // Even an admin key with parties: a review naming a hidden agreement names one that does not exist.
      const scheduled = expectProblem(await post(t, '/v1/reviews', {
        title: 'Joint', scheduledFor: new Date(Date.now() + 86_400_000).toISOString(), agreementIds: [VISIBLE, HIDDEN], attendees: [{ email: 'a@example.org', locale: 'en' }],
      }, bearer(venAdmin)), 400);
      expect(scheduled.code).toBe('unknown_agreement');
      expect(scheduled.errors).toEqual([{ path: 'agreementIds.1', message: `agreement ${HIDDEN} does not exist` }]);
      expect(expectProblem(await post(t, `/v1/agreements/${HIDDEN}/termination`, { reason: 'no' }, bearer(venAdmin)), 404).code).toBe('agreement_not_found');
    });
  });
});
