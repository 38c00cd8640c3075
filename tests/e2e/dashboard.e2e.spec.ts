// The dashboard in a real browser: Debian's chromium driven by playwright-core against the real
// service (AUTH on) holding the example dataset. It signs in with the printed admin key, checks
// that the overview's figures are /v1/dashboard's to the unit, follows a filter link, replays an
// agreement as of an earlier day, runs axe-core on each page (no serious or critical violation)
// and saves laptop and phone screenshots under tests/e2e/artifacts/ (not committed). A viewer key
// is shown no write or audit control; a second service with AUTH=off opens with no sign-in form.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, killAllServices, removeDataDir, startService, type ServiceProcess } from './support/service-process.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'tests/e2e/artifacts');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const SECRET = /cm_[A-Za-z0-9_-]{43}/;

let svc: ServiceProcess;
let secret: string;
let browser: Browser;
const dirs: string[] = [];

async function apiGet<T>(path: string): Promise<T> {
  const res = await fetch(`${svc.url}${path}`, { headers: { authorization: `Bearer ${secret}` } });
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

/** axe-core's serious and critical violations on the page as it is now. */
async function axeViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol: the page's CSP (rightly) refuses an injected <script>.
  await page.evaluate(readFileSync(AXE, 'utf8'));
  const result = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    return axe.run();
  });
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

async function screenshots(page: Page, name: string) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: join(ARTIFACTS, `${name}-laptop.png`), fullPage: true });
  await page.setViewportSize({ width: 360, height: 740 });
  await page.screenshot({ path: join(ARTIFACTS, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** Loads the example dataset into a running service with examples/load.ts, as an operator does. */
async function loadExamples(url: string, env: Record<string, string>) {
  const load = spawn(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'examples/load.ts'), url], {
    cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  load.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await new Promise<number | null>((ok) => load.once('close', ok));
  expect(code, err).toBe(0);
}

const figure = async (page: Page, id: string) => Number((await page.getByTestId(id).locator('.figure-value').innerText()).replace(/\D/g, ''));

type DashboardFigures = { commitments: { total: number; overdue: number; byStatus: Record<string, number> } };
/** The overview's four figures and its sector table's grand total equal /v1/dashboard's. */
async function expectOverviewFigures(page: Page, dash: DashboardFigures) {
  expect(await figure(page, 'count-overdue')).toBe(dash.commitments.overdue);
  expect(await figure(page, 'count-delayed')).toBe(dash.commitments.byStatus.delayed);
  expect(await figure(page, 'count-implemented')).toBe(dash.commitments.byStatus.implemented);
  expect(await figure(page, 'count-total')).toBe(dash.commitments.total);
  const totals = await page.getByTestId('sector-table').locator('td.total').allInnerTexts();
  expect(totals.reduce((n, t) => n + Number(t.replace(/\D/g, '')), 0)).toBe(dash.commitments.total);
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium is not installed at ${CHROMIUM}: run \`apt-get install -y chromium\``);
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts/build-web.mjs'), '--if-stale'], { cwd: ROOT, encoding: 'utf8' });
  expect(built.status, built.stderr).toBe(0);
  svc = await startService({ env: { AUTH: 'on' } });
  dirs.push(svc.dataDir);
  secret = SECRET.exec(svc.stderr())![0];
  await loadExamples(svc.url, { CM_API_KEY: secret });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await killAllServices();
  dirs.forEach(removeDataDir);
});

describe('the dashboard at /', () => {
  it('is served with no key, a strict CSP and cache headers; its assets are immutable', async () => {
    const res = await fetch(`${svc.url}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const a = await fetch(`${svc.url}${asset}`);
    expect(a.status).toBe(200);
    expect(a.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${svc.url}/v1/dashboard`)).status).toBe(401);
  });

  it('refuses a wrong key with a clear message, then signs in and shows the overview with /v1/dashboard\'s figures', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error' && !/401/.test(m.text())) problems.push(m.text()); });
    await page.goto(`${svc.url}/`);
    await page.getByLabel('API key').fill('cm_this-is-not-a-key-of-this-service-at-all-000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').innerText()).toMatch(/not accepted/);
    await screenshots(page, 'sign-in');

    await page.getByLabel('API key').fill(secret);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    expect(await page.getByTestId('who-role').innerText()).toBe('Role: admin');
    expect(await page.evaluate('sessionStorage.getItem("cm.apiKey")')).toBe(secret);
    expect(await page.evaluate('localStorage.length + document.cookie.length')).toBe(0);

    const dash = await apiGet<DashboardFigures>('/v1/dashboard');
    expect(dash.commitments.total).toBeGreaterThan(0);
    await expectOverviewFigures(page, dash);
    expect(await axeViolations(page)).toEqual([]);
    await screenshots(page, 'overview');

    // A sector link filters the page through the URL; a reload (the link sent to a colleague) shows the same.
    const link = page.locator('[data-testid^="sector-link-"]').first();
    const sector = (await link.getAttribute('data-testid'))!.replace('sector-link-', '');
    await link.click();
    await page.waitForURL((u) => u.searchParams.get('sector') === sector);
    const inSector = await apiGet<{ total: number }>(`/v1/commitments?sector=${sector}&limit=1`);
    await expect.poll(() => figure(page, 'count-total')).toBe(inSector.total);
    await page.reload();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    expect(await figure(page, 'count-total')).toBe(inSector.total);
    expect(await page.getByLabel('Sector', { exact: true }).inputValue()).toBe(sector);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  it('shows an agreement with its history and integrity, replays it as of an earlier day, and opens its institution\'s view', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(10_000);
    await page.goto(`${svc.url}/`);
    await page.getByLabel('API key').fill(secret);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const list = await apiGet<{ items: { id: string; title: string; signedAt: string }[] }>('/v1/agreements?limit=1');
    const a = list.items[0]!;
    await page.getByRole('link', { name: a.title }).first().click();
    await page.getByRole('heading', { name: a.title, level: 1 }).waitFor({ timeout: 10_000 }).catch(async (e: unknown) => {
      throw new Error(`${String(e)}\npage shows: ${await page.locator('main').innerText()}`);
    });
    expect(await page.getByTestId('integrity').innerText()).toMatch(/Hash chain verified/);
    const now = await page.getByTestId('commitments-table').locator('tbody tr').count();
    expect(now).toBeGreaterThan(0);
    // "Why?" lists the events that set the first commitment's status, fetched with the key.
    await page.getByRole('button', { name: 'Why?' }).first().click();
    await page.locator('.explain li').first().waitFor();
    expect(await page.locator('.explain li').first().innerText()).toMatch(/^Commitment added/);
    expect(await axeViolations(page)).toEqual([]);
    await screenshots(page, 'agreement');

    // The ledger's asOf is when events were recorded: the day before today it held nothing of this
    // agreement (the examples were loaded today), and the page says so; "Today" brings it back.
    const earlier = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    await page.getByLabel('As of').fill(earlier);
    await page.getByRole('button', { name: 'Show' }).click();
    await page.waitForURL((u) => u.searchParams.get('asOf') === earlier);
    expect(await page.getByTestId('as-of-empty').innerText()).toMatch(/held no record of this agreement/);
    const gone = await fetch(`${svc.url}/v1/agreements/${a.id}?asOf=${earlier}T23:59:59.999Z`, { headers: { authorization: `Bearer ${secret}` } });
    expect(gone.status).toBe(404);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('link', { name: 'Today' }).click();
    await page.waitForURL((u) => !u.searchParams.has('asOf'));
    await page.getByTestId('commitments-table').waitFor();
    expect(await page.getByTestId('commitments-table').locator('tbody tr').count()).toBe(now);

    // The responsible institution's link opens its "my commitments" view: overdue first, then due soon.
    const institutionLink = page.getByTestId('commitments-table').locator('tbody tr td:nth-child(2) a').first();
    const institution = await institutionLink.innerText();
    await institutionLink.click();
    await page.getByRole('heading', { name: `Commitments of ${institution}`, level: 1 }).waitFor();
    // An institution with overdue commitments, chosen in the view's own form: they are listed, oldest due first.
    const late = (await apiGet<{ items: { responsible: { institution: string } }[] }>('/v1/commitments?overdue=true&limit=1')).items[0]!.responsible.institution;
    await page.getByLabel('Responsible institution').fill(late);
    await page.getByRole('button', { name: 'Show' }).click();
    await page.getByRole('heading', { name: `Commitments of ${late}`, level: 1 }).waitFor();
    const overdue = await apiGet<{ items: { dueDate: string }[] }>(`/v1/commitments?institution=${encodeURIComponent(late)}&overdue=true&limit=100`);
    expect(overdue.items.length).toBeGreaterThan(0);
    expect(await page.getByTestId('overdue').locator('tbody tr').count()).toBe(overdue.items.length);
    expect(await page.getByTestId('overdue').locator('tbody time').evaluateAll((ts) => ts.map((t) => t.getAttribute('datetime')))).toEqual(overdue.items.map((c) => c.dueDate));
    expect(await axeViolations(page)).toEqual([]);
    await screenshots(page, 'institution');
    await page.close();
  }, 60_000);

  it('shows a viewer key no write or audit control: only filters, navigation and sign-out', async () => {
    const added = spawnSync('pnpm', ['keys', 'add', '--name', 'press-office', '--role', 'viewer'], {
      cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: svc.dataDir }, encoding: 'utf8', timeout: 60_000,
    });
    expect(added.status, added.stderr).toBe(0);
    const viewer = SECRET.exec(added.stdout)![0];
    // The running service picks the new key up from its key file.
    await expect.poll(async () => (await fetch(`${svc.url}/v1/me`, { headers: { authorization: `Bearer ${viewer}` } })).status, { timeout: 15_000, interval: 200 }).toBe(200);

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(10_000);
    const problems: string[] = [];
    const refused: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error' && !/401/.test(m.text())) problems.push(m.text()); });
    page.on('response', (r) => { if (r.status() === 403) refused.push(r.url()); });
    const writes: string[] = [];
    page.on('request', (r) => { if (r.method() !== 'GET') writes.push(`${r.method()} ${r.url()}`); });
    await page.goto(`${svc.url}/`);
    await page.getByLabel('API key').fill(viewer);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    expect(await page.getByTestId('who-role').innerText()).toBe('Role: viewer');
    const buttons = async () => (await page.getByRole('button').allInnerTexts()).map((t) => t.trim()).sort();
    expect(await buttons()).toEqual(['Apply filters', 'Sign out']);
    expect(await page.locator('form[method="post" i], textarea, input[type="file"]').count()).toBe(0);

    const a = (await apiGet<{ items: { title: string }[] }>('/v1/agreements?limit=1')).items[0]!;
    await page.getByRole('link', { name: a.title }).first().click();
    await page.getByRole('heading', { name: a.title, level: 1 }).waitFor();
    await page.getByTestId('commitments-table').waitFor();
    // No "Why?" (explain), no history, no integrity: those are the auditor's and admin's.
    expect(await buttons()).toEqual(['Show', 'Sign out']);
    expect(await page.getByTestId('integrity').count()).toBe(0);
    expect(await page.locator('main').innerText()).toMatch(/shown to auditor and admin keys/);
    expect(refused).toEqual([]);
    expect(writes).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  }, 90_000);
});

describe('the dashboard of a service run with AUTH=off', () => {
  it('asks for no key: it opens on the overview, says access is open, and shows /v1/dashboard\'s figures', async () => {
    const open = await startService({ env: { AUTH: 'off' } });
    dirs.push(open.dataDir);
    await loadExamples(open.url, {});
    const res = await fetch(`${open.url}/v1/dashboard`);
    expect(res.status).toBe(200);
    const dash = (await res.json()) as DashboardFigures;
    expect(dash.commitments.total).toBeGreaterThan(0);

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(10_000);
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    await page.goto(`${open.url}/`);
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    expect(await page.getByLabel('API key').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Sign in' }).count()).toBe(0);
    expect(await page.getByRole('heading', { name: 'Sign in' }).count()).toBe(0);
    expect(await page.getByTestId('who-name').innerText()).toBe('Open access (AUTH=off)');
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
    expect(await page.evaluate('sessionStorage.length + localStorage.length + document.cookie.length')).toBe(0);

    await expectOverviewFigures(page, dash);

    // A reload still asks for nothing.
    await page.reload();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    expect(await page.getByLabel('API key').count()).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
    await open.stop();
  }, 120_000);
});
