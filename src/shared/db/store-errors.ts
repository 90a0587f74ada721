// What went wrong between a program and its Postgres store, in one sentence an operator can act
// on: the store did not answer in time (a partition, a dead host, a statement past its limit) or
// could not be reached. pg reports these as plain errors (often wrapped by drizzle, whose message
// carries the SQL and its parameters), so they are recognised here by code or by pg's own words.
import { GatewayError, isGatewayError } from '../errors.js';

/** How long opening a Postgres connection may take, TCP and start-up included. */
export const PG_CONNECT_TIMEOUT_MS = 5_000;

/** pg's words when a query's query_timeout passes without an answer (lib/client.js). */
const NO_ANSWER = 'Query read timeout';
/** pg-pool's words when no connection could be opened or checked out in time. */
const NO_CONNECTION = ['timeout exceeded when trying to connect', 'Connection terminated due to connection timeout'];
const LOST = ['Connection terminated unexpectedly', 'Connection terminated'];
const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
};

/** The error and what caused it, outermost first (drizzle and migrate() wrap pg's errors). */
function chain(err: unknown): unknown[] {
  const seen: unknown[] = [];
  for (let e = err; e !== undefined && e !== null && seen.length < 8 && !seen.includes(e); ) {
    seen.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return seen;
}

const field = (e: unknown, name: 'message' | 'code'): string | undefined => {
  const v = typeof e === 'object' && e !== null ? (e as Record<string, unknown>)[name] : undefined;
  return typeof v === 'string' ? v : undefined;
};

/**
 * A query got no answer within its query_timeout. Its connection still waits for that answer,
 * so nothing more can be sent on it: a ROLLBACK would queue behind the lost query.
 */
export function isNoAnswer(err: unknown): boolean {
  return chain(err).some((e) => field(e, 'message') === NO_ANSWER);
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Number((ms / 1000).toFixed(1))} s`;
}

/** Why the store did not answer in time, or undefined if it is not that kind of failure. */
function timeoutReason(e: unknown, timeoutMs: number | undefined): string | undefined {
  const message = field(e, 'message') ?? '';
  const limit = timeoutMs === undefined ? '' : ` ${seconds(timeoutMs)}`;
  if (message === NO_ANSWER) return `no reply within${limit} (--store-timeout-ms)`;
  if (NO_CONNECTION.includes(message)) return `no connection within ${seconds(PG_CONNECT_TIMEOUT_MS)}`;
  const code = field(e, 'code');
  if (code === '57014' && message.includes('statement timeout')) {
    return `a statement ran longer than${limit} and was cancelled (raise --store-timeout-ms for long work)`;
  }
  if (code === '25P03') return `it ended a transaction left idle longer than${limit}`;
  return undefined;
}

function unreachableReason(e: unknown): string | undefined {
  const code = field(e, 'code');
  if (code !== undefined && NETWORK[code]) return NETWORK[code];
  const message = field(e, 'message') ?? '';
  if (LOST.includes(message)) return 'connection lost';
  if (code === '57P01' || code === '57P02' || code === '57P03') return 'the server is shutting down or starting up';
  return undefined;
}

/**
 * The one error to report when a Postgres store failed to answer (exit 6, `store_unavailable`),
 * naming the store by its masked URL; undefined for anything else, which keeps its own meaning
 * (a GatewayError other than store_unavailable is never replaced).
 */
export function storeFailure(err: unknown, store: { display: string; timeoutMs?: number }): GatewayError | undefined {
  if (isGatewayError(err) && err.code !== 'store_unavailable') return undefined;
  const causes = chain(err);
  for (const e of causes) {
    const why = timeoutReason(e, store.timeoutMs);
    if (why) return new GatewayError('store_unavailable', `the Postgres store at ${store.display} did not answer in time: ${why}`, { cause: err });
  }
  if (isGatewayError(err)) return undefined;
  for (const e of causes) {
    const why = unreachableReason(e);
    if (why) return new GatewayError('store_unavailable', `cannot reach the Postgres store at ${store.display}: ${why}`, { cause: err });
  }
  return undefined;
}
