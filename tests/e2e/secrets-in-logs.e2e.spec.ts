// A password in REDIS_URL never reaches the log: the service started against a Redis that does
// not answer says so, naming REDIS_URL with its password masked.
import { afterAll, expect, it } from 'vitest';
import { freePort, makeDataDir, removeDataDir, runUntilExit } from './support/service-process.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDataDir));

it('masks the password of REDIS_URL when Redis is unreachable', async () => {
  const dataDir = makeDataDir('cm-e2e-secrets-');
  dirs.push(dataDir);
  const [port, redisPort] = [await freePort(), await freePort()];
  const result = await runUntilExit({
    HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'info',
    REDIS_URL: `redis://monitor:Tr0ub4dor-3@127.0.0.1:${redisPort}`,
  }, 60_000);
  expect(result.code).not.toBe(0);
  const output = result.stdout + result.stderr;
  expect(output).toContain('REDIS_URL');
  expect(output).toContain(`redis://monitor:***@127.0.0.1:${redisPort}`);
  expect(output).not.toContain('Tr0ub4dor');
}, 90_000);
