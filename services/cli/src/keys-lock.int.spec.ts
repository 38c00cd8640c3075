// keys add, rotate and revoke at the same time, as real processes on one keys file: the lock
// keeps every change (no key lost, no revoked key back), and a lock left behind is dealt with.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { hashSecret, readApiKeysFile, writeApiKeysFile } from '@cm/platform';
import { runCli, startCli } from './testing/run-cli.js';

const dirs: string[] = [];
let dir: string;
const file = () => join(dir, 'api-keys.json');
// Processes start slowly on a loaded machine; the lock is held for milliseconds, so waiting long costs nothing.
const env = () => ({ DATA_DIR: dir, KEYS_LOCK_WAIT_MS: '120000' });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cm-keys-lock-'));
  dirs.push(dir);
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const SECRET = /cm_[A-Za-z0-9_-]{43}/;

describe('keys commands at the same time', { timeout: 240_000 }, () => {
  it('keeps all 12 keys that 12 parallel adds printed', async () => {
    writeApiKeysFile(file(), { keys: [{ name: 'admin', role: 'admin', parties: [], sha256: hashSecret('cm_first_admin_secret') }] });
    const runs = await Promise.all(Array.from({ length: 12 }, (_, i) => startCli(['keys', 'add', '--name', `tool-${i}`, '--role', 'viewer'], env())));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const stored = readApiKeysFile(file()).keys;
    expect(stored.map((k) => k.name).sort()).toEqual(['admin', ...Array.from({ length: 12 }, (_, i) => `tool-${i}`)].sort());
    // Every secret printed is one the file holds.
    for (const r of runs) expect(stored.map((k) => k.sha256)).toContain(hashSecret(r.stdout.match(SECRET)![0]));
    expect(existsSync(`${file()}.lock`)).toBe(false);
  });

  it('never brings back a key revoked while adds and rotations run', async () => {
    writeApiKeysFile(file(), { keys: [
      { name: 'admin', role: 'admin', parties: [], sha256: hashSecret('cm_first_admin_secret') },
      { name: 'leaked', role: 'editor', parties: ['VEN'], sha256: hashSecret('cm_leaked_secret_000') },
    ] });
    const adds = Array.from({ length: 5 }, (_, i) => startCli(['keys', 'add', '--name', `tool-${i}`, '--role', 'viewer'], env()));
    const revoke = startCli(['keys', 'revoke', 'leaked'], env());
    const rotate = startCli(['keys', 'rotate', 'admin'], env());
    const more = Array.from({ length: 5 }, (_, i) => startCli(['keys', 'add', '--name', `late-${i}`, '--role', 'auditor'], env()));
    const runs = await Promise.all([...adds, revoke, rotate, ...more]);
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const names = readApiKeysFile(file()).keys.map((k) => k.name);
    expect(names).not.toContain('leaked');
    expect(names.filter((n) => n === 'admin')).toHaveLength(2);
    expect(names.filter((n) => n !== 'admin').sort()).toEqual([...Array.from({ length: 5 }, (_, i) => `tool-${i}`), ...Array.from({ length: 5 }, (_, i) => `late-${i}`)].sort());
  });
});

describe('a lock left behind', { timeout: 120_000 }, () => {
  const lock = () => `${file()}.lock`;

  it('is taken over when its process is gone', () => {
    // A pid that has exited: a process that ran and ended.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    writeFileSync(lock(), JSON.stringify({ pid: Number(dead), at: new Date().toISOString() }));
    const r = runCli(['keys', 'add', '--name', 'after-crash', '--role', 'viewer'], { DATA_DIR: dir, KEYS_LOCK_WAIT_MS: '2000' });
    expect(r.code, r.stderr).toBe(0);
    expect(readApiKeysFile(file()).keys.map((k) => k.name)).toEqual(['after-crash']);
    expect(existsSync(lock())).toBe(false);
  });

  it('is taken over once older than 30 s, even if its pid lives (a reused pid)', () => {
    writeFileSync(lock(), JSON.stringify({ pid: process.pid, at: new Date(Date.now() - 31_000).toISOString() }));
    const old = (Date.now() - 31_000) / 1000;
    utimesSync(lock(), old, old);
    const r = runCli(['keys', 'add', '--name', 'after-hang', '--role', 'viewer'], { DATA_DIR: dir, KEYS_LOCK_WAIT_MS: '2000' });
    expect(r.code, r.stderr).toBe(0);
  });

  it('held by a live process: waits KEYS_LOCK_WAIT_MS, then exits 75 with one line saying what to do, changing nothing', () => {
    writeApiKeysFile(file(), { keys: [{ name: 'leaked', role: 'viewer', parties: [], sha256: hashSecret('cm_leaked_secret_000') }] });
    const before = readFileSync(file(), 'utf8');
    const at = new Date().toISOString();
    writeFileSync(lock(), JSON.stringify({ pid: process.pid, at }));
    const r = runCli(['keys', 'revoke', 'leaked'], { DATA_DIR: dir, KEYS_LOCK_WAIT_MS: '300' });
    expect(r.code).toBe(75);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toBe(`${lock()} is held by keys command pid ${process.pid} since ${at}; nothing changed: run this again once it is done (KEYS_LOCK_WAIT_MS waits longer; a lock left by a process that died is taken over after 30 s)`);
    expect(readFileSync(file(), 'utf8')).toBe(before);
    expect(existsSync(lock())).toBe(true);
  });
});
