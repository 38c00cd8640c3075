// An import in three steps: every cell checked (the domain's own zod shapes), then a plan of
// commands against what the ledger holds, each decided (not appended) by the caller's own
// decider so party scope and every domain rule speak per row; only when no row has a problem
// are the commands run. Each command's event ids derive from the file's hash, the actor and the
// command's place in the plan, so a retry of an interrupted import appends nothing twice.
import { z } from 'zod';
import {
  AppError, agreementKind, agreementStream, commitmentStatus, isoDate, mayRead, multilineText, party, plainText, sector, slug,
  type AgreementCommand, type AgreementState, type ExistingAgreement, type Principal,
} from '@cm/domain';
import { runCommand, toTimed, type CommandContext, type EventStore, type Position } from '@cm/event-store';
import { agreementDeciderFor } from '../access.js';
import { COLUMNS, columnLetter, type Column } from './columns.js';
import type { RawRow, RawSheet } from './read-sheet.js';

export type SheetProblem = { sheet: string; row: number; column: string; field: string; message: string };

const optionalText = (schema: z.ZodType<string>) => schema.optional();
const progressCell = z.string().regex(/^\d{1,3}$/, 'must be a whole number from 0 to 100').transform(Number).pipe(z.number().max(100, 'must be a whole number from 0 to 100'));
const partiesCell = z.string().transform((s) => s.split(';').map((p) => p.trim()).filter(Boolean)).pipe(z.array(party).min(2, 'must name at least two parties, separated by ";" (VEN;RUS)').max(50));

const CELL: Record<Column, z.ZodType> = {
  agreement_id: slug,
  agreement_title: plainText(300),
  kind: agreementKind,
  sector,
  parties: partiesCell,
  signed_at: isoDate,
  session_name: optionalText(plainText(120)),
  session_date: optionalText(isoDate),
  commitment_id: slug,
  commitment_title: plainText(300),
  responsible_party: party,
  responsible_institution: plainText(200),
  // Empty: the date waits for the agreement's event (a relative rule); only a recorded commitment may say so.
  due_date: optionalText(isoDate),
  status: commitmentStatus.optional(),
  progress: progressCell.optional(),
  note: optionalText(multilineText(4000)),
};

type Row = {
  row: number;
  agreementId: string;
  agreement: { title: string; kind: z.infer<typeof agreementKind>; sector: string; parties: string[]; signedAt: string; session: { name: string; date: string } | null };
  commitment: { id: string; title: string; party: string; institution: string; dueDate: string | null; status: z.infer<typeof commitmentStatus> | undefined; progress: number | undefined; note: string | undefined };
};

const UNDATED_NEW_COMMITMENT = 'is required for a new commitment (a date falling due relative to entry into force is set through the API, not a sheet)';

const letter = (c: Column) => columnLetter(COLUMNS.indexOf(c));

/** Every cell of every row checked; rows without a problem come back typed. */
function checkCells(sheet: RawSheet): { rows: Row[]; problems: SheetProblem[] } {
  const problems: SheetProblem[] = [];
  const rows: Row[] = [];
  for (const raw of sheet.rows) {
    const values: Partial<Record<Column, unknown>> = {};
    let bad = raw.problems.length > 0;
    for (const p of raw.problems) problems.push({ sheet: sheet.sheet, row: raw.row, ...p });
    for (const c of COLUMNS) {
      if (raw.problems.some((p) => p.field === c)) continue;
      const r = CELL[c].safeParse(raw.cells[c]);
      if (r.success) values[c] = r.data;
      else {
        bad = true;
        problems.push({ sheet: sheet.sheet, row: raw.row, column: letter(c), field: c, message: r.error.issues[0]?.message ?? 'is not valid' });
      }
    }
    if ((values.session_name === undefined) !== (values.session_date === undefined) && !bad) {
      bad = true;
      const missing: Column = values.session_name === undefined ? 'session_name' : 'session_date';
      problems.push({ sheet: sheet.sheet, row: raw.row, column: letter(missing), field: missing, message: 'session_name and session_date go together: give both or neither' });
    }
    if (bad) continue;
    const v = values as Record<Column, never>;
    rows.push({
      row: raw.row,
      agreementId: v.agreement_id,
      agreement: {
        title: v.agreement_title, kind: v.kind, sector: v.sector, parties: v.parties, signedAt: v.signed_at,
        session: values.session_name === undefined ? null : { name: v.session_name, date: v.session_date },
      },
      commitment: {
        id: v.commitment_id, title: v.commitment_title, party: v.responsible_party, institution: v.responsible_institution,
        dueDate: (values.due_date as string | undefined) ?? null, status: values.status as Row['commitment']['status'], progress: values.progress as number | undefined, note: values.note as string | undefined,
      },
    });
  }
  return { rows, problems };
}

export type PlanAction = 'create_agreement' | 'add_commitment' | 'report_progress' | 'implement' | 'delay' | 'cancel';
export type PlanItem = { row: number; agreementId: string; commitmentId: string; outcome: 'created' | 'updated' | 'unchanged'; actions: PlanAction[] };

type Step = { row: number; column: Column; action: PlanAction; command: AgreementCommand };
type AgreementPlan = { agreementId: string; revision: number; steps: Step[] };

export type ImportSummary = {
  created: { agreements: number; commitments: number };
  updated: number;
  unchanged: number;
  rows: number;
  plan: PlanItem[];
};

async function fold(eventStore: EventStore, decider: ReturnType<typeof agreementDeciderFor>, id: string): Promise<{ state: AgreementState; revision: number }> {
  let state = decider.initial();
  let revision = -1;
  for (const e of await eventStore.readStream(agreementStream(id))) {
    state = decider.evolve(state, toTimed(e));
    revision = e.revision;
  }
  return { state, revision };
}

const sameParties = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

/** Commands that bring a commitment from what the ledger holds (or pending, when new) to its row. */
function followUps(r: Row, held: { status: string; progress: number; dueDate: string | null } | null, problem: (c: Column, m: string) => void): Step[] {
  const c = r.commitment;
  const steps: Step[] = [];
  const status = held?.status ?? 'pending';
  const dueDate = held ? held.dueDate : c.dueDate;
  if (c.dueDate === null && !held) {
    problem('due_date', UNDATED_NEW_COMMITMENT);
    return [];
  }
  const needReason = (what: string) => {
    if (c.note === undefined) problem('note', `must give the reason of the ${what}`);
    return c.note ?? '';
  };
  if (c.status === 'delayed' && status !== 'delayed' && !held) {
    problem('status', 'a new commitment cannot start delayed: import it with its original due date, then import the delay (status delayed, the new due_date, the reason in note)');
  } else if (c.status === 'delayed' && c.dueDate !== null && c.dueDate !== dueDate) {
    steps.push({ row: r.row, column: 'due_date', action: 'delay', command: { type: 'DelayCommitment', commitmentId: c.id, reason: needReason('delay'), newDueDate: c.dueDate } });
  } else if (c.dueDate !== dueDate) {
    problem('due_date', dueDate === null
      ? "differs from the ledger, which has no due date yet (it falls due relative to entry into force): leave the cell empty"
      : `differs from the ledger's ${dueDate}: a due date moves only by a delay (status delayed, the reason in note) or a correction`);
  } else if (c.status === 'delayed' && status !== 'delayed') {
    problem('due_date', 'a delay needs a due_date later than the one the ledger holds');
  }
  if (c.progress !== undefined && c.progress !== (held?.progress ?? 0)) {
    steps.push({ row: r.row, column: 'progress', action: 'report_progress', command: { type: 'ReportProgress', commitmentId: c.id, percent: c.progress, ...(c.note !== undefined && c.status !== 'cancelled' && c.status !== 'delayed' ? { note: c.note } : {}) } });
  }
  if (c.status === 'implemented' && status !== 'implemented') {
    steps.push({ row: r.row, column: 'status', action: 'implement', command: { type: 'ImplementCommitment', commitmentId: c.id, ...(c.note !== undefined ? { note: c.note } : {}) } });
  } else if (c.status === 'cancelled' && status !== 'cancelled') {
    steps.push({ row: r.row, column: 'status', action: 'cancel', command: { type: 'CancelCommitment', commitmentId: c.id, reason: needReason('cancellation') } });
  } else if (c.status !== undefined && c.status !== status && !(isOpen(c.status) && isOpen(status)) && c.status !== 'delayed') {
    problem('status', `is ${c.status} but the ledger holds ${status}; an import records only implemented, delayed or cancelled`);
  }
  return steps;
}
const isOpen = (s: string) => s === 'pending' || s === 'in_progress';

export type Planned = { summary: ImportSummary; problems: SheetProblem[]; agreements: AgreementPlan[] };

export async function planImport(sheet: RawSheet, deps: { eventStore: EventStore; principal: Principal; now: string }): Promise<Planned> {
  const { rows, problems } = checkCells(sheet);
  const decider = agreementDeciderFor(deps.principal);
  const problem = (row: number, c: Column, message: string) => problems.push({ sheet: sheet.sheet, row, column: letter(c), field: c, message });

  // Rows by agreement, in file order; a commitment id twice in one agreement is a problem.
  const groups = new Map<string, Row[]>();
  const seen = new Map<string, number>();
  for (const r of rows) {
    const key = `${r.agreementId}/${r.commitment.id}`;
    const first = seen.get(key);
    if (first !== undefined) {
      problem(r.row, 'commitment_id', `repeats commitment ${r.commitment.id} of agreement ${r.agreementId} (row ${first}); one row per commitment`);
      continue;
    }
    seen.set(key, r.row);
    groups.set(r.agreementId, [...(groups.get(r.agreementId) ?? []), r]);
  }

  const plan: PlanItem[] = [];
  const agreements: AgreementPlan[] = [];
  const time = { now: deps.now, occurredAt: deps.now };
  for (const [agreementId, group] of groups) {
    const head = group[0]!;
    // The agreement columns repeat on every row of the agreement: they must say the same.
    for (const r of group.slice(1)) {
      const a = r.agreement;
      const h = head.agreement;
      if (a.title !== h.title) problem(r.row, 'agreement_title', `differs from row ${head.row} of the same agreement`);
      if (a.kind !== h.kind) problem(r.row, 'kind', `differs from row ${head.row} of the same agreement`);
      if (a.sector !== h.sector) problem(r.row, 'sector', `differs from row ${head.row} of the same agreement`);
      if (!sameParties(a.parties, h.parties)) problem(r.row, 'parties', `differs from row ${head.row} of the same agreement`);
      if (a.signedAt !== h.signedAt) problem(r.row, 'signed_at', `differs from row ${head.row} of the same agreement`);
      if (JSON.stringify(a.session) !== JSON.stringify(h.session)) problem(r.row, 'session_name', `differs from row ${head.row} of the same agreement`);
    }
    const { state: start, revision } = await fold(deps.eventStore, decider, agreementId);
    const steps: Step[] = [];
    const items = new Map<number, PlanItem>();
    if (start.exists && !mayRead(deps.principal, start.parties)) {
      for (const r of group) problem(r.row, 'agreement_id', 'is not an agreement this key may change (forbidden)');
      continue;
    }
    if (!start.exists) {
      const h = head.agreement;
      const undated = group.filter((r) => r.commitment.dueDate === null);
      if (undated.length) {
        for (const r of undated) problem(r.row, 'due_date', UNDATED_NEW_COMMITMENT);
        continue;
      }
      steps.push({
        row: head.row, column: 'agreement_id', action: 'create_agreement',
        command: {
          type: 'SignAgreement', agreementId, title: h.title, kind: h.kind, sector: h.sector, parties: h.parties, signedAt: h.signedAt,
          ...(h.session ? { session: h.session } : {}),
          commitments: group.map((r) => ({ commitmentId: r.commitment.id, title: r.commitment.title, dueDate: r.commitment.dueDate!, responsible: { party: r.commitment.party, institution: r.commitment.institution } })),
        },
      });
      for (const r of group) {
        items.set(r.row, { row: r.row, agreementId, commitmentId: r.commitment.id, outcome: 'created', actions: [r === head ? 'create_agreement' : 'add_commitment'] });
        steps.push(...followUps(r, null, (c, m) => problem(r.row, c, m)));
      }
    } else {
      const a: ExistingAgreement = start;
      const h = head.agreement;
      const fixed = (c: Column, what: string) => problem(head.row, c, `differs from the ledger's ${what}: it changes only through a correction`);
      if (h.title !== a.title) fixed('agreement_title', 'title');
      if (h.kind !== a.kind) fixed('kind', 'kind');
      if (h.sector !== a.sector) fixed('sector', 'sector');
      if (!sameParties(h.parties, a.parties)) fixed('parties', `parties (${a.parties.join(';')})`);
      if (h.signedAt !== a.signedAt) fixed('signed_at', `signing date (${a.signedAt})`);
      if (JSON.stringify(h.session) !== JSON.stringify(a.session)) fixed('session_name', 'session');
      for (const r of group) {
        const c = r.commitment;
        const held = a.commitments.find((x) => x.id === c.id);
        const rowProblem = (col: Column, m: string) => problem(r.row, col, m);
        if (!held) {
          if (c.dueDate === null) {
            followUps(r, null, rowProblem);
            continue;
          }
          steps.push({ row: r.row, column: 'commitment_id', action: 'add_commitment', command: { type: 'AddCommitment', commitment: { commitmentId: c.id, title: c.title, dueDate: c.dueDate, responsible: { party: c.party, institution: c.institution } } } });
          items.set(r.row, { row: r.row, agreementId, commitmentId: c.id, outcome: 'created', actions: ['add_commitment'] });
          steps.push(...followUps(r, null, rowProblem));
          continue;
        }
        if (c.title !== held.title) rowProblem('commitment_title', "differs from the ledger's title: it changes only through a correction");
        if (c.party !== held.responsible.party) rowProblem('responsible_party', `differs from the ledger's ${held.responsible.party}: it changes only through a correction`);
        if (c.institution !== held.responsible.institution) rowProblem('responsible_institution', "differs from the ledger's institution: it changes only through a correction");
        const more = followUps(r, held, rowProblem);
        steps.push(...more);
        items.set(r.row, { row: r.row, agreementId, commitmentId: c.id, outcome: more.length ? 'updated' : 'unchanged', actions: more.map((s) => s.action) });
      }
    }
    for (const s of steps) {
      const item = items.get(s.row);
      if (item && !item.actions.includes(s.action)) item.actions.push(s.action);
    }
    // Each command decided against the state the ones before it leave: the domain's rules and
    // the key's party scope speak for the row that asked for it, and nothing is appended.
    let state: AgreementState = start;
    for (const s of steps) {
      try {
        for (const e of decider.decide(s.command, state, time)) state = decider.evolve(state, { ...e, occurredAt: deps.now });
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        const detail = err.errors.length ? `${err.message}: ${err.errors.map((e) => `${e.path} ${e.message}`).join('; ')}` : err.message;
        const column = err.kind === 'forbidden' && s.action === 'create_agreement' ? 'parties' : err.kind === 'forbidden' && s.action === 'add_commitment' ? 'responsible_party' : s.column;
        problem(s.row, column, err.kind === 'forbidden' ? `forbidden: ${detail}` : detail);
      }
    }
    agreements.push({ agreementId, revision, steps });
    plan.push(...items.values());
  }

  plan.sort((x, y) => x.row - y.row);
  problems.sort((x, y) => x.row - y.row || x.column.localeCompare(y.column));
  const summary: ImportSummary = {
    created: {
      agreements: agreements.filter((a) => a.steps[0]?.action === 'create_agreement').length,
      commitments: plan.filter((p) => p.outcome === 'created').length,
    },
    updated: plan.filter((p) => p.outcome === 'updated').length,
    unchanged: plan.filter((p) => p.outcome === 'unchanged').length,
    rows: sheet.rows.length,
    plan,
  };
  return { summary, problems, agreements };
}

/** Runs a plan that had no problem; answers the position of the last event appended (null: nothing to do). */
export async function applyImport(planned: Planned, deps: { eventStore: EventStore; principal: Principal; ctx: Omit<CommandContext, 'idempotencyScope' | 'ifMatch'>; sha256: string }): Promise<Position | null> {
  const decider = agreementDeciderFor(deps.principal);
  let position: Position | null = null;
  for (const a of planned.agreements) {
    for (const [i, s] of a.steps.entries()) {
      const result = await runCommand(deps.eventStore, agreementStream(a.agreementId), decider, s.command, {
        ...deps.ctx,
        idempotencyScope: `${deps.ctx.actor}|import|${deps.sha256}|${a.agreementId}|${i}`,
        // The first command stands on the revision the plan was decided on: a change since is a conflict, not a surprise.
        ifMatch: i === 0 ? a.revision : null,
      });
      if (result.appended.length) position = result.position;
    }
  }
  return position;
}
