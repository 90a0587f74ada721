// The master key seals upstream keys. It comes from GATEWAY_MASTER_KEY (base64 or hex of 32
// bytes) or from a key file that `gatewayctl init` creates with mode 0600.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { GatewayError } from './errors.js';

export function decodeMasterKey(text: string, source: string): Buffer {
  const t = text.trim();
  const buf = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (buf.length !== 32) {
    throw new GatewayError('usage_error', `${source} must hold 32 bytes as 64 hex characters or base64 (got ${buf.length} bytes)`);
  }
  return buf;
}

export interface MasterKeySource {
  envValue?: string;
  file: string;
}

export function loadMasterKey(src: MasterKeySource): Buffer {
  if (src.envValue) return decodeMasterKey(src.envValue, 'GATEWAY_MASTER_KEY');
  if (!existsSync(src.file)) {
    throw new GatewayError(
      'usage_error',
      `no master key: set GATEWAY_MASTER_KEY or run 'gatewayctl init' to create ${src.file}`,
    );
  }
  return decodeMasterKey(readFileSync(src.file, 'utf8'), src.file);
}

/** Creates the key file (0600) unless a key is already configured. Returns whether it created one. */
export function ensureMasterKey(src: MasterKeySource): boolean {
  if (src.envValue) {
    decodeMasterKey(src.envValue, 'GATEWAY_MASTER_KEY');
    return false;
  }
  if (existsSync(src.file)) {
    decodeMasterKey(readFileSync(src.file, 'utf8'), src.file);
    chmodSync(src.file, 0o600);
    return false;
  }
  mkdirSync(dirname(src.file), { recursive: true, mode: 0o700 });
  writeFileSync(src.file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  return true;
}
