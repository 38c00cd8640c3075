// The lock `keys add|rotate|revoke` hold while they read, change and write the keys file, so
// that two of them at once never lose a key or bring a revoked one back: `<file>.lock`, created
// exclusively ('wx') with the holder's pid and start. A lock whose pid is gone, or older than
// STALE_MS (no change takes that long), was left by a process that died and is taken over.
import { closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export const STALE_MS = 30_000;
const POLL_MS = 25;

export type KeysLock = { path: string; release(): void };

/** Why the lock could not be had in time, and what to do: one line. */
export class KeysLockBusy extends Error {}

/** Blocks the thread (the CLI does nothing else meanwhile) without spinning. */
const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The holder as written in the lock, or null when the lock is unreadable (being written, or gone). */
function holderOf(path: string): { pid: number; at: string; ageMs: number } | null {
  try {
    const ageMs = Date.now() - statSync(path).mtimeMs;
    const { pid, at } = JSON.parse(readFileSync(path, 'utf8')) as { pid: number; at: string };
    return { pid, at, ageMs };
  } catch {
    return null;
  }
}

export function acquireKeysLock(file: string, waitMs: number): KeysLock {
  const path = `${file}.lock`;
  // The first add may create the file's folder, as the write would.
  mkdirSync(dirname(file), { recursive: true });
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, at: new Date().toISOString() }));
      } finally {
        closeSync(fd);
      }
      let held = true;
      return {
        path,
        release() {
          if (!held) return;
          held = false;
          unlinkSync(path);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = holderOf(path);
    let ageMs = 0;
    try {
      ageMs = Date.now() - statSync(path).mtimeMs;
    } catch {
      continue; // released meanwhile: try again at once
    }
    // Unreadable but young: its holder is between creating and writing it.
    const stale = holder ? !alive(holder.pid) || holder.ageMs > STALE_MS : ageMs > STALE_MS;
    if (stale) {
      // Only the lock judged stale: another waiter may have taken it over meanwhile.
      const again = holderOf(path);
      if (again?.pid === holder?.pid && again?.at === holder?.at) {
        try {
          unlinkSync(path);
        } catch {
          // another waiter removed it first
        }
      }
      continue;
    }
    if (Date.now() >= deadline) {
      throw new KeysLockBusy(
        `${path} is held by keys command pid ${holder?.pid ?? '?'} since ${holder?.at ?? '?'}; nothing changed: run this again once it is done ` +
          `(KEYS_LOCK_WAIT_MS waits longer; a lock left by a process that died is taken over after ${STALE_MS / 1000} s)`,
      );
    }
    pause(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
  }
}
