// Builds the dashboard (web/) into web/dist with Vite. `pnpm build` always builds it;
// `pnpm start` runs this with --if-stale first, which builds only when web/dist is missing or
// older than a file of web/ (sources, index.html, config), so a start after a pull serves the
// page that matches the code.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const web = join(root, 'web');
const built = join(web, 'dist', 'index.html');

const newest = (dir) => readdirSync(dir, { withFileTypes: true }).reduce((t, e) => {
  if (e.name === 'dist' || e.name === 'node_modules') return t;
  const p = join(dir, e.name);
  return Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
}, 0);

if (process.argv.includes('--if-stale') && existsSync(built) && statSync(built).mtimeMs >= newest(web)) process.exit(0);

const started = Date.now();
console.error(`web: building the dashboard into web/dist with Vite...`);
let vite;
try {
  vite = join(dirname(createRequire(join(web, 'package.json')).resolve('vite/package.json')), 'bin', 'vite.js');
} catch {
  console.error('web: vite is not installed: run `pnpm install` first.');
  process.exit(1);
}
const run = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: web, stdio: 'inherit' });
if (run.status !== 0) {
  console.error('web: the dashboard build failed (errors above); the API still starts, and GET / says the page is not built.');
  process.exit(run.status ?? 1);
}
console.error(`web: done in ${((Date.now() - started) / 1000).toFixed(1)} s; the dashboard is served at /`);
