// The dashboard: one page, its view and filters in the URL query (so a link can be sent on):
//   /                      overview (filters: session, party, sector, institution, status)
//   /?view=agreement&id=…  one agreement (asOf=YYYY-MM-DD replays it as it stood then)
//   /?view=institution&institution=…  what one responsible institution has overdue and due next
// The API key is asked once and kept in sessionStorage for this browser session only.
import './style.css';
import {
  ApiError, COMMITMENT_STATUSES, api, forgetKey, query, storeKey, storedKey,
  type AgreementDetail, type AgreementSummary, type Commitment, type CommitmentStatus, type Dashboard, type HistoryEvent, type Integrity, type Me, type Page,
} from './api.js';
import { sectorChart, type SectorCounts } from './chart.js';
import { badge, fmtDate, fmtDateTime, fmtNum, h, sectorLabel, statusLabel } from './dom.js';

const main = document.getElementById('main') as HTMLElement;
const who = document.getElementById('who') as HTMLElement;
let me: Me | null = null;
let chart: { destroy(): void } | null = null;

const FILTERS = ['session', 'party', 'sector', 'institution', 'status'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;

function params(): URLSearchParams {
  return new URLSearchParams(location.search);
}

function filtersOf(p: URLSearchParams): Filters {
  const f: Filters = {};
  for (const k of FILTERS) {
    const v = p.get(k)?.trim();
    if (v) f[k] = v;
  }
  return f;
}

function go(url: string) {
  history.pushState(null, '', url);
  void route();
}

/** Same-origin links inside the page navigate without reloading (and keep the key). */
document.addEventListener('click', (e) => {
  const a = (e.target as HTMLElement | null)?.closest('a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname !== '/' || a.target) return;
  e.preventDefault();
  go(url.pathname + url.search);
});
window.addEventListener('popstate', () => void route());

function setPage(title: string, ...content: (Node | string | null)[]) {
  chart?.destroy();
  chart = null;
  document.title = `${title} · Commitment monitor`;
  main.replaceChildren(...content.filter((c): c is Node | string => c !== null));
}

function problemBox(err: unknown): HTMLElement {
  const text = err instanceof ApiError ? `${err.message} (${err.status} ${err.code})` : `The service could not be reached: ${String(err)}`;
  return h('div', { class: 'notice notice-error', role: 'alert' }, h('strong', {}, 'Could not load this page. '), text);
}

// ---------------------------------------------------------------- sign-in

function renderWho() {
  if (!me) {
    who.replaceChildren();
    return;
  }
  const parties = me.parties.length ? me.parties.join(', ') : 'all parties';
  who.replaceChildren(...[
    h('span', { class: 'who-name', 'data-testid': 'who-name' }, me.auth === 'off' ? 'Open access (AUTH=off)' : me.name),
    h('span', { class: 'who-role', 'data-testid': 'who-role' }, `Role: ${me.role}`),
    h('span', { class: 'who-parties', 'data-testid': 'who-parties' }, `Parties: ${parties}`),
    me.auth === 'on' ? h('button', { type: 'button', class: 'link-button', onclick: () => { forgetKey(); me = null; void route(); } }, 'Sign out') : null,
  ].filter((c): c is HTMLElement => c !== null));
}

function signInForm(message?: string) {
  who.replaceChildren();
  const input = h('input', { id: 'api-key', name: 'apiKey', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'api-key-help' + (message ? ' sign-in-error' : ''), ...(message ? { 'aria-invalid': 'true' } : {}) });
  const form = h('form', { class: 'sign-in', novalidate: true },
    h('h1', {}, 'Sign in'),
    h('p', { id: 'api-key-help', class: 'help' }, 'Enter the API key you were given. It is kept in this browser tab only and forgotten when the tab closes.'),
    message ? h('p', { id: 'sign-in-error', class: 'notice notice-error', role: 'alert' }, message) : null,
    h('label', { for: 'api-key' }, 'API key'),
    input,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) {
      signInForm('Enter an API key.');
      return;
    }
    storeKey(key);
    void route();
  });
  setPage('Sign in', form);
  input.focus();
}

/** Who the caller is; null after showing the sign-in form. */
async function identify(): Promise<Me | null> {
  if (me) return me;
  try {
    me = await api<Me>('/v1/me');
    renderWho();
    return me;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      const hadKey = storedKey() !== null;
      forgetKey();
      signInForm(hadKey ? 'That API key was not accepted: check that it is complete and has not been revoked, then try again.' : undefined);
      return null;
    }
    setPage('Unavailable', problemBox(err));
    return null;
  }
}

// ---------------------------------------------------------------- overview

async function sectorRows(dash: Dashboard, f: Filters): Promise<SectorCounts[]> {
  const sectors = f.sector ? [f.sector] : Object.keys(dash.agreements.bySector).sort();
  const statuses = f.status ? [f.status as CommitmentStatus] : COMMITMENT_STATUSES;
  return Promise.all(sectors.map(async (sector) => {
    const counts = Object.fromEntries(COMMITMENT_STATUSES.map((s) => [s, 0])) as Record<CommitmentStatus, number>;
    await Promise.all(statuses.map(async (status) => {
      const page = await api<Page<Commitment>>(`/v1/commitments${query({ sector, status, party: f.party, institution: f.institution, limit: '1' })}`);
      counts[status] = page.total;
    }));
    return { sector, label: sectorLabel(sector), counts };
  }));
}

async function keyFigures(dash: Dashboard, f: Filters) {
  const filtered = f.party || f.sector || f.institution || f.status;
  if (!filtered) {
    return { overdue: dash.commitments.overdue, delayed: dash.commitments.byStatus.delayed, implemented: dash.commitments.byStatus.implemented, total: dash.commitments.total };
  }
  const count = async (extra: Record<string, string>) => {
    const merged = { party: f.party, sector: f.sector, institution: f.institution, status: f.status, ...extra, limit: '1' };
    if (f.status && extra.status && f.status !== extra.status) return 0;
    return (await api<Page<Commitment>>(`/v1/commitments${query(merged)}`)).total;
  };
  const [overdue, delayed, implemented, total] = await Promise.all([count({ overdue: 'true' }), count({ status: 'delayed' }), count({ status: 'implemented' }), count({})]);
  return { overdue, delayed, implemented, total };
}

function filterForm(dash: Dashboard, f: Filters): HTMLElement {
  const field = (name: keyof Filters, label: string, control: HTMLElement) =>
    h('div', { class: 'field' }, h('label', { for: `f-${name}` }, label), control);
  const text = (name: keyof Filters, extra: Record<string, string> = {}) =>
    h('input', { id: `f-${name}`, name, type: 'text', value: f[name] ?? '', ...extra });
  const select = (name: keyof Filters, options: [string, string][]) =>
    h('select', { id: `f-${name}`, name }, h('option', { value: '' }, 'All'), options.map(([v, l]) => h('option', { value: v, selected: f[name] === v }, l)));
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the overview' },
    field('session', 'Session', text('session', { placeholder: 'e.g. 2026-I' })),
    field('party', 'Party', text('party', { placeholder: 'ISO code, e.g. VEN', maxlength: '3', autocapitalize: 'characters' })),
    field('sector', 'Sector', select('sector', Object.keys(dash.agreements.bySector).sort().map((s) => [s, sectorLabel(s)]))),
    field('institution', 'Institution', text('institution', { placeholder: 'part of its name' })),
    field('status', 'Commitment status', select('status', COMMITMENT_STATUSES.map((s) => [s, statusLabel(s)]))),
    h('div', { class: 'filter-actions' }, h('button', { type: 'submit', class: 'primary' }, 'Apply filters'), h('a', { href: '/', class: 'button-secondary' }, 'Clear')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const next: Record<string, string> = {};
    for (const k of FILTERS) {
      const v = String(data.get(k) ?? '').trim();
      if (v) next[k] = k === 'party' ? v.toUpperCase() : v;
    }
    go(`/${query(next)}`);
  });
  return form;
}

function figure(label: string, value: number, href: string | null, testid: string, tone: string) {
  return h(href ? 'a' : 'div', { class: `figure figure-${tone}`, href, 'data-testid': testid },
    h('span', { class: 'figure-value' }, fmtNum(value)), h('span', { class: 'figure-label' }, label));
}

async function overview(p: URLSearchParams) {
  const f = filtersOf(p);
  const dash = await api<Dashboard>('/v1/dashboard');
  const [figures, rows, agreements] = await Promise.all([
    keyFigures(dash, f),
    sectorRows(dash, f),
    api<Page<AgreementSummary>>(`/v1/agreements${query({ session: f.session, party: f.party, sector: f.sector, limit: '10' })}`),
  ]);
  const statuses = f.status ? [f.status as CommitmentStatus] : COMMITMENT_STATUSES;
  const link = (extra: Filters) => `/${query({ ...f, ...extra })}`;
  const active = Object.entries(f);

  const canvas = h('canvas', { id: 'sector-chart', role: 'img', 'aria-label': 'Commitments per sector, stacked by status; the same numbers are in the table below.' });
  const table = h('table', { class: 'data', 'data-testid': 'sector-table' },
    h('caption', {}, 'Commitments per sector and status'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Sector'), statuses.map((s) => h('th', { scope: 'col', class: 'num' }, statusLabel(s))), h('th', { scope: 'col', class: 'num' }, 'Total'))),
    h('tbody', {}, rows.map((r) => h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: link({ sector: r.sector }), 'data-testid': `sector-link-${r.sector}` }, r.label)),
      statuses.map((s) => h('td', { class: 'num' }, fmtNum(r.counts[s]))),
      h('td', { class: 'num total' }, fmtNum(statuses.reduce((n, s) => n + r.counts[s], 0))),
    ))),
  );

  const reviews = h('section', { class: 'panel', 'aria-labelledby': 'reviews-h' },
    h('h2', { id: 'reviews-h' }, 'Next reviews'),
    dash.upcomingReviews.length
      ? h('ol', { class: 'reviews' }, dash.upcomingReviews.map((r) => h('li', {},
        h('time', { datetime: r.scheduledFor }, fmtDateTime(r.scheduledFor)),
        h('span', { class: 'review-title' }, r.title),
        h('span', { class: 'review-scope' }, r.agreementIds.flatMap((id, i) => [i ? ', ' : '', h('a', { href: `/${query({ view: 'agreement', id })}` }, id)])),
      )))
      : h('p', { class: 'empty' }, 'No review is scheduled.'),
  );

  const agreementList = h('section', { class: 'panel', 'aria-labelledby': 'agreements-h' },
    h('h2', { id: 'agreements-h' }, 'Agreements', h('span', { class: 'count' }, ` ${fmtNum(agreements.total)}`)),
    agreements.items.length
      ? h('table', { class: 'data' },
        h('caption', { class: 'visually-hidden' }, 'Agreements matching the filters, newest signature first'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Agreement'), h('th', { scope: 'col', class: 'hide-narrow' }, 'Parties'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col', class: 'num hide-narrow' }, 'Progress'))),
        h('tbody', {}, agreements.items.map((a) => h('tr', {},
          h('td', {}, h('a', { href: `/${query({ view: 'agreement', id: a.id })}` }, a.title), h('div', { class: 'sub' }, `${a.parties.join('–')} · ${sectorLabel(a.sector)} · signed ${fmtDate(a.signedAt)}${a.session ? ` · ${a.session.name}` : ''}`)),
          h('td', { class: 'hide-narrow' }, a.parties.join(', ')),
          h('td', {}, badge(a.status)),
          h('td', { class: 'num hide-narrow' }, `${a.progress}%`),
        ))))
      : h('p', { class: 'empty' }, 'No agreement matches these filters.'),
  );

  setPage('Overview',
    h('div', { class: 'page-head' },
      h('h1', {}, 'Overview'),
      h('p', { class: 'sub' }, h('a', { href: `/${query({ view: 'institution', institution: f.institution, party: f.party })}` }, 'My commitments: what an institution has due next')),
      h('p', { class: 'lede' }, active.length ? `Filtered by ${active.map(([k, v]) => `${k} ${k === 'status' ? statusLabel(v) : k === 'sector' ? sectorLabel(v) : v}`).join(', ')}.` : 'All agreements and commitments you may see.'),
    ),
    filterForm(dash, f),
    f.session ? h('p', { class: 'notice' }, 'The session filter applies to the list of agreements; the figures and the chart count commitments of every session.') : '',
    h('section', { class: 'figures', 'aria-label': 'Key figures' },
      figure('Overdue', figures.overdue, null, 'count-overdue', 'overdue'),
      figure('Delayed', figures.delayed, link({ status: 'delayed' }), 'count-delayed', 'delayed'),
      figure('Implemented', figures.implemented, link({ status: 'implemented' }), 'count-implemented', 'implemented'),
      figure('Commitments', figures.total, null, 'count-total', 'total'),
    ),
    h('div', { class: 'grid' },
      h('section', { class: 'panel panel-wide', 'aria-labelledby': 'sectors-h' },
        h('h2', { id: 'sectors-h' }, 'Commitments by sector'),
        h('div', { class: 'chart-box' }, canvas),
        table,
      ),
      reviews,
    ),
    agreementList,
  );
  const box = canvas.parentElement as HTMLElement;
  box.style.height = `${Math.max(140, rows.length * 44 + 90)}px`;
  chart = sectorChart(canvas, rows, statuses);
}

// ---------------------------------------------------------------- agreement

const EVENT_LABEL: Record<string, string> = {
  AgreementSigned: 'Agreement signed', CommitmentAdded: 'Commitment added', ProgressReported: 'Progress reported',
  CommitmentDelayed: 'Commitment delayed', CommitmentImplemented: 'Commitment implemented', CommitmentCancelled: 'Commitment cancelled',
  ProgressCorrected: 'Correction: progress', DueDateCorrected: 'Correction: due date', AgreementReviewed: 'Reviewed',
  AgreementTerminated: 'Agreement terminated', AgreementDenounced: 'Agreement denounced',
};

function describe(e: HistoryEvent): string {
  const d = e.data as Record<string, unknown>;
  const bits: string[] = [];
  if (typeof d.commitmentId === 'string') bits.push(d.commitmentId);
  if (typeof d.percent === 'number') bits.push(`${d.percent}%`);
  if (typeof d.newDueDate === 'string') bits.push(`new due date ${fmtDate(d.newDueDate)}`);
  if (typeof d.dueDate === 'string' && e.type === 'DueDateCorrected') bits.push(`due date ${fmtDate(d.dueDate)}`);
  if (typeof d.reason === 'string') bits.push(`“${d.reason}”`);
  if (typeof d.note === 'string') bits.push(d.note);
  if (typeof d.title === 'string' && e.type !== 'AgreementSigned') bits.push(d.title);
  if (Array.isArray(d.commitments)) bits.push(`${d.commitments.length} commitments`);
  return bits.join(' · ');
}

type Explanation = { steps: { type: string; occurredAt: string; actor: string; changed: Record<string, { from: unknown; to: unknown }> }[] };

/** "Why?": the events that set a commitment's status, progress and due date, fetched with the key. */
function explainToggle(agreementId: string, commitmentId: string): HTMLElement {
  const out = h('div', { class: 'explain', hidden: true, 'aria-live': 'polite' });
  const button = h('button', { type: 'button', class: 'link-inline', 'aria-expanded': 'false' }, 'Why?');
  button.addEventListener('click', async () => {
    const open = button.getAttribute('aria-expanded') === 'true';
    button.setAttribute('aria-expanded', String(!open));
    out.hidden = open;
    if (open || out.childElementCount) return;
    try {
      const x = await api<Explanation>(`/v1/agreements/${encodeURIComponent(agreementId)}/commitments/${encodeURIComponent(commitmentId)}/explain`);
      out.replaceChildren(h('ol', {}, x.steps.map((st) => h('li', {},
        h('strong', {}, EVENT_LABEL[st.type] ?? st.type), ` ${fmtDate(st.occurredAt)} by ${st.actor}: `,
        Object.entries(st.changed).map(([k, v]) => `${k} ${v.from === null ? '' : `${String(v.from)} → `}${String(v.to)}`).join('; '),
      ))));
    } catch (err) {
      out.replaceChildren(problemBox(err));
    }
  });
  return h('div', { class: 'sub' }, button, out);
}

function asOfControl(id: string, asOf: string): HTMLElement {
  const asOfInput = h('input', { id: 'as-of', name: 'asOf', type: 'date', value: asOf, 'aria-describedby': 'as-of-help' });
  const asOfForm = h('form', { class: 'as-of' },
    h('label', { for: 'as-of' }, 'As of'), asOfInput,
    h('button', { type: 'submit', class: 'primary' }, 'Show'),
    asOf ? h('a', { class: 'button-secondary', href: `/${query({ view: 'agreement', id })}` }, 'Today') : null,
    h('p', { id: 'as-of-help', class: 'help' }, 'Replays the agreement as it stood at the end of that day (UTC).'),
  );
  asOfForm.addEventListener('submit', (e) => {
    e.preventDefault();
    go(`/${query({ view: 'agreement', id, asOf: asOfInput.value })}`);
  });

  return asOfForm;
}

async function agreementPage(p: URLSearchParams) {
  const id = p.get('id') ?? '';
  const asOf = p.get('asOf') ?? '';
  const asOfInstant = asOf ? `${asOf}T23:59:59.999Z` : undefined;
  const asOfForm = asOfControl(id, asOf);
  let a: AgreementDetail;
  try {
    a = await api<AgreementDetail>(`/v1/agreements/${encodeURIComponent(id)}${query({ asOf: asOfInstant })}`);
  } catch (err) {
    if (!(asOf && err instanceof ApiError && err.status === 404)) throw err;
    setPage(id,
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/' }, 'Overview'), ' / ', id),
      h('div', { class: 'page-head' }, h('h1', {}, id)),
      asOfForm,
      h('p', { class: 'notice', role: 'status', 'data-testid': 'as-of-empty' }, `On ${fmtDate(asOf)} the ledger held no record of this agreement: it was recorded later.`),
    );
    return;
  }
  const audit = me?.may.audit ?? false;
  const [history, integrity] = audit
    ? await Promise.all([
      api<{ events: (HistoryEvent & { actor: string })[] }>(`/v1/agreements/${encodeURIComponent(id)}/history`),
      api<Integrity>(`/v1/agreements/${encodeURIComponent(id)}/integrity`),
    ])
    : [null, null];

  const commitments = h('table', { class: 'data', 'data-testid': 'commitments-table' },
    h('caption', {}, asOf ? `Commitments as of ${fmtDate(asOf)}` : 'Commitments'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Commitment'), h('th', { scope: 'col' }, 'Responsible'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Progress'), h('th', { scope: 'col' }, 'Due'))),
    h('tbody', {}, a.commitments.map((c) => h('tr', {},
      h('td', {}, h('strong', {}, c.title), h('div', { class: 'sub' }, c.id)),
      h('td', {}, h('a', { href: `/${query({ view: 'institution', institution: c.responsible.institution })}` }, c.responsible.institution), h('div', { class: 'sub' }, c.responsible.party)),
      h('td', {}, badge(c.status, c.overdue), audit ? explainToggle(id, c.id) : null),
      h('td', {}, h('progress', { max: 100, value: c.progress, 'aria-label': `${c.title}: ${c.progress}%` }), h('span', { class: 'pct' }, `${c.progress}%`)),
      h('td', {}, h('time', { datetime: c.dueDate }, fmtDate(c.dueDate)),
        c.dueDate !== c.originalDueDate ? h('div', { class: 'sub' }, 'originally ', h('s', {}, fmtDate(c.originalDueDate))) : null),
    ))),
  );

  const historyPanel = history
    ? h('section', { class: 'panel', 'aria-labelledby': 'history-h' },
      h('h2', { id: 'history-h' }, 'History'),
      h('ol', { class: 'timeline' }, history.events.map((e) => h('li', { class: e.type.endsWith('Corrected') ? 'correction' : '' },
        h('div', { class: 'tl-head' }, h('strong', {}, EVENT_LABEL[e.type] ?? e.type), e.type.endsWith('Corrected') ? h('span', { class: 'badge badge-correction' }, 'Correction') : null),
        h('div', { class: 'tl-body' }, describe(e)),
        h('div', { class: 'sub' }, `by ${e.actor} · happened ${fmtDateTime(e.occurredAt)} · recorded ${fmtDateTime(e.recordedAt)}`),
      ))))
    : null;
  const integrityPanel = integrity
    ? h('section', { class: 'panel', 'aria-labelledby': 'integrity-h' },
      h('h2', { id: 'integrity-h' }, 'Integrity'),
      h('p', { class: integrity.valid ? 'ok' : 'notice notice-error', 'data-testid': 'integrity' },
        integrity.valid ? `Hash chain verified: ${integrity.events} events.` : `Hash chain broken at revision ${integrity.firstInvalidRevision}: ${integrity.reason}`),
      h('p', { class: 'sub' }, 'Last hash ', h('code', { class: 'hash' }, integrity.lastHash ?? '—')))
    : null;

  setPage(a.title,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/' }, 'Overview'), ' / ', a.title),
    h('div', { class: 'page-head' },
      h('h1', {}, a.title),
      h('p', { class: 'lede' }, badge(a.status), ` ${a.statusReason}`),
      h('p', { class: 'sub' }, `${sectorLabel(a.sector)} · ${a.parties.join(', ')} · signed ${fmtDate(a.signedAt)}${a.session ? ` · ${a.session.name}` : ''} · overall progress ${a.progress}%`),
    ),
    asOfForm,
    h('section', { class: 'panel' }, commitments),
    h('div', { class: 'grid' }, historyPanel ?? h('section', { class: 'panel' }, h('h2', {}, 'History'), h('p', { class: 'empty' }, 'The history and integrity check are shown to auditor and admin keys.')), integrityPanel ?? ''),
  );
}

// ---------------------------------------------------------------- institution

const dayOffset = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);

function commitmentTable(caption: string, page: Page<Commitment>, testid: string): HTMLElement {
  const live = page.items.filter((c) => c.status !== 'implemented' && c.status !== 'cancelled');
  return h('section', { class: 'panel', 'data-testid': testid },
    h('h2', {}, caption, h('span', { class: 'count' }, ` ${fmtNum(live.length)}`)),
    live.length
      ? h('table', { class: 'data' },
        h('caption', { class: 'visually-hidden' }, `${caption}, most urgent first`),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Due'), h('th', { scope: 'col' }, 'Commitment'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col', class: 'num hide-narrow' }, 'Progress'))),
        h('tbody', {}, live.map((c) => h('tr', {},
          h('td', {}, h('time', { datetime: c.dueDate }, fmtDate(c.dueDate))),
          h('td', {}, h('a', { href: `/${query({ view: 'agreement', id: c.agreementId })}` }, c.title), h('div', { class: 'sub' }, `${c.responsible.institution} (${c.responsible.party})`)),
          h('td', {}, badge(c.status, c.overdue)),
          h('td', { class: 'num hide-narrow' }, `${c.progress}%`),
        ))))
      : h('p', { class: 'empty' }, 'Nothing here.'),
    page.nextCursor ? h('p', { class: 'sub' }, `Showing the first ${page.items.length} of ${fmtNum(page.total)}; narrow the institution to see the rest.`) : null,
  );
}

async function institutionPage(p: URLSearchParams) {
  const institution = p.get('institution')?.trim() ?? '';
  const party = p.get('party')?.trim() ?? '';
  const input = h('input', { id: 'i-institution', name: 'institution', type: 'text', value: institution, required: true });
  const partyInput = h('input', { id: 'i-party', name: 'party', type: 'text', value: party, maxlength: '3', placeholder: 'optional, e.g. VEN' });
  const form = h('form', { class: 'filters filters-narrow', role: 'search', 'aria-label': 'Choose the institution' },
    h('div', { class: 'field' }, h('label', { for: 'i-institution' }, 'Responsible institution'), input),
    h('div', { class: 'field' }, h('label', { for: 'i-party' }, 'Party'), partyInput),
    h('div', { class: 'filter-actions' }, h('button', { type: 'submit', class: 'primary' }, 'Show')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(`/${query({ view: 'institution', institution: input.value.trim(), party: partyInput.value.trim().toUpperCase() })}`);
  });
  const head = h('div', { class: 'page-head' }, h('h1', {}, institution ? `Commitments of ${institution}` : 'My commitments'),
    h('p', { class: 'lede' }, 'What is overdue and what falls due in the next 30 and 90 days, most urgent first.'));
  if (!institution) {
    setPage('My commitments', head, form);
    return;
  }
  const base = { institution, party: party || undefined, limit: '100' };
  const [overdue, soon, later] = await Promise.all([
    api<Page<Commitment>>(`/v1/commitments${query({ ...base, overdue: 'true' })}`),
    api<Page<Commitment>>(`/v1/commitments${query({ ...base, overdue: 'false', dueAfter: dayOffset(-1), dueBefore: dayOffset(31) })}`),
    api<Page<Commitment>>(`/v1/commitments${query({ ...base, overdue: 'false', dueAfter: dayOffset(30), dueBefore: dayOffset(91) })}`),
  ]);
  setPage(`Commitments of ${institution}`, head, form,
    commitmentTable('Overdue', overdue, 'overdue'),
    commitmentTable('Due in the next 30 days', soon, 'due-30'),
    commitmentTable('Due in 31 to 90 days', later, 'due-90'),
  );
}

// ---------------------------------------------------------------- router

async function route() {
  const who = await identify();
  if (!who) return;
  const p = params();
  main.setAttribute('aria-busy', 'true');
  try {
    if (p.get('view') === 'agreement') await agreementPage(p);
    else if (p.get('view') === 'institution') await institutionPage(p);
    else await overview(p);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      me = null;
      forgetKey();
      signInForm('Your API key is no longer accepted: sign in again.');
    } else setPage('Error', problemBox(err));
  } finally {
    main.removeAttribute('aria-busy');
  }
}

void route();
