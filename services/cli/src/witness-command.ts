// `pnpm witness --log <url> --key <file> --state <file>`: a witness, run by either government.
// It fetches the log's verifier key and latest checkpoint, checks the checkpoint's signature, and
// checks it is consistent with the last checkpoint it accepted (kept in --state): same size, same
// root; larger, a consistency proof from the old size that verifies. Only then does it record the
// new one and print its C2SP tlog-cosignature/v1 line (signed with the Ed25519 key in --key,
// generated on first use). A checkpoint that is smaller, forked or not provably an extension is
// refused, with why, and the state is left as it was. The log's key is pinned on first use.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import {
  cosignatureLine, loadOrCreateNoteSigner, noteSignedBy, parseCheckpoint, parseNote, parseVerifierKey, verifyConsistency,
} from '@cm/event-store';

export type WitnessState = { origin: string; size: number; root: string; logKey: string };
export type WitnessResult =
  | { outcome: 'cosigned'; size: number; cosignature: string; previous: number | null; posted: string }
  | { outcome: 'refused'; reason: string };

export type WitnessOptions = {
  logUrl: string;
  keyFile: string;
  stateFile: string;
  /** The witness's key name (default "witness"). */
  name?: string;
  /** Bearer secret of an auditor API key of the log. */
  apiKey?: string | null;
  now?: () => Date;
  fetch?: typeof fetch;
};

export async function runWitness(o: WitnessOptions): Promise<WitnessResult> {
  const get = async (path: string) => {
    const res = await (o.fetch ?? fetch)(new URL(path, o.logUrl.replace(/\/*$/, '/')), { headers: o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {} });
    const body = await res.text();
    if (!res.ok) throw new Error(`GET ${path} answered ${res.status}: ${body.slice(0, 300)}`);
    return body;
  };
  const refused = (reason: string): WitnessResult => ({ outcome: 'refused', reason });
  const state: WitnessState | null = existsSync(o.stateFile) ? (JSON.parse(readFileSync(o.stateFile, 'utf8')) as WitnessState) : null;

  const logKey = (await get('v1/log/key')).trim();
  const verifier = parseVerifierKey(logKey);
  if (state && state.logKey !== logKey) return refused(`the log's key changed from ${state.logKey} to ${logKey}: a new key is accepted only by starting a new state file`);
  const note = await get('v1/log/checkpoint');
  if (!noteSignedBy(note, verifier)) return refused('the checkpoint is not signed by the log\'s key');
  const { text } = parseNote(note);
  const cp = parseCheckpoint(text);
  if (cp.origin !== verifier.name) return refused(`the checkpoint's origin ${cp.origin} is not the key's name ${verifier.name}`);
  if (state) {
    if (cp.origin !== state.origin) return refused(`the checkpoint is for ${cp.origin}, this state for ${state.origin}`);
    const oldRoot = Buffer.from(state.root, 'base64');
    if (cp.size < state.size) return refused(`the log shrank: size ${cp.size} after the ${state.size} already co-signed`);
    if (cp.size === state.size && !cp.root.equals(oldRoot)) return refused(`fork: size ${cp.size} with root ${cp.root.toString('base64')}, but ${state.root} was co-signed for that size`);
    if (cp.size > state.size) {
      const proof = JSON.parse(await get(`v1/log/proofs/consistency?from=${state.size}&to=${cp.size}`)) as { hashes: string[] };
      const hashes = proof.hashes.map((h) => Buffer.from(h, 'base64'));
      if (!verifyConsistency(state.size, cp.size, oldRoot, cp.root, hashes)) {
        return refused(`inconsistent: the log of size ${cp.size} does not extend the one of size ${state.size} co-signed before (an event in it was changed, removed or reordered)`);
      }
    }
  }
  const witness = loadOrCreateNoteSigner(o.keyFile, o.name ?? 'witness');
  const cosignature = cosignatureLine(witness, text, Math.floor((o.now ?? (() => new Date()))().getTime() / 1000));
  const next: WitnessState = { origin: cp.origin, size: cp.size, root: cp.root.toString('base64'), logKey };
  writeFileSync(`${o.stateFile}.tmp`, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${o.stateFile}.tmp`, o.stateFile);
  // Handed back to the log, which serves it with the checkpoint; the log may refuse it (a witness it is not configured with).
  let posted: string;
  try {
    const res = await (o.fetch ?? fetch)(new URL('v1/log/cosignatures', o.logUrl.replace(/\/*$/, '/')), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}) },
      body: JSON.stringify({ size: cp.size, cosignature }),
    });
    posted = res.ok ? 'accepted by the log' : `refused by the log (${res.status}): ${(await res.text()).slice(0, 300)}`;
  } catch (err) {
    posted = `not delivered: ${err instanceof Error ? err.message : String(err)}`;
  }
  return { outcome: 'cosigned', size: cp.size, cosignature, previous: state?.size ?? null, posted };
}

