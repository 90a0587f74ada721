// The one module that reads process.env. Everything else receives plain values.
import { userInfo } from 'node:os';
import { resolve } from 'node:path';

export interface GatewayEnv {
  /** All GATEWAY_* variables, name without the prefix, lower-cased: GATEWAY_REDIS_URL → redis_url. */
  gateway: Record<string, string>;
  keycloak: { url?: string; realm?: string; clientId?: string; clientSecret?: string };
  noColor: boolean;
  ci: boolean;
  osUser: string;
  configHome: string;
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): GatewayEnv {
  const gateway: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith('GATEWAY_') && value !== undefined && value !== '') {
      gateway[name.slice('GATEWAY_'.length).toLowerCase()] = value;
    }
  }
  const home = env.HOME ?? '/tmp';
  return {
    gateway,
    keycloak: {
      url: env.KEYCLOAK_URL || undefined,
      realm: env.KEYCLOAK_REALM || undefined,
      clientId: env.KEYCLOAK_CLIENT_ID || undefined,
      clientSecret: env.KEYCLOAK_CLIENT_SECRET || undefined,
    },
    noColor: env.NO_COLOR !== undefined && env.NO_COLOR !== '',
    ci: env.CI === 'true' || env.CI === '1',
    osUser: env.USER ?? env.LOGNAME ?? safeUserName(),
    configHome: env.XDG_CONFIG_HOME || resolve(home, '.config'),
  };
}

/** Where the embedded store and the master key file live unless told otherwise. */
export function dataDir(env: GatewayEnv, cwd = process.cwd()): string {
  return resolve(cwd, env.gateway.data_dir ?? '.gateway');
}

export function defaultDbUrl(env: GatewayEnv, cwd = process.cwd()): string {
  return env.gateway.db ?? resolve(dataDir(env, cwd), 'gateway.db');
}

export function masterKeyFile(env: GatewayEnv, cwd = process.cwd()): string {
  return env.gateway.master_key_file ?? resolve(dataDir(env, cwd), 'master.key');
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
