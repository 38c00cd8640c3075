// A bad configuration value stops the start: non-zero exit, one line on stderr naming the
// variable, and nothing started (no log file created, no port opened).
import { existsSync, readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, makeDataDir, removeDataDir, runUntilExit } from './support/service-process.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDataDir));

// [variable, bad value, other variables]
const cases: [string, string, Record<string, string>][] = [
  ['PORT', 'abc', {}],
  ['LOG_LEVEL', 'loud', {}],
  ['REMINDER_OFFSETS', '7x', {}],
  ['ROLES', 'api,mailer', {}],
  ['REDIS_URL', 'localhost:6379', {}],
  // A rule across variables names the one to change.
  ['AUTH', 'off', { HOST: '0.0.0.0' }],
];

describe('a bad configuration value', () => {
  it.concurrent.each(cases)('%s=%s stops the start with one line naming it', async (variable, value, extra) => {
    const dataDir = makeDataDir('cm-e2e-config-');
    dirs.push(dataDir);
    const port = await freePort();
    const result = await runUntilExit({ HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...extra, [variable]: value });

    expect(result.signal).toBeNull();
    expect(result.code).not.toBe(0);
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines, `stderr was:\n${result.stderr}`).toHaveLength(1);
    expect(lines[0]).toContain(variable);
    // Nothing started: the log under DATA_DIR was never opened.
    expect(existsSync(dataDir) ? readdirSync(dataDir) : []).toEqual([]);
  }, 30_000);
});
