// The one table of error codes: each maps to an HTTP status (proxy), an OpenAI error `type`,
// and a CLI exit code. The proxy and the CLI each translate errors in exactly one place.

export const EXIT = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  permission: 5,
  unavailable: 6,
} as const;

interface ErrorSpec {
  status: number;
  type: string;
  exit: number;
}

const spec = (status: number, type: string, exit: number): ErrorSpec => ({ status, type, exit });

export const ERROR_TABLE = {
  invalid_request: spec(400, 'invalid_request_error', EXIT.usage),
  usage_error: spec(400, 'invalid_request_error', EXIT.usage),
  invalid_api_key: spec(401, 'authentication_error', EXIT.permission),
  key_revoked: spec(401, 'authentication_error', EXIT.permission),
  key_expired: spec(401, 'authentication_error', EXIT.permission),
  key_disabled: spec(401, 'authentication_error', EXIT.permission),
  unauthenticated: spec(401, 'authentication_error', EXIT.permission),
  insufficient_credits: spec(402, 'insufficient_quota', EXIT.permission),
  budget_exceeded: spec(402, 'insufficient_quota', EXIT.permission),
  model_not_allowed: spec(403, 'permission_error', EXIT.permission),
  ip_not_allowed: spec(403, 'permission_error', EXIT.permission),
  referrer_not_allowed: spec(403, 'permission_error', EXIT.permission),
  origin_not_allowed: spec(403, 'permission_error', EXIT.permission),
  forbidden: spec(403, 'permission_error', EXIT.permission),
  model_not_found: spec(404, 'invalid_request_error', EXIT.notFound),
  not_found: spec(404, 'invalid_request_error', EXIT.notFound),
  method_not_allowed: spec(405, 'invalid_request_error', EXIT.usage),
  conflict: spec(409, 'invalid_request_error', EXIT.conflict),
  request_too_large: spec(413, 'invalid_request_error', EXIT.usage),
  request_timeout: spec(408, 'invalid_request_error', EXIT.usage),
  rate_limit_exceeded: spec(429, 'rate_limit_error', EXIT.permission),
  quota_exceeded: spec(429, 'rate_limit_error', EXIT.permission),
  request_cap_exceeded: spec(429, 'rate_limit_error', EXIT.permission),
  aborted: spec(400, 'invalid_request_error', EXIT.unexpected),
  internal_error: spec(500, 'server_error', EXIT.unexpected),
  upstream_error: spec(502, 'upstream_error', EXIT.unavailable),
  unavailable: spec(503, 'service_unavailable_error', EXIT.unavailable),
  store_unavailable: spec(503, 'service_unavailable_error', EXIT.unavailable),
  identity_unavailable: spec(503, 'service_unavailable_error', EXIT.unavailable),
  upstream_timeout: spec(504, 'timeout_error', EXIT.unavailable),
} satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export function errorSpec(code: ErrorCode): ErrorSpec {
  return ERROR_TABLE[code];
}

/**
 * An error whose message is safe to show to whoever caused it (an operator at the CLI, or a
 * client of the proxy). Anything else that is thrown is treated as internal and its message
 * stays in the log.
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly param: string | null;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { details?: Record<string, unknown>; param?: string | null; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.details = opts.details;
    this.param = opts.param ?? null;
  }

  get status(): number {
    return ERROR_TABLE[this.code].status;
  }

  get exitCode(): number {
    return ERROR_TABLE[this.code].exit;
  }
}

export const notFound = (what: string, id: string) => new GatewayError('not_found', `${what} '${id}' not found`);
export const conflict = (message: string) => new GatewayError('conflict', message);
export const usageError = (message: string, param: string | null = null) =>
  new GatewayError('usage_error', message, { param });

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}
