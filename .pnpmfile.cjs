// Install-time configuration that must work on a machine reaching only the package registry.
//
// better-sqlite3 falls back to compiling itself with node-gyp when its prebuilt binary cannot
// be downloaded, and node-gyp would then download Node's headers too. The headers installed
// with Node itself serve as well: point node-gyp at them, unless the user chose a nodedir.
const { existsSync } = require('node:fs');
const { dirname, join } = require('node:path');

const nodePrefix = dirname(dirname(process.execPath));
const hasHeaders = existsSync(join(nodePrefix, 'include', 'node', 'node.h'));

function updateConfig(config) {
  if (process.env.npm_config_nodedir || process.env.pnpm_config_nodedir) return config;
  if (hasHeaders) {
    config.extraEnv = { ...config.extraEnv, npm_config_nodedir: nodePrefix };
  } else {
    process.stderr.write(
      `note: Node's headers are not under ${nodePrefix}/include/node; if better-sqlite3 fails to build, ` +
        'install them (Debian: apt-get install libnode-dev) and set npm_config_nodedir to their prefix\n',
    );
  }
  return config;
}

module.exports = { hooks: { updateConfig } };
