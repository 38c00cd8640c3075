// The log's transparency: its Merkle tree (@cm/event-store log-tree.ts) and the checkpoints of it
// the service signs. A checkpoint is signed afresh only when the tree has grown and the last one
// is a minute old (CHECKPOINT_INTERVAL_MS), so a flood of requests signs nothing new; while the log
// grows the one served is at most a minute behind it. A witness or auditor keeps checkpoints and
// asks for proofs against their sizes.
import { ForbiddenError, ValidationError } from '@cm/domain';
import { checkpointBody, signNote, verifierKey, verifyCosignature, type LogTree, type NoteSigner, type NoteVerifier } from '@cm/event-store';

export const CHECKPOINT_INTERVAL_MS = 60_000;

export type Transparency = {
  tree: LogTree;
  origin: string;
  signer: NoteSigner;
  /** The verifier key clients check checkpoints against (`GET /v1/log/key`). */
  verifierKey: string;
  /** The latest checkpoint as a signed note, and the tree size it states. */
  checkpoint(): Promise<{ note: string; size: number }>;
  /** How many checkpoints this process signed. */
  signed(): number;
  /**
   * Takes a witness's tlog-cosignature/v1 of the checkpoint of `size`, verified against the
   * witness keys configured (WITNESS_KEYS); served after the service's signature while that is
   * the checkpoint served. Kept in memory, the latest per witness.
   */
  addCosignature(size: number, line: string): Promise<void>;
};

export function createTransparency(options: { tree: LogTree; origin: string; signer: NoteSigner; now: () => Date; intervalMs?: number; witnesses?: NoteVerifier[] }): Transparency {
  const { tree, origin, signer, now } = options;
  const intervalMs = options.intervalMs ?? CHECKPOINT_INTERVAL_MS;
  let cached: { note: string; size: number; at: number } | null = null;
  let signatures = 0;
  let inFlight: Promise<{ note: string; size: number }> | null = null;
  const witnesses = options.witnesses ?? [];
  /** size -> witness name -> cosignature line. */
  const cosignatures = new Map<number, Map<string, string>>();
  async function refresh() {
    const size = await tree.sync();
    const at = now().getTime();
    if (cached && (cached.size === size || at - cached.at < intervalMs)) return cached;
    const note = signNote(checkpointBody({ origin, size, root: tree.root(size) }), signer);
    signatures++;
    cached = { note, size, at };
    return cached;
  }
  return {
    tree, origin, signer,
    verifierKey: verifierKey(signer),
    checkpoint() {
      // Requests arriving together share one look at the tree.
      inFlight ??= refresh().finally(() => {
        inFlight = null;
      });
      return inFlight.then((c) => ({ note: c.note + [...(cosignatures.get(c.size)?.values() ?? [])].join(''), size: c.size }));
    },
    signed: () => signatures,
    async addCosignature(size, line) {
      const name = /^\u2014 (\S+) /.exec(line)?.[1];
      const witness = witnesses.find((w) => w.name === name);
      if (!witness) throw new ForbiddenError(`${name ?? 'the line'} is not a witness this deployment is configured with (WITNESS_KEYS)`, 'unknown_witness');
      const n = await tree.sync();
      if (size > n) throw new ValidationError(`size ${size} is beyond the log, which holds ${n} events`, [{ path: 'size', message: `must be at most ${n}` }], 'tree_size_beyond_log');
      const text = checkpointBody({ origin, size, root: tree.root(size) });
      if (!verifyCosignature(line, text, witness)) {
        throw new ValidationError(`the cosignature of ${witness.name} does not verify over the checkpoint of size ${size}`, [{ path: 'cosignature', message: 'must be a tlog-cosignature/v1 of this log\'s checkpoint of that size' }], 'cosignature_invalid');
      }
      if (!cosignatures.has(size)) cosignatures.set(size, new Map());
      cosignatures.get(size)!.set(witness.name, line.endsWith('\n') ? line : `${line}\n`);
      for (const s of cosignatures.keys()) if (s < size) cosignatures.delete(s);
    },
  };
}

/** The checkpoint origin when LOG_ORIGIN is not set: PUBLIC_URL's host and path (no scheme), else a local name. */
export function defaultLogOrigin(publicUrl: string | null): string {
  if (!publicUrl) return 'commitment-monitor.localhost';
  const u = new URL(publicUrl);
  return `${u.host}${u.pathname.replace(/\/+$/, '')}`;
}
