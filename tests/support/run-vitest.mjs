// Runs the whole suite with vitest and ends with the totals alone on the last line,
// "N passed, N failed[, N skipped]", read from vitest's JSON report.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'cm-vitest-'));
const report = join(dir, 'report.json');
const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)];
const started = Date.now();
const run = spawnSync('pnpm', ['exec', ...args], { stdio: 'inherit' });
let summary;
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  summary = `${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`;
  if (r.numFailedTestSuites > 0 && r.numFailedTests === 0) {
    // A file that failed to load has no failed tests of its own: count it so CI cannot pass it.
    summary = `${r.numPassedTests} passed, ${r.numFailedTestSuites} failed${skipped ? `, ${skipped} skipped` : ''}`;
  }
} catch {
  summary = '0 passed, 1 failed';
  console.error('vitest wrote no report: see its output above');
}
rmSync(dir, { recursive: true, force: true });
console.log(`wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(summary);
process.exit(run.status ?? 1);
