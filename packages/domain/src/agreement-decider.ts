// The agreement decider: commands on one agreement stream become events; events fold into
// state. Pure: time, ids and the actor arrive inside the command.
import type { AgreementEvent, Assessment, Timed } from './events.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError, type FieldError } from './errors.js';
import type { AgreementKind, AgreementLifecycle, CommitmentStatus, DueRule, EntryIntoForceMode, MilestoneStatus, Responsible, Session } from './primitives.js';

/**
 * When a command runs: `now` is the server's clock as the command context carries it, and
 * `occurredAt` when the caller says it happened in the world (default: now). The decider never
 * reads a clock itself.
 */
export type CommandTime = { now: string; occurredAt: string };

/**
 * The signing date names a day without a time zone: an event may be dated from the start of that
 * day in the earliest time zone (UTC+14), so a signing at 01:00 in Moscow (22:00 UTC the day
 * before) is no earlier than its own date. Nothing is dated before that. A commitment's events
 * are dated no earlier than its addition, with no tolerance (0): what happened to it before it
 * was recorded as a commitment is told in its description, not as a report.
 */
export const SIGNING_TOLERANCE_MS = 14 * 3600_000;

/** The first instant an event of an agreement signed on `signedAt` may be dated. */
export function earliestAfterSigning(signedAt: string): string {
  return new Date(Date.parse(`${signedAt}T00:00:00Z`) - SIGNING_TOLERANCE_MS).toISOString();
}

/** The signing day's latest date anywhere on Earth at `now`: a signing is never dated later. */
function latestSigningDate(now: string): string {
  return new Date(Date.parse(now) + SIGNING_TOLERANCE_MS).toISOString().slice(0, 10);
}

export type Delay = { reason: string; previousDueDate: string; newDueDate: string; at: string; revision?: number };

export type CommitmentState = {
  id: string;
  agreementId: string;
  title: string;
  description: string | null;
  responsible: Responsible;
  /** null while it follows a rule whose event has not happened (dueRule). */
  dueDate: string | null;
  originalDueDate: string | null;
  /** The rule the due date is counted by, when it is relative to an agreement's event. */
  dueRule: DueRule | null;
  /** Its steps, in the order added (absent on documents written before milestones). */
  milestones?: Milestone[];
  /** When the commitment was added (its CommitmentAdded's occurredAt): nothing happens to it before. */
  addedAt: string;
  status: CommitmentStatus;
  progress: number;
  lastUpdateAt: string | null;
  implementedAt: string | null;
  cancelledAt: string | null;
  cancellationReason: string | null;
  delays: Delay[];
  /** The revision of the event the current progress comes from (null: none reported). */
  progressRevision: number | null;
  /** The revision of the event the current due date comes from. */
  dueDateRevision: number;
};

/** Events that can be corrected later, by revision: what they set, on which commitment. */
export type Correctable = { commitmentId: string; kind: 'progress' | 'dueDate'; type: string };

/**
 * What the event at a revision would let a correction change, or null. The caller reads the
 * event a correction names and hands this to the command, so the state need not carry a map of
 * every correctable revision (which grew with the stream and was copied at every event).
 */
export function correctionTargetOf(event: { type: string; data: unknown }): Correctable | null {
  const commitmentId = (event.data as { commitmentId?: unknown }).commitmentId;
  if (typeof commitmentId !== 'string') return null;
  switch (event.type) {
    case 'ProgressReported':
      return { commitmentId, kind: 'progress', type: event.type };
    case 'CommitmentAdded':
    case 'CommitmentDelayed':
      return { commitmentId, kind: 'dueDate', type: event.type };
    default:
      return null;
  }
}

/** Months a denunciation waits before it takes effect, when the agreement does not say. */
export const DEFAULT_NOTICE_PERIOD_MONTHS = 6;

/** One party's notice: the agreement is in force until effectiveAt, terminated from then on. */
export type Denunciation = { byParty: string; reason: string; noticeAt: string; effectiveAt: string };

/** `instant` plus whole calendar months (UTC), clamped to the month's last day (31 Aug + 6 = 28/29 Feb). */
export function addMonths(instant: string, months: number): string {
  const d = new Date(instant);
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + months);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, last));
  return d.toISOString();
}

/**
 * The agreement's termination as it stands at `asOf`: an immediate termination, or a
 * denunciation whose notice period has run out by then; null while it is in force.
 */
export function terminationAt(
  a: { terminated: { at: string; reason: string } | null; denunciation?: Denunciation | null | undefined },
  asOf: string | undefined,
): { at: string; reason: string } | null {
  if (a.terminated) return a.terminated;
  const d = a.denunciation;
  if (d && asOf !== undefined && d.effectiveAt <= asOf) return { at: d.effectiveAt, reason: `denounced by ${d.byParty}: ${d.reason}` };
  return null;
}

export type AgreementState =
  | { exists: false }
  | {
      exists: true;
      id: string;
      title: string;
      kind: AgreementKind;
      sector: string;
      parties: string[];
      signedAt: string;
      session: Session | null;
      summary: string | null;
      commitments: CommitmentState[];
      terminated: { at: string; reason: string } | null;
      noticePeriodMonths: number;
      denunciation: Denunciation | null;
      lastReviewedAt: string | null;
      lastAssessments: Assessment[];
      /** How entry into force is established (see EntryIntoForceMode). */
      entryIntoForceMode?: EntryIntoForceMode;
      ratifications?: Ratification[];
      entryIntoForce?: EntryIntoForce | null;
      provisionalApplication?: { date: string } | null;
      suspension?: { date: string; reason: string } | null;
      expiry?: { date: string; reason: string | null } | null;
      /** Events applied so far: the revision the next event will have. */
      applied: number;
    };
export type ExistingAgreement = Extract<AgreementState, { exists: true }>;

export type Ratification = { party: string; date: string };
export type Milestone = {
  id: string; title: string; dueDate: string; weight: number;
  status: MilestoneStatus | 'scheduled'; note: string | null; evidenceUrl: string | null; statusAt: string | null;
};

/** The weights of a commitment's milestones add up to at most this: 100 when its progress is all milestones. */
export const MILESTONE_WEIGHT_TOTAL = 100;

/**
 * Progress its milestones give a commitment: met counts its whole weight, partially_met half,
 * over the weights of every milestone (so 100 only when each is met); null without milestones.
 */
export function milestoneProgress(milestones: readonly Milestone[] | undefined): number | null {
  if (!milestones || milestones.length === 0) return null;
  const total = milestones.reduce((n, m) => n + m.weight, 0);
  const done = milestones.reduce((n, m) => n + (m.status === 'met' ? m.weight : m.status === 'partially_met' ? m.weight / 2 : 0), 0);
  return Math.round((done / total) * 1000) / 10;
}
export type EntryIntoForce = { date: string; derived: boolean };

/** How a new agreement enters into force when its command does not say. */
export const DEFAULT_ENTRY_INTO_FORCE: EntryIntoForceMode = 'on_last_ratification';

/** A relative due date, counted from the day its event happened. */
export function dueDateFrom(rule: DueRule, eventDate: string): string {
  if (rule.months !== undefined) return addMonths(`${eventDate}T00:00:00.000Z`, rule.months).slice(0, 10);
  return new Date(Date.parse(`${eventDate}T00:00:00Z`) + (rule.days ?? 0) * 86_400_000).toISOString().slice(0, 10);
}

type LifecycleInput = Pick<ExistingAgreement, 'terminated' | 'entryIntoForce' | 'provisionalApplication' | 'suspension' | 'expiry'> & {
  denunciation?: Denunciation | null | undefined;
};

/**
 * Where the agreement stands as a treaty at `asOf`, first match wins: terminated (at once, or a
 * denunciation whose notice ran out); expired; suspended; in_force; provisionally_applied; signed.
 * Lifecycle dates are never in the future, so only a denunciation makes it depend on `asOf`.
 */
export function deriveLifecycle(a: LifecycleInput, asOf: string | undefined): AgreementLifecycle {
  if (terminationAt(a, asOf)) return 'terminated';
  if (a.expiry) return 'expired';
  if (a.suspension) return 'suspended';
  if (a.entryIntoForce) return 'in_force';
  if (a.provisionalApplication) return 'provisionally_applied';
  return 'signed';
}

/** Parties of an agreement not yet in force (nor ended) that have still to notify their ratification. */
export function awaitingRatification(a: ExistingAgreement, asOf: string): string[] {
  const lc = deriveLifecycle(a, asOf);
  if (lc !== 'signed' && lc !== 'provisionally_applied') return [];
  const done = new Set((a.ratifications ?? []).map((r) => r.party));
  return a.parties.filter((p) => !done.has(p));
}

export type CommitmentInput = {
  commitmentId: string;
  title: string;
  description?: string | undefined;
  /** A date, or a rule counting from an agreement's event. */
  dueDate: string | DueRule;
  responsible: Responsible;
};

export type AgreementCommand =
  | {
      type: 'SignAgreement';
      agreementId: string;
      title: string;
      kind: AgreementKind;
      sector: string;
      parties: string[];
      signedAt: string;
      session?: Session | undefined;
      summary?: string | undefined;
      noticePeriodMonths?: number | undefined;
      /** Default DEFAULT_ENTRY_INTO_FORCE. */
      entryIntoForce?: EntryIntoForceMode | undefined;
      commitments: CommitmentInput[];
    }
  /** By the parties the caller acts for (null: any party, as an admin). */
  | { type: 'NotifyRatification'; party: string; date: string; actingParties?: readonly string[] | null | undefined }
  /** A second record with another date corrects the first; `reason` is then required. */
  | { type: 'RecordEntryIntoForce'; date: string; reason?: string | undefined }
  | { type: 'ApplyProvisionally'; date: string; reason?: string | undefined }
  | { type: 'SuspendAgreement'; date: string; reason: string }
  | { type: 'ResumeAgreement'; date: string; reason?: string | undefined }
  | { type: 'ExpireAgreement'; date: string; reason?: string | undefined }
  | { type: 'AddCommitment'; commitment: CommitmentInput }
  | { type: 'ReportProgress'; commitmentId: string; percent: number; note?: string | undefined; evidenceUrl?: string | undefined }
  | { type: 'ImplementCommitment'; commitmentId: string; note?: string | undefined; evidenceUrl?: string | undefined }
  | { type: 'DelayCommitment'; commitmentId: string; reason: string; newDueDate: string }
  | { type: 'CancelCommitment'; commitmentId: string; reason: string }
  /**
   * By the parties the caller acts for (null: all of them, as an admin): an immediate
   * termination when, with a pending denunciation, every party has asked for it; otherwise a
   * denunciation that takes effect after the notice period from `now`.
   */
  | { type: 'TerminateAgreement'; reason: string; actingParties?: readonly string[] | null | undefined }
  | { type: 'WithdrawDenunciation'; reason?: string | undefined; actingParties?: readonly string[] | null | undefined }
  | { type: 'AddMilestone'; commitmentId: string; milestoneId: string; title: string; dueDate: string; weight: number }
  | { type: 'RecordMilestoneStatus'; commitmentId: string; milestoneId: string; status: MilestoneStatus; note?: string | undefined; evidenceUrl?: string | undefined }
  | {
      type: 'CorrectEvent';
      revision: number;
      /** correctionTargetOf(the event at `revision`), null when there is none there. */
      target: Correctable | null;
      percent?: number | undefined;
      dueDate?: string | undefined;
      reason: string;
    }
  | { type: 'RecordAgreementReview'; reviewId: string; heldAt: string; assessments: Assessment[] };

export const initialAgreementState = (): AgreementState => ({ exists: false });

function strip<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function checkCommitment(
  state: { parties: string[]; signedAt: string },
  c: CommitmentInput,
  path: string,
): FieldError[] {
  const errors: FieldError[] = [];
  if (!state.parties.includes(c.responsible.party)) {
    errors.push({ path: `${path}responsible.party`, message: `must be one of the agreement's parties (${state.parties.join(', ')})` });
  }
  if (typeof c.dueDate === 'string' && c.dueDate < state.signedAt) errors.push({ path: `${path}dueDate`, message: `must not be before the signing date ${state.signedAt}` });
  return errors;
}

/** Refuses an event dated before the agreement could have been signed (400 naming `path`). */
function requireAfterSigning(a: { signedAt: string }, occurredAt: string, path = 'occurredAt'): void {
  const earliest = earliestAfterSigning(a.signedAt);
  if (occurredAt < earliest) {
    throw new ValidationError(`${path} ${occurredAt} is before the agreement was signed (${a.signedAt})`, [
      { path, message: `must not be before the signing date ${a.signedAt} (${earliest} allowing for time zones)` },
    ]);
  }
}

/** Refuses an event on a commitment dated before the commitment was added (400 naming occurredAt). */
function requireAfterAddition(c: CommitmentState, occurredAt: string): void {
  if (occurredAt < c.addedAt) {
    throw new ValidationError(`occurredAt ${occurredAt} is before commitment ${c.id} was added (${c.addedAt})`, [
      { path: 'occurredAt', message: `must not be before the commitment was added (${c.addedAt})` },
    ]);
  }
}

function requireAgreement(state: AgreementState): ExistingAgreement {
  if (!state.exists) throw new NotFoundError('agreement not found', 'agreement_not_found');
  return state;
}

function requireOpen(state: AgreementState, now: string | undefined): ExistingAgreement {
  const a = requireAgreement(state);
  const t = terminationAt(a, now);
  if (t) throw new ConflictError(a.terminated ? `agreement ${a.id} is terminated` : `agreement ${a.id} is terminated since ${t.at} (${t.reason})`, 'agreement_terminated');
  if (a.expiry) throw new ConflictError(`agreement ${a.id} expired on ${a.expiry.date}; its record is closed`, 'agreement_expired');
  return a;
}

/** A lifecycle date: a day no earlier than the signing and not later than today anywhere on Earth (400 naming `path`). */
function requireLifecycleDate(a: { signedAt: string }, date: string, now: string, path = 'date'): void {
  if (date < a.signedAt) throw new ValidationError(`${path} ${date} is before the signing date ${a.signedAt}`, [{ path, message: `must not be before the signing date ${a.signedAt}` }]);
  if (date > latestSigningDate(now)) throw new ValidationError(`${path} ${date} is in the future`, [{ path, message: `must not be in the future (today is ${now.slice(0, 10)} UTC)` }]);
}

/**
 * The relative due dates an entry into force on `date` fixes or moves: commitments still open,
 * never delayed, whose date is pending or still the one the rule gave from `previous`.
 */
function dueDatesMovedBy(a: ExistingAgreement, date: string, previous: string | null) {
  const moved: { commitmentId: string; from: string | null; to: string }[] = [];
  for (const c of a.commitments) {
    if (!c.dueRule || c.status === 'implemented' || c.status === 'cancelled' || c.delays.length > 0) continue;
    const ruled = c.dueDate === null || (previous !== null && c.dueDate === dueDateFrom(c.dueRule, previous));
    const to = dueDateFrom(c.dueRule, date);
    if (ruled && c.dueDate !== to) moved.push({ commitmentId: c.id, from: c.dueDate, to });
  }
  return moved;
}

function requireActiveCommitment(a: ExistingAgreement, commitmentId: string): CommitmentState {
  const c = a.commitments.find((x) => x.id === commitmentId);
  if (!c) throw new NotFoundError(`commitment ${commitmentId} not found in agreement ${a.id}`, 'commitment_not_found');
  if (c.status === 'implemented' || c.status === 'cancelled') {
    throw new ConflictError(`commitment ${c.id} is ${c.status}; it can no longer change`, `commitment_${c.status}`);
  }
  return c;
}

/**
 * `time.now` is when the command is decided: a denunciation whose notice ran out by then has
 * terminated the agreement.
 */
export function decideAgreement(command: AgreementCommand, state: AgreementState, time: CommandTime): AgreementEvent[] {
  const now = time.now;
  switch (command.type) {
    case 'SignAgreement': {
      if (state.exists) throw new ConflictError(`agreement ${command.agreementId} already exists`, 'agreement_exists');
      const errors: FieldError[] = [];
      const parties = [...new Set(command.parties)];
      if (parties.length < 2) errors.push({ path: 'parties', message: 'must name at least two distinct parties' });
      const latest = latestSigningDate(time.now);
      if (command.signedAt > latest) errors.push({ path: 'signedAt', message: `must not be in the future (today is ${time.now.slice(0, 10)} UTC)` });
      else if (time.occurredAt < earliestAfterSigning(command.signedAt)) {
        errors.push({ path: 'occurredAt', message: `must not be before the signing date ${command.signedAt}` });
      }
      const seen = new Set<string>();
      command.commitments.forEach((c, i) => {
        if (seen.has(c.commitmentId)) errors.push({ path: `commitments.${i}.id`, message: `duplicate commitment id ${c.commitmentId}` });
        seen.add(c.commitmentId);
        errors.push(...checkCommitment({ parties, signedAt: command.signedAt }, c, `commitments.${i}.`));
      });
      if (errors.length) throw new ValidationError('the agreement is not valid', errors);
      const mode = command.entryIntoForce ?? DEFAULT_ENTRY_INTO_FORCE;
      return [
        {
          type: 'AgreementSigned',
          data: strip({
            agreementId: command.agreementId,
            title: command.title,
            kind: command.kind,
            sector: command.sector,
            parties,
            signedAt: command.signedAt,
            session: command.session,
            summary: command.summary,
            noticePeriodMonths: command.noticePeriodMonths,
            entryIntoForce: mode,
          }),
        },
        ...(mode === 'on_signature' ? [{ type: 'EntryIntoForceRecorded' as const, data: { date: command.signedAt, derived: true, movedDueDates: [] } }] : []),
        ...command.commitments.map((c) => commitmentAdded(command.agreementId, c, mode === 'on_signature' ? command.signedAt : null)),
      ];
    }
    case 'AddCommitment': {
      const a = requireOpen(state, now);
      if (a.commitments.some((c) => c.id === command.commitment.commitmentId)) {
        throw new ConflictError(`commitment ${command.commitment.commitmentId} already exists`, 'commitment_exists');
      }
      requireAfterSigning(a, time.occurredAt);
      const errors = checkCommitment(a, command.commitment, '');
      if (errors.length) throw new ValidationError('the commitment is not valid', errors);
      return [commitmentAdded(a.id, command.commitment, a.entryIntoForce?.date ?? null)];
    }
    case 'ReportProgress': {
      const a = requireOpen(state, now);
      requireAfterAddition(requireActiveCommitment(a, command.commitmentId), time.occurredAt);
      return [{ type: 'ProgressReported', data: strip({ commitmentId: command.commitmentId, percent: command.percent, note: command.note, evidenceUrl: command.evidenceUrl }) }];
    }
    case 'ImplementCommitment': {
      const a = requireOpen(state, now);
      requireAfterAddition(requireActiveCommitment(a, command.commitmentId), time.occurredAt);
      return [{ type: 'CommitmentImplemented', data: strip({ commitmentId: command.commitmentId, note: command.note, evidenceUrl: command.evidenceUrl }) }];
    }
    case 'DelayCommitment': {
      const a = requireOpen(state, now);
      const c = requireActiveCommitment(a, command.commitmentId);
      requireAfterAddition(c, time.occurredAt);
      if (c.dueDate === null) {
        throw new ConflictError(
          `commitment ${c.id} falls due relative to the agreement's ${c.dueRule?.relativeTo ?? 'event'}, which has not happened: there is no date to delay`,
          'due_date_pending',
          [{ path: 'newDueDate', message: 'the current due date is not known yet' }],
        );
      }
      if (command.newDueDate <= c.dueDate) {
        throw new ConflictError(
          `newDueDate must be later than the current due date ${c.dueDate}`,
          'due_date_not_later',
          [{ path: 'newDueDate', message: `must be later than ${c.dueDate}` }],
        );
      }
      return [{ type: 'CommitmentDelayed', data: { commitmentId: c.id, reason: command.reason, previousDueDate: c.dueDate, newDueDate: command.newDueDate } }];
    }
    case 'CancelCommitment': {
      const a = requireOpen(state, now);
      requireAfterAddition(requireActiveCommitment(a, command.commitmentId), time.occurredAt);
      return [{ type: 'CommitmentCancelled', data: { commitmentId: command.commitmentId, reason: command.reason } }];
    }
    case 'CorrectEvent': {
      // A terminated agreement's record is closed: a correction is a command like any other.
      const a = requireOpen(state, now);
      requireAfterSigning(a, time.occurredAt);
      const target = command.revision < a.applied ? command.target : null;
      if (!target) {
        throw new ValidationError('that revision cannot be corrected', [
          { path: 'revision', message: `revision ${command.revision} is not a progress report, a commitment or a delay of this agreement` },
        ]);
      }
      if (target.kind === 'progress') {
        if (command.percent === undefined || command.dueDate !== undefined) {
          throw new ValidationError(`revision ${command.revision} is a progress report: correct its percent`, [{ path: 'percent', message: `is required to correct a ${target.type}` }]);
        }
        return [{ type: 'ProgressCorrected', data: { commitmentId: target.commitmentId, correctsRevision: command.revision, percent: command.percent, reason: command.reason } }];
      }
      if (command.dueDate === undefined || command.percent !== undefined) {
        throw new ValidationError(`revision ${command.revision} sets a due date: correct its dueDate`, [{ path: 'dueDate', message: `is required to correct a ${target.type}` }]);
      }
      // The due date of what was implemented or cancelled judged it on time or late: it stays.
      requireActiveCommitment(a, target.commitmentId);
      if (command.dueDate < a.signedAt) {
        throw new ValidationError('a due date cannot be before the signing date', [{ path: 'dueDate', message: `must not be before the signing date ${a.signedAt}` }]);
      }
      return [{ type: 'DueDateCorrected', data: { commitmentId: target.commitmentId, correctsRevision: command.revision, dueDate: command.dueDate, reason: command.reason } }];
    }
    case 'TerminateAgreement': {
      const a = requireOpen(state, now);
      requireAfterSigning(a, time.occurredAt);
      const acting = command.actingParties == null ? a.parties : a.parties.filter((p) => command.actingParties!.includes(p));
      const agreed = new Set([...acting, ...(a.denunciation ? [a.denunciation.byParty] : [])]);
      // Every party wants it ended (an admin, a key of both, or the other side of a denunciation): at once.
      if (a.parties.every((p) => agreed.has(p))) return [{ type: 'AgreementTerminated', data: { reason: command.reason } }];
      if (a.denunciation) {
        throw new ConflictError(
          `agreement ${a.id} was already denounced by ${a.denunciation.byParty}; it terminates at ${a.denunciation.effectiveAt}`,
          'denunciation_pending',
        );
      }
      const byParty = acting[0];
      if (byParty === undefined) throw new ForbiddenError(`the caller acts for none of ${a.parties.join(', ')}`, 'outside_parties');
      return [{ type: 'AgreementDenounced', data: { byParty, reason: command.reason, noticeAt: now, effectiveAt: addMonths(now, a.noticePeriodMonths) } }];
    }
    case 'WithdrawDenunciation': {
      const a = requireOpen(state, now);
      const d = a.denunciation;
      if (!d) throw new ConflictError(`agreement ${a.id} has no pending denunciation`, 'no_denunciation');
      if (command.actingParties != null && !command.actingParties.includes(d.byParty)) {
        throw new ForbiddenError(`only ${d.byParty}, which denounced agreement ${a.id}, may withdraw the denunciation`, 'not_denouncing_party');
      }
      return [{ type: 'DenunciationWithdrawn', data: strip({ byParty: d.byParty, reason: command.reason }) }];
    }
    case 'AddMilestone': {
      const a = requireOpen(state, now);
      const c = requireActiveCommitment(a, command.commitmentId);
      requireAfterAddition(c, time.occurredAt);
      const milestones = c.milestones ?? [];
      if (milestones.some((m) => m.id === command.milestoneId)) throw new ConflictError(`milestone ${command.milestoneId} already exists in commitment ${c.id}`, 'milestone_exists');
      const used = milestones.reduce((n, m) => n + m.weight, 0);
      if (used + command.weight > MILESTONE_WEIGHT_TOTAL) {
        throw new ValidationError(`the milestones of commitment ${c.id} would weigh ${used + command.weight}, more than ${MILESTONE_WEIGHT_TOTAL}`, [
          { path: 'weight', message: `must be at most ${MILESTONE_WEIGHT_TOTAL - used}: the other milestones weigh ${used} of ${MILESTONE_WEIGHT_TOTAL}` },
        ]);
      }
      if (command.dueDate < a.signedAt) throw new ValidationError('a milestone is not due before the signing', [{ path: 'dueDate', message: `must not be before the signing date ${a.signedAt}` }]);
      const { commitmentId, milestoneId, title, dueDate, weight } = command;
      return [{ type: 'MilestoneAdded', data: { commitmentId, milestoneId, title, dueDate, weight } }];
    }
    case 'RecordMilestoneStatus': {
      const a = requireOpen(state, now);
      const c = requireActiveCommitment(a, command.commitmentId);
      requireAfterAddition(c, time.occurredAt);
      if (!(c.milestones ?? []).some((m) => m.id === command.milestoneId)) {
        throw new NotFoundError(`milestone ${command.milestoneId} not found in commitment ${c.id}`, 'milestone_not_found');
      }
      return [{ type: 'MilestoneStatusRecorded', data: strip({ commitmentId: c.id, milestoneId: command.milestoneId, status: command.status, note: command.note, evidenceUrl: command.evidenceUrl }) }];
    }
    case 'NotifyRatification': {
      const a = requireOpen(state, now);
      if (!a.parties.includes(command.party)) {
        throw new ValidationError(`${command.party} is not a party to agreement ${a.id}`, [{ path: 'party', message: `must be one of the agreement's parties (${a.parties.join(', ')})` }]);
      }
      if (command.actingParties != null && !command.actingParties.includes(command.party)) {
        throw new ForbiddenError(`the caller acts for ${command.actingParties.join(', ') || 'no party'} and may not notify the ratification of ${command.party}`, 'outside_parties', [
          { path: 'party', message: `must be one of ${command.actingParties.join(', ') || '(none)'}` },
        ]);
      }
      const ratifications = a.ratifications ?? [];
      const earlier = ratifications.find((r) => r.party === command.party);
      if (earlier) throw new ConflictError(`${command.party} already notified its ratification of agreement ${a.id} (${earlier.date})`, 'already_ratified');
      requireLifecycleDate(a, command.date, now);
      const events: AgreementEvent[] = [{ type: 'RatificationNotified', data: { party: command.party, date: command.date } }];
      const all = [...ratifications, { party: command.party, date: command.date }];
      if ((a.entryIntoForceMode ?? 'on_signature') === 'on_last_ratification' && !a.entryIntoForce && a.parties.every((p) => all.some((r) => r.party === p))) {
        const date = all.map((r) => r.date).sort().at(-1)!;
        events.push({ type: 'EntryIntoForceRecorded', data: { date, derived: true, movedDueDates: dueDatesMovedBy(a, date, null) } });
      }
      return events;
    }
    case 'RecordEntryIntoForce': {
      const a = requireOpen(state, now);
      requireLifecycleDate(a, command.date, now);
      const previous = a.entryIntoForce ?? null;
      if (previous && previous.date === command.date) throw new ConflictError(`agreement ${a.id} is in force since ${previous.date}`, 'already_in_force');
      if (previous && command.reason === undefined) {
        throw new ValidationError(`agreement ${a.id} is in force since ${previous.date}: say why the date is corrected`, [{ path: 'reason', message: `is required to correct the entry into force of ${previous.date}` }]);
      }
      return [{
        type: 'EntryIntoForceRecorded',
        data: strip({
          date: command.date,
          previousDate: previous?.date,
          reason: command.reason,
          movedDueDates: dueDatesMovedBy(a, command.date, previous?.date ?? null),
        }),
      }];
    }
    case 'ApplyProvisionally': {
      const a = requireOpen(state, now);
      requireLifecycleDate(a, command.date, now);
      if (a.entryIntoForce) throw new ConflictError(`agreement ${a.id} is in force since ${a.entryIntoForce.date}`, 'already_in_force');
      if (a.provisionalApplication) throw new ConflictError(`agreement ${a.id} is applied provisionally since ${a.provisionalApplication.date}`, 'already_provisionally_applied');
      return [{ type: 'ProvisionalApplicationStarted', data: strip({ date: command.date, reason: command.reason }) }];
    }
    case 'SuspendAgreement': {
      const a = requireOpen(state, now);
      requireLifecycleDate(a, command.date, now);
      if (a.suspension) throw new ConflictError(`agreement ${a.id} is suspended since ${a.suspension.date}`, 'already_suspended');
      if (!a.entryIntoForce && !a.provisionalApplication) throw new ConflictError(`agreement ${a.id} is neither in force nor applied provisionally: there is nothing to suspend`, 'not_in_force');
      return [{ type: 'AgreementSuspended', data: { date: command.date, reason: command.reason } }];
    }
    case 'ResumeAgreement': {
      const a = requireOpen(state, now);
      if (!a.suspension) throw new ConflictError(`agreement ${a.id} is not suspended`, 'not_suspended');
      requireLifecycleDate(a, command.date, now);
      if (command.date < a.suspension.date) {
        throw new ValidationError(`date ${command.date} is before the suspension (${a.suspension.date})`, [{ path: 'date', message: `must not be before the suspension on ${a.suspension.date}` }]);
      }
      return [{ type: 'AgreementResumed', data: strip({ date: command.date, reason: command.reason }) }];
    }
    case 'ExpireAgreement': {
      const a = requireOpen(state, now);
      requireLifecycleDate(a, command.date, now);
      return [{ type: 'AgreementExpired', data: strip({ date: command.date, reason: command.reason }) }];
    }
    case 'RecordAgreementReview': {
      // Appended after the review's ReviewHeld, which is already in the log: the outcome route
      // checks heldAt against each agreement (heldAtErrors) before it records anything.
      const a = requireAgreement(state);
      return [{ type: 'AgreementReviewed', data: { reviewId: command.reviewId, heldAt: command.heldAt, assessments: command.assessments.filter((x) => x.agreementId === a.id) } }];
    }
    default: {
      const unknown: never = command;
      throw new Error(`unknown command ${(unknown as { type: string }).type}`);
    }
  }
}

/**
 * What a review held at `heldAt` cannot have assessed on this agreement: the agreement before
 * its signing, a commitment before it was added. Paths name `heldAt`.
 */
export function heldAtErrors(a: ExistingAgreement, heldAt: string, assessments: readonly Assessment[]): FieldError[] {
  const earliest = earliestAfterSigning(a.signedAt);
  if (heldAt < earliest) return [{ path: 'heldAt', message: `must not be before agreement ${a.id} was signed (${a.signedAt})` }];
  const errors: FieldError[] = [];
  for (const x of assessments) {
    if (x.agreementId !== a.id || x.commitmentId === undefined) continue;
    const c = a.commitments.find((y) => y.id === x.commitmentId);
    if (c && heldAt < c.addedAt) errors.push({ path: 'heldAt', message: `must not be before commitment ${c.id} was added (${c.addedAt})` });
  }
  return errors.slice(0, 1);
}

/** `eventDates`: the day entry into force happened, when known, to fix a relative due date at once. */
function commitmentAdded(agreementId: string, c: CommitmentInput, entryIntoForce: string | null): AgreementEvent {
  const rule = typeof c.dueDate === 'string' ? null : c.dueDate;
  return {
    type: 'CommitmentAdded',
    data: strip({
      agreementId,
      commitmentId: c.commitmentId,
      title: c.title,
      description: c.description,
      dueDate: rule ? (entryIntoForce ? dueDateFrom(rule, entryIntoForce) : undefined) : (c.dueDate as string),
      dueRule: rule ?? undefined,
      responsible: c.responsible,
    }),
  };
}

function updateCommitment(
  state: ExistingAgreement,
  commitmentId: string,
  change: (c: CommitmentState) => CommitmentState,
): AgreementState {
  return { ...state, commitments: state.commitments.map((c) => (c.id === commitmentId ? change(c) : c)) };
}

export function evolveAgreement(state: AgreementState, event: Timed<AgreementEvent>): AgreementState {
  const next = applyEvent(state, event);
  if (!next.exists) return next;
  return { ...next, applied: (state.exists ? state.applied : 0) + 1 };
}

function applyEvent(state: AgreementState, event: Timed<AgreementEvent>): AgreementState {
  const revision = state.exists ? state.applied : 0;
  if (event.type === 'AgreementSigned') {
    const d = event.data;
    return {
      exists: true,
      id: d.agreementId,
      title: d.title,
      kind: d.kind,
      sector: d.sector,
      parties: d.parties,
      signedAt: d.signedAt,
      session: d.session ?? null,
      summary: d.summary ?? null,
      commitments: [],
      terminated: null,
      noticePeriodMonths: d.noticePeriodMonths ?? DEFAULT_NOTICE_PERIOD_MONTHS,
      denunciation: null,
      lastReviewedAt: null,
      lastAssessments: [],
      entryIntoForceMode: d.entryIntoForce ?? 'on_signature',
      ratifications: [],
      // Agreements recorded before lifecycles were: in force from their signing.
      entryIntoForce: d.entryIntoForce === undefined ? { date: d.signedAt, derived: true } : null,
      provisionalApplication: null,
      suspension: null,
      expiry: null,
      applied: 0,
    };
  }
  // Events other than the first one only ever follow AgreementSigned in a stream.
  if (!state.exists) return state;
  const at = event.occurredAt;
  switch (event.type) {
    case 'CommitmentAdded': {
      const d = event.data;
      return {
        ...state,
        commitments: [
          ...state.commitments,
          {
            id: d.commitmentId,
            agreementId: state.id,
            title: d.title,
            description: d.description ?? null,
            responsible: d.responsible,
            dueDate: d.dueDate ?? null,
            originalDueDate: d.dueDate ?? null,
            dueRule: d.dueRule ?? null,
            addedAt: at,
            status: 'pending',
            progress: 0,
            lastUpdateAt: null,
            implementedAt: null,
            cancelledAt: null,
            cancellationReason: null,
            delays: [],
            progressRevision: null,
            dueDateRevision: revision,
          },
        ],
      };
    }
    case 'ProgressReported':
      return updateCommitment(state, event.data.commitmentId, (c) => ({
        ...c,
        progress: event.data.percent,
        status: c.status === 'delayed' ? 'delayed' : 'in_progress',
        lastUpdateAt: at,
        progressRevision: revision,
      }));
    case 'CommitmentImplemented':
      return updateCommitment(state, event.data.commitmentId, (c) => ({
        ...c,
        progress: 100,
        status: 'implemented',
        implementedAt: at,
        lastUpdateAt: at,
        // From now on progress is the implementation's, whatever a correction says of an older report.
        progressRevision: null,
      }));
    case 'CommitmentDelayed':
      return updateCommitment(state, event.data.commitmentId, (c) => ({
        ...c,
        status: 'delayed',
        dueDate: event.data.newDueDate,
        lastUpdateAt: at,
        delays: [...c.delays, { reason: event.data.reason, previousDueDate: event.data.previousDueDate, newDueDate: event.data.newDueDate, at, revision }],
        dueDateRevision: revision,
      }));
    case 'ProgressCorrected': {
      const { correctsRevision, percent } = event.data;
      return updateCommitment(state, event.data.commitmentId, (c) => (c.progressRevision === correctsRevision ? { ...c, progress: percent } : c));
    }
    case 'DueDateCorrected': {
      const { correctsRevision, dueDate } = event.data;
      return updateCommitment(state, event.data.commitmentId, (c) => ({
        ...c,
        dueDate: c.dueDateRevision === correctsRevision ? dueDate : c.dueDate,
        // A due date is set by the commitment's addition or by one of its delays: not a delay, so the addition.
        originalDueDate: c.delays.some((d) => d.revision === correctsRevision) ? c.originalDueDate : dueDate,
        // The delay that followed the corrected date moved it from the corrected value.
        delays: c.delays.map((d, i, all) => {
          const corrected = d.revision === correctsRevision ? { ...d, newDueDate: dueDate } : d;
          const setBefore = i === 0 ? !all.some((x) => x.revision === correctsRevision) : all[i - 1]!.revision === correctsRevision;
          return setBefore ? { ...corrected, previousDueDate: dueDate } : corrected;
        }),
      }));
    }
    case 'CommitmentCancelled':
      return updateCommitment(state, event.data.commitmentId, (c) => ({
        ...c,
        status: 'cancelled',
        cancelledAt: at,
        cancellationReason: event.data.reason,
        lastUpdateAt: at,
      }));
    case 'AgreementTerminated':
      return { ...state, terminated: { at, reason: event.data.reason } };
    case 'AgreementDenounced': {
      const { byParty, reason, noticeAt, effectiveAt } = event.data;
      return { ...state, denunciation: { byParty, reason, noticeAt, effectiveAt } };
    }
    case 'DenunciationWithdrawn':
      return { ...state, denunciation: null };
    case 'MilestoneAdded': {
      const { milestoneId, title, dueDate, weight } = event.data;
      return updateCommitment(state, event.data.commitmentId, (c) => ({
        ...c,
        milestones: [...(c.milestones ?? []), { id: milestoneId, title, dueDate, weight, status: 'scheduled', note: null, evidenceUrl: null, statusAt: null }],
      }));
    }
    case 'MilestoneStatusRecorded': {
      const d = event.data;
      return updateCommitment(state, d.commitmentId, (c) => ({
        ...c,
        lastUpdateAt: at,
        milestones: (c.milestones ?? []).map((m) => (m.id === d.milestoneId ? { ...m, status: d.status, note: d.note ?? null, evidenceUrl: d.evidenceUrl ?? null, statusAt: at } : m)),
      }));
    }
    case 'RatificationNotified':
      return { ...state, ratifications: [...(state.ratifications ?? []), { party: event.data.party, date: event.data.date }] };
    case 'EntryIntoForceRecorded': {
      const moved = new Map(event.data.movedDueDates.map((m) => [m.commitmentId, m.to]));
      return {
        ...state,
        entryIntoForce: { date: event.data.date, derived: event.data.derived ?? false },
        commitments: state.commitments.map((c) => {
          const to = moved.get(c.id);
          return to === undefined ? c : { ...c, dueDate: to, originalDueDate: to };
        }),
      };
    }
    case 'ProvisionalApplicationStarted':
      return { ...state, provisionalApplication: { date: event.data.date } };
    case 'AgreementSuspended':
      return { ...state, suspension: { date: event.data.date, reason: event.data.reason } };
    case 'AgreementResumed':
      return { ...state, suspension: null };
    case 'AgreementExpired':
      return { ...state, expiry: { date: event.data.date, reason: event.data.reason ?? null } };
    case 'AgreementReviewed':
      return state.lastReviewedAt && state.lastReviewedAt > event.data.heldAt
        ? state
        : { ...state, lastReviewedAt: event.data.heldAt, lastAssessments: event.data.assessments };
    default: {
      const unknown: never = event;
      throw new Error(`unknown event ${(unknown as { type: string }).type}`);
    }
  }
}

export function foldAgreement(events: Iterable<Timed<AgreementEvent>>): AgreementState {
  let s = initialAgreementState();
  for (const e of events) s = evolveAgreement(s, e);
  return s;
}
