// Filled in by the executable build; from a checkout it reads package.json and git.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

declare const __GATEWAY_VERSION__: string | undefined;
declare const __GATEWAY_COMMIT__: string | undefined;

function fromCheckout(): { version: string; commit: string } {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  let version = '0.0.0';
  let commit = 'unknown';
  try {
    version = (JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {}
  try {
    commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {}
  return { version, commit };
}

const built =
  typeof __GATEWAY_VERSION__ === 'string' && typeof __GATEWAY_COMMIT__ === 'string'
    ? { version: __GATEWAY_VERSION__, commit: __GATEWAY_COMMIT__ }
    : undefined;

export function versionInfo(): { version: string; commit: string } {
  return built ?? fromCheckout();
}

/** "0.1.0 (abc1234)". From a checkout this asks git, so call it only when the version is wanted. */
export function versionString(): string {
  const v = versionInfo();
  return `${v.version} (${v.commit})`;
}
