// Why a commitment stands where it does: the agreement stream folded event by event, keeping
// each event that moved the commitment's status, progress or due date, with what it moved.
// Pure; the API reads the stream and calls explainCommitment.
import { z } from 'zod';
import { AGREEMENT_EVENT_TYPES, commitmentStatus, milestoneProgress, evolveAgreement, initialAgreementState, type AgreementEvent, type AgreementState, type CommitmentState } from '@cm/domain';
import { eventEnvelope, toTimed, type StoredEvent } from '@cm/event-store';

const change = <T extends z.ZodType>(value: T, what: string) =>
  z.object({
    from: value.nullable().describe(`The ${what} before the event; null when the event created the commitment`),
    to: value.describe(`The ${what} after the event`),
  });

export const explainStep = z.object({
  revision: z.number().int().describe('The revision of the event in the agreement stream'),
  position: z.string().describe('The global log position of the event'),
  type: z.string().describe('The event type, e.g. CommitmentAdded, ProgressReported, ProgressCorrected'),
  occurredAt: z.string().describe('When it happened in the world, as the caller said'),
  recordedAt: z.string().describe('When the service recorded it'),
  actor: z.string(),
  changed: z.object({
    status: change(commitmentStatus, 'status').optional(),
    progress: change(z.number().int(), 'progress (0-100)').optional(),
    dueDate: change(z.string().nullable(), 'due date (null: pending a relative rule\'s event)').optional(),
    milestoneProgress: change(z.number(), 'progress its milestones give (null: no milestones)').optional(),
  }).describe('Only the fields this event changed'),
});

export const commitmentExplanation = z.object({
  agreementId: z.string(),
  commitmentId: z.string(),
  revision: z.number().int().describe("The agreement stream's revision the explanation was folded up to"),
  current: z.object({ status: commitmentStatus, progress: z.number().int(), dueDate: z.string().nullable() }).describe('Where the commitment stands now (after the last step)'),
  steps: z.array(explainStep).describe('In stream order, every event that changed the status, progress or due date; the first is the CommitmentAdded, from null'),
});
export type ExplainStep = z.infer<typeof explainStep>;
export type CommitmentExplanation = z.infer<typeof commitmentExplanation>;

function commitmentOf(state: AgreementState, id: string): CommitmentState | undefined {
  return state.exists ? state.commitments.find((c) => c.id === id) : undefined;
}

function diff(before: CommitmentState | undefined, after: CommitmentState): ExplainStep['changed'] {
  const changed: ExplainStep['changed'] = {};
  if (before?.status !== after.status) changed.status = { from: before?.status ?? null, to: after.status };
  if (before?.progress !== after.progress) changed.progress = { from: before?.progress ?? null, to: after.progress };
  if (before?.dueDate !== after.dueDate) changed.dueDate = { from: before?.dueDate ?? null, to: after.dueDate };
  // Only once it has milestones: a commitment without any shows no such step.
  const from = before ? milestoneProgress(before.milestones) : null;
  const to = milestoneProgress(after.milestones);
  if (to !== null && from !== to) changed.milestoneProgress = { from, to };
  return changed;
}

/**
 * Explains one commitment from its agreement's whole stream, read from revision 0 in order.
 * Null when the stream holds no such commitment (or no agreement at all). Diffing the folded
 * state rather than reading event payloads means every way of moving a field (reports,
 * implementation, delays, corrections, kinds added later) is explained the way state sees it.
 */
export function explainCommitment(events: readonly StoredEvent[], commitmentId: string): CommitmentExplanation | null {
  let state = initialAgreementState();
  const steps: ExplainStep[] = [];
  let revision = -1;
  for (const e of events) {
    revision = e.revision;
    if (!AGREEMENT_EVENT_TYPES.has(e.type)) continue;
    const before = commitmentOf(state, commitmentId);
    state = evolveAgreement(state, toTimed<AgreementEvent>(e));
    const after = commitmentOf(state, commitmentId);
    if (!after) continue;
    const changed = diff(before, after);
    if (Object.keys(changed).length === 0) continue;
    steps.push({ ...eventEnvelope(e), changed });
  }
  const current = commitmentOf(state, commitmentId);
  if (!state.exists || !current) return null;
  return {
    agreementId: state.id,
    commitmentId,
    revision,
    current: { status: current.status, progress: current.progress, dueDate: current.dueDate },
    steps,
  };
}
