// gatewayctl as a standalone executable (test/scripts/build-exe.ts): bin/gatewayctl's job, with
// the SQLite addon and the migrations taken from inside the binary. The only place that exits.
import { readEnv } from '../shared/config.js';
import { seaAssets, seaCacheDirs } from '../shared/sea-assets.js';
import { processIO } from './io.js';
import { run } from './main.js';

const io = processIO();
const bundled = seaAssets(seaCacheDirs(readEnv(io.env), io.cwd));
// A SEA's argv is [executable, executable, …arguments].
run(process.argv.slice(2), io, { bundled }).then((code) => {
  process.exitCode = code;
  // Let stdout drain, then leave even if a prompt or pool left a handle open.
  process.stdout.write('', () => process.exit());
});
