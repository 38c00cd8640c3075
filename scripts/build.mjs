// `pnpm build`: compiles the TypeScript of every workspace with plain tsc (tsconfig.build.json)
// and places each one's JavaScript in its own dist/ (packages/domain/src/x.ts becomes
// packages/domain/dist/x.js), next to the plain .mjs files and data files the code loads at
// run time. `node --conditions=built services/api/dist/main.js` then runs the service with no
// TypeScript tooling installed: each package.json maps the `built` condition to dist/.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, '.build');
const started = Date.now();

const units = [];
for (const group of ['packages', 'services']) {
  for (const name of readdirSync(join(root, group))) {
    if (existsSync(join(root, group, name, 'src'))) units.push({ from: join(group, name, 'src'), to: join(group, name, 'dist') });
  }
}
units.push({ from: 'examples', to: join('examples', 'dist') });

rmSync(out, { recursive: true, force: true });
for (const u of units) rmSync(join(root, u.to), { recursive: true, force: true });

console.error(`build: compiling ${units.length} workspaces with tsc...`);
const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
const run = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (run.status !== 0) {
  console.error('build: tsc failed (errors above); fix them and run `pnpm build` again.');
  process.exit(run.status ?? 1);
}

// Files that are not TypeScript but run or are read as they are: plain .mjs modules (the SQLite
// writer thread), their type declarations, and JSON data (the example dataset).
const copyPlain = (fromDir, toDir) => {
  for (const entry of readdirSync(fromDir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name === 'testing' || entry.name === 'contract') continue;
    const from = join(fromDir, entry.name);
    const to = join(toDir, entry.name);
    if (entry.isDirectory()) copyPlain(from, to);
    else if (/\.(mjs|json)$/.test(entry.name) || entry.name.endsWith('.d.mts')) {
      mkdirSync(toDir, { recursive: true });
      cpSync(from, to);
    }
  }
};

let files = 0;
for (const u of units) {
  const compiled = join(out, u.from);
  if (!existsSync(compiled)) continue;
  cpSync(compiled, join(root, u.to), { recursive: true });
  copyPlain(join(root, u.from), join(root, u.to));
  const count = (d) => readdirSync(d).reduce((n, e) => n + (statSync(join(d, e)).isDirectory() ? count(join(d, e)) : 1), 0);
  const n = count(join(root, u.to));
  files += n;
  console.error(`build: ${relative(root, join(root, u.to))} (${n} files)`);
}
rmSync(out, { recursive: true, force: true });
console.error(`build: done, ${files} files in ${((Date.now() - started) / 1000).toFixed(1)} s; run with \`pnpm start:built\``);
