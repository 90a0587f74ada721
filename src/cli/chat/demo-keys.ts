// The demo's keys, kept so `gatewayctl chat` works with no flags after `gatewayctl demo`. The
// only place a plaintext key is stored: one file in the data dir, mode 0600, rewritten (never
// appended) on each demo run, so it holds the current keys only.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { GatewayError } from '../../shared/errors.js';

const DemoKeyFileSchema = z.object({
  url: z.string(),
  default: z.string(),
  keys: z.record(
    z.string(),
    z.object({ id: z.string(), key: z.string(), org: z.string(), user: z.string(), model: z.string().optional(), story: z.string().optional() }),
  ),
});

export type DemoKeyFile = z.infer<typeof DemoKeyFileSchema>;

export function demoKeysPath(dataDir: string): string {
  return join(dataDir, 'demo-keys.json');
}

export function writeDemoKeys(path: string, data: DemoKeyFile): void {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** The demo keys, or null when `gatewayctl demo` has not been run here. */
export function readDemoKeys(path: string): DemoKeyFile | null {
  if (!existsSync(path)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new GatewayError('usage_error', `${path} is not valid JSON: run 'gatewayctl demo' again to rewrite it`);
  }
  const result = DemoKeyFileSchema.safeParse(parsed);
  if (!result.success) throw new GatewayError('usage_error', `${path} is not a demo key file: run 'gatewayctl demo' again to rewrite it`);
  return result.data;
}
