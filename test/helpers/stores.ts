// The dialects every store test runs on. Postgres is required, never skipped: .ci/run starts it
// (test/scripts/services.sh) and exports GATEWAY_TEST_PG_URL; locally the same script does.
import { join } from 'node:path';
import pg from 'pg';
import { randomString } from '../../src/shared/ids.js';
import { tempDir } from './cli.js';

export const PG_ADMIN_URL = process.env.GATEWAY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:55432/postgres';
export const REDIS_URL = process.env.GATEWAY_TEST_REDIS_URL ?? 'redis://127.0.0.1:56379';

/** Creates an empty Postgres database and returns its URL. */
export async function freshPgUrl(): Promise<string> {
  const name = `gw_test_${randomString(10)}`;
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `Postgres is not reachable at ${PG_ADMIN_URL}: start it with 'eval "$(test/scripts/services.sh start)"' (${String(err)})`,
    );
  }
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export function freshSqlitePath(): string {
  return join(tempDir(), 'gateway.db');
}

export type DialectName = 'sqlite' | 'postgres';
export const DIALECTS: DialectName[] = ['sqlite', 'postgres'];

export async function freshStoreUrl(dialect: DialectName): Promise<string> {
  return dialect === 'sqlite' ? freshSqlitePath() : freshPgUrl();
}
