// API keys at rest: a JSON file holding, per key, its name (the actor on every event), role,
// parties and the SHA-256 of its secret; never the secret itself. The service re-reads the file
// when it changes, so keys are added, rotated and revoked without a restart.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { role, type Principal } from '@cm/domain';

export const keyName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'must be 1-64 letters, digits, dots, dashes, underscores or @, starting with a letter or digit');

const keyEntry = z
  .object({
    name: keyName,
    role,
    parties: z.array(z.string().regex(/^[A-Z]{3}$/, 'must be ISO 3166-1 alpha-3 codes such as VEN')).default([]),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the lowercase hex SHA-256 of the secret'),
    createdAt: z.string().optional(),
  })
  .refine((k) => k.role !== 'editor' || k.parties.length > 0, { message: 'an editor key needs at least one party', path: ['parties'] });

export const apiKeysFile = z.object({ keys: z.array(keyEntry) }).superRefine((f, ctx) => {
  const seen = new Set<string>();
  f.keys.forEach((k, i) => {
    if (seen.has(k.sha256)) ctx.addIssue({ code: 'custom', path: ['keys', i, 'sha256'], message: 'the same secret is listed twice' });
    seen.add(k.sha256);
  });
});
export type ApiKeysFile = z.infer<typeof apiKeysFile>;
export type ApiKeyEntry = ApiKeysFile['keys'][number];

export class ApiKeysError extends Error {}

export const hashSecret = (secret: string) => createHash('sha256').update(secret, 'utf8').digest('hex');

/** 256 random bits; the prefix makes a leaked secret easy to find with secret scanners. */
export const generateSecret = () => `cm_${randomBytes(32).toString('base64url')}`;

/** The short id of a key (the start of its hash), safe to show and log. */
export const keyId = (entry: { sha256: string }) => entry.sha256.slice(0, 12);

export function readApiKeysFile(path: string): ApiKeysFile {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ApiKeysError(`cannot read API_KEYS_FILE ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; create it with \`pnpm keys add\` or unset API_KEYS_FILE`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ApiKeysError(`API_KEYS_FILE ${path} is not valid JSON`);
  }
  const parsed = apiKeysFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ApiKeysError(`API_KEYS_FILE ${path}: ${issue.path.join('.') || 'file'} ${issue.message}`);
  }
  return parsed.data;
}

/** Writes the whole file at once (temporary file, then rename), readable by its owner only. */
export function writeApiKeysFile(path: string, file: ApiKeysFile): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(apiKeysFile.parse(file), null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Where the embedded start keeps its keys when API_KEYS_FILE is not set. */
export const defaultApiKeysPath = (dataDir: string) => join(dataDir, 'api-keys.json');

/** The admin key a first start will create: its secret, and `write` to store its hash. */
export type FirstApiKey = { name: string; secret: string; write(): void };

/**
 * The safe first start: when there is no keys file yet, plan an admin key. Nothing is written
 * until `write()`, which the service calls once it listens, so a start that fails (a port in
 * use) creates no key whose secret nobody kept. Null when the file exists.
 */
export function planFirstApiKey(path: string, now: () => Date = () => new Date()): FirstApiKey | null {
  if (existsSync(path)) return null;
  const secret = generateSecret();
  return {
    name: 'admin',
    secret,
    write() {
      if (existsSync(path)) throw new ApiKeysError(`${path} appeared while the service started; the first admin key was not created: use pnpm keys add --role admin`);
      writeApiKeysFile(path, { keys: [{ name: 'admin', role: 'admin', parties: [], sha256: hashSecret(secret), createdAt: now().toISOString() }] });
    },
  };
}

/** Plans and writes the first admin key at once (for tools that need no listening service). */
export function ensureApiKeysFile(path: string, now: () => Date = () => new Date()): { name: string; secret: string } | null {
  const first = planFirstApiKey(path, now);
  first?.write();
  return first && { name: first.name, secret: first.secret };
}

export type KeyRing = {
  /** The principal a presented secret stands for, or null. */
  lookup(secret: string): Principal | null;
  /** Re-reads the file now (after this process changed it). */
  reload(): void;
  readonly size: number;
};

/**
 * The keys of `path`, re-read when the file's modification time or size changes (checked at
 * most once per `recheckMs`). A file that turns invalid keeps the last good keys and reports
 * through `onError`, so a typo while editing never locks everybody out. A file that disappears
 * is another matter (deleted to revoke everything, or a volume gone): no key is valid until it
 * is back, said once through `onMissing`.
 */
const MISSING = 'missing';

export function createKeyRing(
  path: string,
  options: {
    recheckMs?: number; onError?: (err: Error) => void; onReload?: (count: number) => void; onMissing?: (path: string) => void; missingIsEmpty?: boolean;
  } = {},
): KeyRing {
  const recheckMs = options.recheckMs ?? 1000;
  let byHash = new Map<string, Principal>();
  let stamp = '';
  let checkedAt = 0;
  let lastError = '';
  const load = () => {
    if (stamp !== '' && !existsSync(path)) {
      if (stamp !== MISSING) {
        byHash = new Map();
        stamp = MISSING;
        options.onMissing?.(path);
      }
      return;
    }
    // Before the first start's key is written the ring is empty: every request is refused.
    if (options.missingIsEmpty && !existsSync(path)) return;
    const s = statSync(path);
    const next = `${s.mtimeMs}:${s.size}:${s.ino}`;
    if (next === stamp) return;
    const file = readApiKeysFile(path);
    byHash = new Map(file.keys.map((k) => [k.sha256, { name: k.name, role: k.role, parties: k.parties }]));
    stamp = next;
    options.onReload?.(byHash.size);
  };
  load();
  return {
    lookup(secret) {
      const t = Date.now();
      if (t - checkedAt >= recheckMs) {
        checkedAt = t;
        try {
          load();
          lastError = '';
        } catch (err) {
          // Said once per distinct problem, not once per second.
          if ((err as Error).message !== lastError) options.onError?.(err as Error);
          lastError = (err as Error).message;
        }
      }
      return byHash.get(hashSecret(secret)) ?? null;
    },
    reload() {
      load();
    },
    get size() {
      return byHash.size;
    },
  };
}
