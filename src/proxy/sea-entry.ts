// gateway-proxy as a standalone executable (test/scripts/build-exe.ts): bin/gateway-proxy's job,
// with the SQLite addon taken from inside the binary. The only place that exits.
import { readEnv } from '../shared/config.js';
import { seaAssets, seaCacheDirs } from '../shared/sea-assets.js';
import { processProxyIO, runCli, tuneProcess } from './cli.js';

tuneProcess();
const io = processProxyIO();
const bundled = seaAssets(seaCacheDirs(readEnv(io.env), io.cwd));
// A SEA's argv is [executable, executable, …arguments].
runCli(process.argv.slice(2), io, { bundled }).then((code) => {
  process.exitCode = code;
  // Let stdout and stderr drain, then leave even if a pool or timer left a handle open.
  process.stdout.write('', () => process.stderr.write('', () => process.exit()));
});
