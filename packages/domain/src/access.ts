// Who may do what. Roles come with an API key; an editor acts for some parties and may change
// only agreements of those parties, and only the commitments those parties are responsible for.
// Pure: the api applies these rules to the state a command is decided against.
import { z } from 'zod';
import type { AgreementCommand, AgreementState, ExistingAgreement } from './agreement-decider.js';
import { ForbiddenError, ValidationError, type FieldError } from './errors.js';
import type { Assessment } from './events.js';

export const ROLES = ['viewer', 'editor', 'auditor', 'admin'] as const;
export const role = z.enum(ROLES);
export type Role = z.infer<typeof role>;

/** What a route needs: `public` needs no key at all; `manage` (the service's own settings, such as webhooks) is for admins. */
export type Access = 'public' | 'read' | 'command' | 'audit' | 'manage';

const GRANTS: Record<Role, ReadonlySet<Access>> = {
  viewer: new Set(['public', 'read']),
  editor: new Set(['public', 'read', 'command']),
  auditor: new Set(['public', 'read', 'audit']),
  admin: new Set(['public', 'read', 'command', 'audit', 'manage']),
};

/** Who is calling: the key's name is the actor recorded on every event. */
export type Principal = { name: string; role: Role; parties: readonly string[] };

/** The principal of a service running with AUTH=off (loopback only). */
export const ANONYMOUS: Principal = { name: 'anonymous', role: 'admin', parties: [] };

export const allows = (principal: Principal, access: Access) => GRANTS[principal.role].has(access);

/** Roles that hold a grant, for messages that say what would have been needed. */
export const rolesWith = (access: Access) => ROLES.filter((r) => GRANTS[r].has(access));

/** Editors act within their parties; every other role that may command is unrestricted. */
const restricted = (p: Principal) => p.role === 'editor';

function refuse(p: Principal, what: string, path?: string): never {
  throw new ForbiddenError(
    `key ${p.name} acts for ${p.parties.join(', ') || 'no party'} and may not ${what}`,
    'outside_parties',
    path ? [{ path, message: `must be one of ${p.parties.join(', ') || '(none)'}` }] : [],
  );
}

const sharesParty = (p: Principal, parties: readonly string[]) => parties.some((x) => p.parties.includes(x));

/** A key without parties reads every agreement; a key with parties, any role, only those one of its parties is a party to. */
export const readsAll = (p: Principal) => p.parties.length === 0;
export const mayRead = (p: Principal, agreementParties: readonly string[]) => readsAll(p) || sharesParty(p, agreementParties);

/**
 * Throws ForbiddenError when `principal` may not run `command` on `state`. A command on an
 * agreement or commitment that does not exist passes here so the decider answers 404.
 */
export function checkAgreementCommand(principal: Principal, command: AgreementCommand, state: AgreementState): void {
  if (!restricted(principal)) return;
  if (command.type === 'SignAgreement') {
    if (!sharesParty(principal, command.parties)) refuse(principal, `record an agreement between ${command.parties.join(' and ')}`, 'parties');
    command.commitments.forEach((c, i) => {
      if (!principal.parties.includes(c.responsible.party)) refuse(principal, `record a commitment of ${c.responsible.party}`, `commitments.${i}.responsible.party`);
    });
    return;
  }
  if (!state.exists) return;
  if (!sharesParty(principal, state.parties)) refuse(principal, `change agreement ${state.id} between ${state.parties.join(' and ')}`);
  const commitmentParty = (id: string) => state.commitments.find((c) => c.id === id)?.responsible.party;
  switch (command.type) {
    case 'AddCommitment':
      if (!principal.parties.includes(command.commitment.responsible.party)) {
        refuse(principal, `add a commitment of ${command.commitment.responsible.party}`, 'responsible.party');
      }
      return;
    case 'ReportProgress':
    case 'AddMilestone':
    case 'RecordMilestoneStatus':
    case 'ImplementCommitment':
    case 'DelayCommitment':
    case 'CancelCommitment': {
      const party = commitmentParty(command.commitmentId);
      if (party !== undefined && !principal.parties.includes(party)) refuse(principal, `change commitment ${command.commitmentId}, for which ${party} is responsible`);
      return;
    }
    case 'CorrectEvent': {
      const target = command.target;
      const party = target ? commitmentParty(target.commitmentId) : undefined;
      if (party !== undefined && !principal.parties.includes(party)) refuse(principal, `correct commitment ${target!.commitmentId}, for which ${party} is responsible`);
      return;
    }
    case 'TerminateAgreement':
    case 'WithdrawDenunciation':
    // An editor notifies only its own parties' ratification: the decider checks the party it names.
    case 'NotifyRatification':
    // The lifecycle of the agreement as a whole is any of its parties' to record.
    case 'RecordEntryIntoForce':
    case 'ApplyProvisionally':
    case 'SuspendAgreement':
    case 'ResumeAgreement':
    case 'ExpireAgreement':
    case 'RecordAgreementReview':
      return;
    default: {
      const never: never = command;
      return never;
    }
  }
}

/** A review is an editor's to manage when every agreement in its scope is one of its parties'. */
export function checkReviewScope(principal: Principal, agreements: { id: string; parties: readonly string[] }[]): void {
  if (!restricted(principal)) return;
  for (const [i, a] of agreements.entries()) {
    if (!sharesParty(principal, a.parties)) refuse(principal, `schedule or change a review of agreement ${a.id} between ${a.parties.join(' and ')}`, `agreementIds.${i}`);
  }
}

/**
 * A review outcome's assessments, against the agreements they name: a commitment assessed must
 * exist (400), and an editor rates only commitments its parties are responsible for (403); an
 * assessment of a whole agreement is the co-chairs' view of it and needs no such check.
 */
export function checkOutcomeAssessments(
  principal: Principal,
  assessments: readonly Assessment[],
  agreements: ReadonlyMap<string, Pick<ExistingAgreement, 'commitments'>>,
  /** The assessments another party proposed for this review: an editor may repeat them as they stand. */
  proposed: readonly Assessment[] = [],
): void {
  const alreadyProposed = new Set(proposed.map((a) => JSON.stringify(a)));
  const missing: FieldError[] = [];
  assessments.forEach((a, i) => {
    if (a.commitmentId === undefined) return;
    const c = agreements.get(a.agreementId)?.commitments.find((x) => x.id === a.commitmentId);
    if (!c) {
      missing.push({ path: `assessments.${i}.commitmentId`, message: `commitment ${a.commitmentId} does not exist in agreement ${a.agreementId}` });
      return;
    }
    if (restricted(principal) && !principal.parties.includes(c.responsible.party) && !alreadyProposed.has(JSON.stringify(a))) {
      refuse(principal, `assess commitment ${c.id}, which ${c.responsible.party} is responsible for`, `assessments.${i}.commitmentId`);
    }
  });
  if (missing.length) throw new ValidationError('the outcome assesses commitments that do not exist', missing, 'unknown_commitment');
}
