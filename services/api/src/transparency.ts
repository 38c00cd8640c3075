// The log's transparency: its Merkle tree (@cm/event-store log-tree.ts) and the checkpoints of it
// the service signs. A checkpoint is signed afresh only when the tree has grown and the last one
// is a minute old (CHECKPOINT_INTERVAL_MS), so a flood of requests signs nothing new; while the log
// grows the one served is at most a minute behind it. A witness or auditor keeps checkpoints and
// asks for proofs against their sizes.
import { checkpointBody, signNote, verifierKey, type LogTree, type NoteSigner } from '@cm/event-store';

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
};

export function createTransparency(options: { tree: LogTree; origin: string; signer: NoteSigner; now: () => Date; intervalMs?: number }): Transparency {
  const { tree, origin, signer, now } = options;
  const intervalMs = options.intervalMs ?? CHECKPOINT_INTERVAL_MS;
  let cached: { note: string; size: number; at: number } | null = null;
  let signatures = 0;
  let inFlight: Promise<{ note: string; size: number }> | null = null;
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
      return inFlight.then((c) => ({ note: c.note, size: c.size }));
    },
    signed: () => signatures,
  };
}

/** The checkpoint origin when LOG_ORIGIN is not set: PUBLIC_URL's host and path (no scheme), else a local name. */
export function defaultLogOrigin(publicUrl: string | null): string {
  if (!publicUrl) return 'commitment-monitor.localhost';
  const u = new URL(publicUrl);
  return `${u.host}${u.pathname.replace(/\/+$/, '')}`;
}
