// Checkpoints of the log's Merkle tree as C2SP signed notes (c2sp.org/signed-note,
// c2sp.org/tlog-checkpoint), signed with Ed25519 on node:crypto:
//   body       "<origin>\n<tree size>\n<base64 root hash>\n"
//   note       body, a blank line, then one "— <key name> <base64(4-byte key id || signature)>\n" per signature
//   key id     the first 4 bytes of SHA-256(<key name> || 0x0A || 0x01 || 32-byte public key)
//   verifier   "<key name>+<8 hex digits of the key id>+<base64(0x01 || public key)>"
// The private key lives in a file of its own under DATA_DIR (mode 0600), never in the log.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const ED25519 = 0x01;
const DASH = '\u2014';
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export type NoteSigner = { name: string; keyId: Buffer; publicKey: Buffer; sign(text: string): Buffer };
export type NoteVerifier = { name: string; keyId: Buffer; publicKey: Buffer };

/** The key id of a signed-note key: algorithm 0x01 (Ed25519 note signatures), 0x04 (tlog-cosignature/v1). */
export function keyId(name: string, publicKey: Uint8Array, algorithm = ED25519): Buffer {
  return createHash('sha256').update(name, 'utf8').update(Buffer.from([0x0a, algorithm])).update(publicKey).digest().subarray(0, 4);
}

export const COSIGNATURE_V1 = 0x04;

/**
 * A C2SP tlog-cosignature/v1 line: the witness signs "cosignature/v1\ntime <seconds>\n" followed
 * by the checkpoint body; the line carries key id (algorithm 0x04) || 8-byte big-endian time || signature.
 */
export function cosignatureLine(witness: NoteSigner, checkpointText: string, timeSeconds: number): string {
  const id = keyId(witness.name, witness.publicKey, COSIGNATURE_V1);
  const signature = witness.sign(`cosignature/v1\ntime ${timeSeconds}\n${checkpointText}`);
  const time = Buffer.alloc(8);
  time.writeBigUInt64BE(BigInt(timeSeconds));
  return signatureLine(witness.name, id, Buffer.concat([time, signature]));
}

const rawPublicKey = (key: KeyObject): Buffer => Buffer.from(key.export({ format: 'der', type: 'spki' })).subarray(SPKI_PREFIX.length);
const publicKeyObject = (raw: Uint8Array): KeyObject => createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });

/** A key name per the signed-note spec: non-empty, no '+', no whitespace. */
export function checkKeyName(name: string): string {
  if (!/^[^\s+]+$/u.test(name)) throw new Error(`a note key name must be non-empty and hold no '+' or whitespace: ${JSON.stringify(name)}`);
  return name;
}

/** The signer under `path` (PKCS#8 PEM, mode 0600), generated when the file does not exist yet. */
export function loadOrCreateNoteSigner(path: string, name: string): NoteSigner & { created: boolean } {
  checkKeyName(name);
  let created = false;
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    const { privateKey } = generateKeyPairSync('ed25519');
    // `wx`: two processes starting at once do not overwrite each other's key.
    try {
      writeFileSync(path, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  chmodSync(path, 0o600);
  const privateKey = createPrivateKey(readFileSync(path));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${path} does not hold an Ed25519 private key`);
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { name, keyId: keyId(name, publicKey), publicKey, created, sign: (text) => sign(null, Buffer.from(text, 'utf8'), privateKey) };
}

export function verifierKey(v: NoteVerifier): string {
  return `${v.name}+${v.keyId.toString('hex')}+${Buffer.concat([Buffer.from([ED25519]), v.publicKey]).toString('base64')}`;
}

/** Parses "<name>+<hex id>+<base64(0x01 || key)>", checking the id matches the name and key. */
export function parseVerifierKey(text: string, algorithm = ED25519): NoteVerifier {
  const m = /^([^\s+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+={0,2})$/.exec(text.trim());
  if (!m) throw new Error('a verifier key reads <name>+<8 hex digits>+<base64 key>');
  const raw = Buffer.from(m[3]!, 'base64');
  if (raw.length !== 33 || raw[0] !== algorithm) throw new Error(`only Ed25519 keys of algorithm 0x0${algorithm} (32 bytes) are taken here`);
  const publicKey = raw.subarray(1);
  const id = keyId(m[1]!, publicKey, algorithm);
  if (id.toString('hex') !== m[2]) throw new Error(`the key id ${m[2]} is not the one of name ${m[1]} and its key (${id.toString('hex')})`);
  return { name: m[1]!, keyId: id, publicKey };
}

export type Checkpoint = { origin: string; size: number; root: Buffer };

export function checkpointBody(c: Checkpoint): string {
  return `${c.origin}\n${c.size}\n${c.root.toString('base64')}\n`;
}

export function signatureLine(name: string, id: Uint8Array, signature: Uint8Array): string {
  return `${DASH} ${name} ${Buffer.concat([id, signature]).toString('base64')}\n`;
}

export function signNote(text: string, signer: NoteSigner): string {
  return `${text}\n${signatureLine(signer.name, signer.keyId, signer.sign(text))}`;
}

export type NoteSignature = { name: string; keyId: Buffer; signature: Buffer; line: string };

/** Splits a note into its text (with its final newline) and signature lines. Throws when it is not a note. */
export function parseNote(note: string): { text: string; signatures: NoteSignature[] } {
  const cut = note.lastIndexOf('\n\n');
  if (cut < 0 || !note.endsWith('\n')) throw new Error('a signed note is text, a blank line and signature lines, each ending in a newline');
  const text = note.slice(0, cut + 1);
  const signatures = note.slice(cut + 2, -1).split('\n').map((line) => {
    const m = new RegExp(`^${DASH} ([^\\s+]+) ([A-Za-z0-9+/]+={0,2})$`).exec(line);
    if (!m) throw new Error(`not a signature line: ${JSON.stringify(line)}`);
    const blob = Buffer.from(m[2]!, 'base64');
    if (blob.length < 5) throw new Error(`signature of ${m[1]} is too short`);
    return { name: m[1]!, keyId: blob.subarray(0, 4), signature: blob.subarray(4), line: `${line}\n` };
  });
  return { text, signatures };
}

/** Whether one of the note's signatures is `verifier`'s, over its text. */
export function noteSignedBy(note: string, verifier: NoteVerifier): boolean {
  const { text, signatures } = parseNote(note);
  const key = publicKeyObject(verifier.publicKey);
  return signatures.some((s) => s.name === verifier.name && s.keyId.equals(verifier.keyId) && verify(null, Buffer.from(text, 'utf8'), key, s.signature));
}

/** The checkpoint a note's text states. */
export function parseCheckpoint(text: string): Checkpoint {
  const lines = text.split('\n');
  if (lines.length < 4 || lines.at(-1) !== '') throw new Error('a checkpoint holds origin, size and root hash lines');
  const [origin, size, root] = lines as [string, string, string];
  if (!origin || !/^(0|[1-9]\d{0,15})$/.test(size) || !/^[A-Za-z0-9+/]{43}=$/.test(root)) throw new Error('a checkpoint reads <origin>\\n<decimal size>\\n<base64 32-byte root>\\n');
  return { origin, size: Number(size), root: Buffer.from(root, 'base64') };
}

/** A witness's cosigner key as a deployment configures it: "<name>+<hex id>+<base64(0x04 || Ed25519 key)>". */
export function cosignerKey(signer: NoteSigner): string {
  return `${signer.name}+${keyId(signer.name, signer.publicKey, COSIGNATURE_V1).toString('hex')}+${Buffer.concat([Buffer.from([COSIGNATURE_V1]), signer.publicKey]).toString('base64')}`;
}

/** Whether `line` is a tlog-cosignature/v1 of `checkpointText` by `cosigner` (parsed with algorithm 0x04). */
export function verifyCosignature(line: string, checkpointText: string, cosigner: NoteVerifier): boolean {
  const m = new RegExp(`^${DASH} ([^\\s+]+) ([A-Za-z0-9+/]+={0,2})\n?$`).exec(line);
  if (!m || m[1] !== cosigner.name) return false;
  const blob = Buffer.from(m[2]!, 'base64');
  if (blob.length !== 4 + 8 + 64 || !blob.subarray(0, 4).equals(cosigner.keyId)) return false;
  const time = blob.readBigUInt64BE(4);
  return verify(null, Buffer.from(`cosignature/v1\ntime ${time}\n${checkpointText}`, 'utf8'), publicKeyObject(cosigner.publicKey), blob.subarray(12));
}
