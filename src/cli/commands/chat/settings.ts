// Where chat finds its gateway and key: flags first, then GATEWAY_URL / GATEWAY_API_KEY, then
// the keys `gatewayctl demo` left in the data dir, then the proxy's default address.
import { GatewayError, usageError } from '../../../shared/errors.js';
import type { App } from '../../app.js';
import { demoKeysPath, readDemoKeys } from '../../chat/demo-keys.js';

export const DEFAULT_GATEWAY_URL = 'http://127.0.0.1:8080';

export interface ChatFlags {
  url?: string;
  apiKey?: string;
  as?: string;
  model?: string;
  stream?: boolean;
  system?: string;
  maxTokens?: number;
}

export interface ChatTarget {
  url: string;
  apiKey: string;
  /** Where the key came from, for the banner: "--api-key", "GATEWAY_API_KEY", "demo key of alice". */
  keySource: string;
  /** The demo's suggested model for a demo key; otherwise chat takes the key's first model. */
  model?: string;
}

export function resolveTarget(app: App, flags: ChatFlags): ChatTarget {
  const gw = app.env.gateway;
  const path = demoKeysPath(app.dataDir());
  const needDemo = flags.as !== undefined || (!flags.apiKey && !gw.api_key) || (!flags.url && !gw.url);
  const demo = needDemo ? readDemoKeys(path) : null;
  const url = flags.url ?? gw.url ?? demo?.url ?? DEFAULT_GATEWAY_URL;
  if (flags.apiKey) return { url, apiKey: flags.apiKey, keySource: '--api-key' };
  if (flags.as !== undefined) {
    if (!demo) throw usageError(`--as needs the demo keys: run 'gatewayctl demo' first (looked in ${path})`, 'as');
    const entry = demo.keys[flags.as];
    if (!entry) throw usageError(`no demo user '${flags.as}': use one of ${Object.keys(demo.keys).join(', ')}`, 'as');
    return { url, apiKey: entry.key, keySource: `demo key of ${flags.as}`, model: entry.model };
  }
  if (gw.api_key) return { url, apiKey: gw.api_key, keySource: 'GATEWAY_API_KEY' };
  const entry = demo?.keys[demo.default];
  if (demo && entry) return { url, apiKey: entry.key, keySource: `demo key of ${demo.default}`, model: entry.model };
  throw new GatewayError('usage_error', "no API key: pass --api-key, set GATEWAY_API_KEY, or run 'gatewayctl demo' to create demo keys", { param: 'api_key' });
}
