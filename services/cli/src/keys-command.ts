// `keys add|list|rotate|revoke`: the operator's hands on the API keys file the service reads
// (API_KEYS_FILE, else DATA_DIR/api-keys.json). Only the SHA-256 of a secret is ever written; a
// secret is printed once, when it is made. The running service re-reads the file within about a
// second, so none of this needs a restart.
// Exit codes: 0 done, 1 nothing matched (rotate or revoke of an unknown key), 64 bad usage or a
// refused key (duplicate name, editor without parties, bad party code), 78 the keys file is
// missing (list, rotate, revoke) or unreadable, 2 it could not be written, 75 another keys
// command held the file's lock for longer than KEYS_LOCK_WAIT_MS (add, rotate and revoke lock
// `<file>.lock` while they read, change and write it; see keys-lock.ts).
import { existsSync } from 'node:fs';
import { KeysLockBusy, acquireKeysLock } from './keys-lock.js';
import {
  ApiKeysError, generateSecret, hashSecret, keyId, keyName, readApiKeysFile, writeApiKeysFile,
  type ApiKeyEntry, type ApiKeysFile,
} from '@cm/platform';

type RoleName = ApiKeyEntry['role'];
// The roles are @cm/domain's, which this service does not depend on: `satisfies` makes the
// compiler check that this table names every one of them and nothing else.
const ROLES_LISTED = { viewer: true, editor: true, auditor: true, admin: true } satisfies Record<RoleName, true>;
const ROLE_NAMES = Object.keys(ROLES_LISTED) as RoleName[];
const PARTY = /^[A-Z]{3}$/;

export const KEYS_USAGE = [
  'usage: cli keys add --name <name> --role <viewer|editor|auditor|admin> [--parties VEN,RUS]',
  '       cli keys list',
  '       cli keys rotate <name>',
  '       cli keys revoke <name|id>',
  '  (pnpm keys ...; the file is API_KEYS_FILE, else DATA_DIR/api-keys.json)',
  '',
  '  add      makes a key and prints its secret once; only its SHA-256 is stored. viewer reads,',
  '           editor also runs commands, auditor reads and audits (history, integrity, explain,',
  '           export), admin does everything. --parties (ISO 3166-1 alpha-3 codes; required for an',
  '           editor) limits any key to the agreements one of those parties is a party to: it reads',
  '           only those (others answer 404) and an editor changes only its parties\' commitments.',
  '  list     name, role, parties, id and creation time of every key; never a secret.',
  '  rotate   adds a second secret for the same name, role and parties; both work until one is revoked.',
  '  revoke   removes every key of a name, or the one key of an id (as shown by list).',
  '',
  '  Rotating a key without downtime:',
  '    1. pnpm keys rotate <name>        prints the new secret, and the id of the old one',
  '    2. give the new secret to the tool and deploy it; both secrets work meanwhile',
  '    3. pnpm keys revoke <old id>      the old secret stops working within about a second',
  '  A leaked secret: revoke its id at once (or the whole name), then add or rotate.',
  '  A service that reads this file picks every change up within about a second; no restart.',
  '',
  '  add, rotate and revoke lock <file>.lock while they change the file, waiting up to KEYS_LOCK_WAIT_MS',
  '  (default 10000) for another to finish; a lock whose process died is taken over.',
  '',
  '  exit: 0 done, 1 no key matched, 64 bad usage or refused, 78 keys file missing or invalid, 2 write failed,',
  '        75 the file stayed locked by another keys command (nothing changed; run it again)',
].join('\n');

export type KeysCommand =
  | { kind: 'help' }
  | { kind: 'add'; name: string; role: RoleName; parties: string[] }
  | { kind: 'list' }
  | { kind: 'rotate'; name: string }
  | { kind: 'revoke'; target: string };

/** One line saying what is wrong; `usage` when it is the command line's shape, not a refused value. */
type Refusal = { error: string; usage?: true };

/** The subcommand, or why the arguments are refused. */
export function parseKeysArgs(args: string[]): KeysCommand | Refusal {
  const [sub, ...rest] = args;
  switch (sub) {
    case undefined:
      return { error: 'keys needs a subcommand: add, list, rotate or revoke', usage: true };
    case 'help':
    case '--help':
    case '-h':
      return { kind: 'help' };
    case 'list':
      return rest.length === 0 ? { kind: 'list' } : { error: `keys list takes no arguments: ${rest.join(' ')}`, usage: true };
    case 'rotate':
    case 'revoke': {
      const [target, ...more] = rest;
      if (!target || target.startsWith('-') || more.length > 0) return { error: `keys ${sub} takes exactly one ${sub === 'rotate' ? 'name' : 'name or id'}`, usage: true };
      return sub === 'rotate' ? { kind: 'rotate', name: target } : { kind: 'revoke', target };
    }
    case 'add':
      return parseAdd(rest);
    default:
      return { error: `unknown keys subcommand: ${sub}`, usage: true };
  }
}

function parseAdd(args: string[]): KeysCommand | Refusal {
  const options = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--(name|role|parties)(?:=(.*))?$/.exec(a);
    if (!m) return { error: `unknown option: ${a}`, usage: true };
    const value = m[2] ?? args[++i];
    if (value === undefined || value === '' || (m[2] === undefined && value.startsWith('--'))) return { error: `--${m[1]} needs a value`, usage: true };
    if (options.has(m[1]!)) return { error: `--${m[1]} given twice`, usage: true };
    options.set(m[1]!, value);
  }
  const name = options.get('name');
  const role = options.get('role');
  if (!name) return { error: 'keys add needs --name <name>', usage: true };
  const nameCheck = keyName.safeParse(name);
  if (!nameCheck.success) return { error: `--name ${JSON.stringify(name)} ${nameCheck.error.issues[0]!.message}` };
  if (!role) return { error: `keys add needs --role <${ROLE_NAMES.join('|')}>`, usage: true };
  if (!(ROLE_NAMES as readonly string[]).includes(role)) return { error: `--role ${JSON.stringify(role)} must be one of ${ROLE_NAMES.join(', ')}` };
  const raw = options.get('parties');
  const parties = raw === undefined ? [] : [...new Set(raw.split(',').map((p) => p.trim()))];
  const bad = parties.filter((p) => !PARTY.test(p));
  if (bad.length > 0) return { error: `--parties: ${bad.map((p) => JSON.stringify(p)).join(', ')} ${bad.length > 1 ? 'are not' : 'is not an'} ISO 3166-1 alpha-3 code${bad.length > 1 ? 's' : ''} in capitals such as VEN` };
  if (role === 'editor' && parties.length === 0) return { error: 'an editor key needs --parties (the parties it acts for, such as VEN)' };
  return { kind: 'add', name, role: role as RoleName, parties };
}

export type KeysDeps = {
  /** The keys file: API_KEYS_FILE, else DATA_DIR/api-keys.json. */
  file: string;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  now: () => Date;
  /** How long add, rotate and revoke wait for another keys command's lock (KEYS_LOCK_WAIT_MS). */
  lockWaitMs?: number;
};

export const DEFAULT_LOCK_WAIT_MS = 10_000;

export function runKeys(command: Exclude<KeysCommand, { kind: 'help' }>, deps: KeysDeps): number {
  // list only reads a file that is always replaced whole: it needs no lock.
  if (command.kind === 'list') return runLocked(command, deps);
  let lock;
  try {
    lock = acquireKeysLock(deps.file, deps.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS);
  } catch (err) {
    if (err instanceof KeysLockBusy) {
      deps.stderr(`${err.message}\n`);
      return 75;
    }
    deps.stderr(`cannot lock ${deps.file}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  try {
    return runLocked(command, deps);
  } finally {
    lock.release();
  }
}

function runLocked(command: Exclude<KeysCommand, { kind: 'help' }>, deps: KeysDeps): number {
  const { file, stdout, stderr } = deps;
  const missing = !existsSync(file);
  if (missing && command.kind !== 'add') {
    stderr(`no API keys file at ${file}: set API_KEYS_FILE or DATA_DIR to the service's, or create it with keys add\n`);
    return 78;
  }
  let current: ApiKeysFile;
  try {
    current = missing ? { keys: [] } : readApiKeysFile(file);
  } catch (err) {
    if (err instanceof ApiKeysError) {
      stderr(`${err.message}\n`);
      return 78;
    }
    throw err;
  }
  const write = (next: ApiKeysFile) => {
    try {
      writeApiKeysFile(file, next);
      return true;
    } catch (err) {
      stderr(`cannot write ${file}: ${err instanceof Error ? err.message : String(err)}\n`);
      return false;
    }
  };

  switch (command.kind) {
    case 'list': {
      stdout(listLines(file, current.keys).join('\n') + '\n');
      return 0;
    }
    case 'add': {
      if (current.keys.some((k) => k.name === command.name)) {
        stderr(`a key named ${command.name} exists already: use keys rotate ${command.name} for a new secret, or another name\n`);
        return 64;
      }
      const { entry, secret } = newKey(command, deps.now);
      if (!write({ keys: [...current.keys, entry] })) return 2;
      stdout(secretText(`added key "${entry.name}" (${describeKey(entry)}, id ${keyId(entry)}) to ${file}`, secret, file));
      // The service makes its first-start admin key only when there is no file at all.
      if (missing) stdout(`${file} was created; the service will not create its first-start admin key, so add one if you need it: keys add --name <name> --role admin\n`);
      return 0;
    }
    case 'rotate': {
      const old = current.keys.filter((k) => k.name === command.name);
      const first = old[0];
      if (!first) {
        stderr(`no key named ${command.name} in ${file}; keys list shows the names\n`);
        return 1;
      }
      const { entry, secret } = newKey({ name: first.name, role: first.role, parties: first.parties }, deps.now);
      if (!write({ keys: [...current.keys, entry] })) return 2;
      stdout(secretText(`rotated key "${entry.name}" (${describeKey(entry)}): new secret, id ${keyId(entry)}, in ${file}`, secret, file));
      stdout(`The old secret${old.length > 1 ? 's still work' : ' still works'}. Once the tool uses the new one, revoke the old: ${old.map((k) => `keys revoke ${keyId(k)}`).join('; ')}\n`);
      return 0;
    }
    case 'revoke': {
      const t = command.target;
      const byName = current.keys.filter((k) => k.name === t);
      const byId = current.keys.filter((k) => keyId(k) === t);
      if (byName.length > 0 && byId.length > 0 && byId.some((k) => k.name !== t)) {
        stderr(`${t} is both a key name and the id of key ${byId[0]!.name}: nothing revoked; revoke by the other key's id or rename first\n`);
        return 64;
      }
      const gone = byName.length > 0 ? byName : byId;
      if (gone.length === 0) {
        stderr(`no key named ${t} or with id ${t} in ${file}; nothing revoked (keys list shows names and ids)\n`);
        return 1;
      }
      const kept = current.keys.filter((k) => !gone.includes(k));
      if (!write({ keys: kept })) return 2;
      for (const k of gone) stdout(`revoked key "${k.name}" id ${keyId(k)} (${describeKey(k)})\n`);
      stdout(`${kept.length} key${kept.length === 1 ? '' : 's'} left in ${file}; ${pickupNote(file)}\n`);
      if (!kept.some((k) => k.role === 'admin')) stdout('no admin key is left: add one with keys add --name <name> --role admin if you need one\n');
      return 0;
    }
    default: {
      const never: never = command;
      return never;
    }
  }
}

function newKey(k: { name: string; role: RoleName; parties: readonly string[] }, now: () => Date): { entry: ApiKeyEntry; secret: string } {
  const secret = generateSecret();
  return { secret, entry: { name: k.name, role: k.role, parties: [...k.parties], sha256: hashSecret(secret), createdAt: now().toISOString() } };
}

const describeKey = (k: ApiKeyEntry) => `role ${k.role}${k.parties.length > 0 ? `, parties ${k.parties.join(',')}` : ''}`;

// The secret appears once, alone on its line, so it can be copied and nothing else prints it again.
// What the CLI can know: the file it changed. Whether a service reads that file, it cannot.
const pickupNote = (file: string) =>
  `a service whose keys file is ${file} picks the change up within about a second, without a restart; ` +
  'a service with another API_KEYS_FILE or DATA_DIR (or on another machine) does not see it';

const secretText = (headline: string, secret: string, file: string) =>
  `${headline}\n` +
  'Its secret is shown this once; only its SHA-256 is stored. Keep it somewhere safe:\n\n' +
  `    ${secret}\n\n` +
  'Send it on every request as:  Authorization: Bearer <the secret above>\n' +
  `${pickupNote(file)}.\n`;

export function listLines(file: string, keys: readonly ApiKeyEntry[]): string[] {
  if (keys.length === 0) return [`no keys in ${file}`];
  const rows = [['NAME', 'ROLE', 'PARTIES', 'ID', 'CREATED'], ...keys.map((k) => [k.name, k.role, k.parties.join(',') || '-', keyId(k), k.createdAt ?? '-'])];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return [
    `${keys.length} key${keys.length === 1 ? '' : 's'} in ${file}`,
    ...rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')),
  ];
}
