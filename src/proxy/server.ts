// The HTTP edge: raw node:http, one routing switch, a request id on every response, OpenAI-shaped
// answers even for requests node itself rejects (bad framing, slow headers), and in-flight
// tracking so a shutdown can drain.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders, type Server, ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ProxyDeps, RequestContext } from './context.js';
import { type PublicError, publicError, sendError, sendPublicError } from './errors.js';
import { handleChat } from './routes/chat.js';
import { handleModel, handleModels, handleUsage } from './routes/info.js';
import { handleHealthz, handleMetrics, handleReadyz } from './routes/ops.js';

export interface ProxyServer {
  server: Server;
  inFlight(): number;
  /** Refuse new requests (503, connection: close) from now on. */
  startDraining(): void;
  /** Resolves when no request is in flight, or after timeoutMs (returns how many were left). */
  drained(timeoutMs: number): Promise<number>;
}

// Request ids: 64 random bits per process, then a counter (32 hex digits in all). Unique across
// instances and restarts as a UUID would be, for a tenth of the CPU; they are not secrets
// (GET /v1/usage answers a request id only to the key that made it).
const idPrefix = randomBytes(8).toString('hex');
let idSeq = 0;
const newRequestId = () => `req_${idPrefix}${(idSeq++).toString(16).padStart(16, '0')}`;

/**
 * Every response carries its request id. It is added to the header object handed to writeHead
 * (every answer here is written that way) rather than set up front with setHeader: one header
 * set up front sends all the others through setHeader's validate-lower-case-store as well,
 * ~1 µs a header on a 9-header answer.
 */
export class GatewayResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  requestId = '';
  /** Access-Control-Allow-Origin for a browser request from an allowed origin (see --cors-origins). */
  corsOrigin: string | null = null;

  override writeHead(status: number, reasonOrHeaders?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this {
    // Node answers some requests itself before any handler runs (417 to an unknown Expect):
    // those get an id of their own too.
    if (!this.requestId) this.requestId = newRequestId();
    // As node does: a reason that is not a string leaves the headers to the third argument.
    const obj = typeof reasonOrHeaders === 'string' ? headers : (reasonOrHeaders ?? headers);
    if (obj && !Array.isArray(obj)) {
      obj['x-request-id'] = this.requestId;
      if (this.corsOrigin !== null) corsHeaders(this.corsOrigin, obj);
    } else {
      if (!this.hasHeader('x-request-id')) this.setHeader('x-request-id', this.requestId);
      if (this.corsOrigin !== null) for (const [k, v] of Object.entries(corsHeaders(this.corsOrigin, {}))) this.setHeader(k, v as string);
    }
    super.writeHead(status, reasonOrHeaders as string, headers as OutgoingHttpHeaders);
    // An answer that closes the connection (node marks it last: `connection: close`): requests
    // the client pipelined behind it are not served (see SocketState).
    if ((this as unknown as { _last?: boolean })._last) {
      const state = (this.socket as CountedSocket | null)?.[STATE];
      if (state) state.closing = true;
    }
    return this;
  }
}

/** What a browser may read of an answer besides the CORS-safelisted headers. */
const EXPOSED = 'x-request-id, retry-after, x-should-retry, x-ratelimit-limit-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-requests, x-ratelimit-remaining-tokens, x-ratelimit-reset-requests, x-ratelimit-reset-tokens';

function corsHeaders(origin: string, into: OutgoingHttpHeaders): OutgoingHttpHeaders {
  into['access-control-allow-origin'] = origin;
  into['access-control-expose-headers'] = EXPOSED;
  if (origin !== '*') into.vary ??= 'origin';
  return into;
}

/** The Access-Control-Allow-Origin for a request's Origin, or null when that origin is not allowed. */
function corsOriginFor(allowed: readonly string[], origin: string): string | null {
  if (allowed.length === 0) return null;
  if (allowed[0] === '*') return '*';
  return allowed.includes(origin) ? origin : null;
}

/** Header names a preflight may ask for (its Access-Control-Request-Headers, echoed if they are tokens). */
const HEADER_LIST = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;

/** The child logger is made only when a request logs (few do); a class keeps the getter on the prototype. */
class LazyContext implements RequestContext {
  readonly startedAt = performance.now();
  onClose: (() => void) | null = null;
  closed = false;
  private child: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    readonly id: string,
  ) {}

  get log(): Logger {
    this.child ??= this.parent.child({ reqId: this.id });
    return this.child;
  }
}

/** The methods each path answers (HEAD wherever GET is: node sends its headers without the body). */
const ALLOWED: Readonly<Record<string, string>> = {
  '/v1/chat/completions': 'POST',
  '/v1/models': 'GET, HEAD',
  '/v1/usage': 'GET, HEAD',
  '/healthz': 'GET, HEAD',
  '/readyz': 'GET, HEAD',
  '/metrics': 'GET, HEAD',
};

function routeOf(method: string, path: string): string | null {
  const get = method === 'GET' || method === 'HEAD';
  switch (path) {
    case '/v1/chat/completions':
      return method === 'POST' ? 'chat' : null;
    case '/v1/models':
      return get ? 'models' : null;
    case '/v1/usage':
      return get ? 'usage' : null;
    case '/healthz':
    case '/readyz':
    case '/metrics':
      return get ? path.slice(1) : null;
    default:
      // GET /v1/models/{model} (the id may hold a slash, raw or as %2F).
      return path.length > 11 && path.startsWith('/v1/models/') ? (get ? 'model' : null) : null;
  }
}

const DONE = Promise.resolve();

/**
 * Per socket, one state object (one symbol property on the socket, then plain fields: a handful
 * of symbol properties on the socket cost ~1% of a request's CPU). `open` counts the requests in
 * progress (from their arrival until their answer closes). Something node cannot parse (bad
 * framing, garbage after a pipelined request, headers that stall) is answered with a raw 400 or
 * 408 at once only when no request is in progress; otherwise the answer waits in `deferred` until
 * the answers due have gone out, then goes out and the socket ends. Written at once, it took the
 * place of the answer still due to an earlier, valid request (served and billed, its answer
 * lost), or landed in the middle of its bytes. `closing`: an answer has told the client the
 * connection closes (`connection: close`); requests it pipelined behind that one are not served,
 * as they would be billed and never answered (the client resends them on a new connection).
 */
class SocketState {
  open = 0;
  /** The last request's answer (whose body a parse error may be in). */
  last: ServerResponse | null = null;
  closing = false;
  deferred: string | null = null;
  /** How many open requests the deferred answer does not wait for (the broken one never ends by itself). */
  deferredAfter = 0;
}
const STATE = Symbol('socketState');
type CountedSocket = Socket & { [STATE]?: SocketState };

/**
 * The route's own promise (not an async wrapper around it: that was one more promise and turn
 * of the microtask queue per request); a handler that throws at once is a rejection here too.
 */
function dispatch(deps: ProxyDeps, route: string, ctx: RequestContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  try {
    switch (route) {
      case 'chat':
        return handleChat(deps, ctx, req, res);
      case 'models':
        handleModels(deps, ctx, req, res);
        return DONE;
      case 'model':
        handleModel(deps, ctx, req, res, path);
        return DONE;
      case 'usage':
        return handleUsage(deps, ctx, req, res);
      case 'healthz':
        handleHealthz(res);
        return DONE;
      case 'readyz':
        return handleReadyz(deps, res);
      case 'metrics':
        return handleMetrics(deps, res);
    }
  } catch (err) {
    return Promise.reject(err);
  }
  return DONE;
}

/** A raw HTTP answer for a socket node refused to parse into a request. */
function rawAnswer(e: PublicError, id: string): string {
  const body = JSON.stringify(e.body);
  return (
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${id}\r\nconnection: close\r\n\r\n${body}`
  );
}

/** The path (and query) of a request target in absolute form, or the target itself if it is none. */
function pathOfAbsolute(target: string): string {
  if (!/^https?:\/\//i.test(target)) return target;
  try {
    const u = new URL(target);
    return u.pathname + u.search;
  } catch {
    return target;
  }
}

function clientErrorAnswer(code: string | undefined): PublicError {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return publicError('request_timeout', 'The request did not arrive in time.');
  if (code === 'HPE_HEADER_OVERFLOW') return publicError('request_too_large', 'The request headers are too large.', { status: 431 });
  if (code === 'HPE_INVALID_EOF_STATE') return publicError('invalid_request', 'The connection ended before the request body was complete.');
  if (code === 'HPE_INVALID_CHUNK_SIZE' || code === 'HPE_INVALID_CONTENT_LENGTH' || code === 'HPE_UNEXPECTED_CONTENT_LENGTH' || code === 'HPE_INVALID_TRANSFER_ENCODING') {
    return publicError('invalid_request', 'The request body is not framed correctly (Content-Length or chunked Transfer-Encoding).');
  }
  return publicError('invalid_request', 'The request is not valid HTTP (malformed request line or headers).');
}

export function createProxyServer(deps: ProxyDeps): ProxyServer {
  const { config, log, metrics } = deps;
  let inFlight = 0;
  let draining = false;
  const idleWaiters: Array<() => void> = [];
  // One settle handler for every request (a .catch().finally() pair cost two promises each).
  const done = () => {
    if (--inFlight === 0 && idleWaiters.length > 0) for (const wake of idleWaiters.splice(0)) wake();
  };
  const server = createServer<typeof IncomingMessage, typeof GatewayResponse>(
    {
      ServerResponse: GatewayResponse,
      headersTimeout: config.clientHeadersTimeoutMs,
      // node's backstop for the whole request: its headers (clientHeadersTimeoutMs), then its
      // body (clientRequestTimeoutMs, enforced by readBody with a clear 408), then 5 s. Node
      // refuses to start when headersTimeout exceeds requestTimeout: a request timeout alone
      // (--client-request-timeout-ms 1000 under the default 10 s for headers) stopped the proxy
      // at start with node's RangeError.
      requestTimeout: config.clientHeadersTimeoutMs + config.clientRequestTimeoutMs + 5_000,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      // Checked in the handler, so the refusal is OpenAI-shaped like every other answer.
      requireHostHeader: false,
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(config.clientHeadersTimeoutMs / 4))),
    },
    (req, res) => {
      const socket = req.socket as CountedSocket;
      let state = socket[STATE];
      if (state === undefined) {
        state = new SocketState();
        socket[STATE] = state;
      } else if (state.closing) return; // pipelined behind an answer that closes the connection
      state.open++;
      state.last = res;
      const st = state;
      const id = newRequestId();
      const ctx = new LazyContext(log, id);
      res.requestId = id;
      let url = req.url ?? '/';
      // A target in absolute form (RFC 9112 §3.2.2: a server must accept it): its path.
      if (url.charCodeAt(0) !== 0x2f) url = pathOfAbsolute(url);
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      const route = routeOf(req.method ?? 'GET', path);
      // One close listener per request: it counts the answer and tells the handler (client gone?).
      // on(), not once(): a response closes once, and once() wraps every listener in a bound
      // function with a state object.
      res.on('close', () => {
        if (st.last === res) st.last = null;
        if (--st.open <= st.deferredAfter && st.deferred !== null) {
          const answer = st.deferred;
          st.deferred = null;
          if (socket.writable) socket.end(answer);
          else socket.destroy();
        }
        ctx.closed = true;
        try {
          ctx.onClose?.();
        } finally {
          // No answer started (the client left first): 499, as its usage event says, not the
          // 200 that statusCode holds until a status is set.
          metrics.request(route ?? 'unknown', res.headersSent ? res.statusCode : 499);
        }
      });
      // A browser's request: CORS headers on whatever answers it, from an allowed origin.
      const origin = req.headers.origin;
      if (origin !== undefined) res.corsOrigin = corsOriginFor(config.corsOrigins, origin);
      if (req.method === 'OPTIONS') {
        const allow = Object.hasOwn(ALLOWED, path) ? ALLOWED[path]! : path.length > 11 && path.startsWith('/v1/models/') ? 'GET, HEAD' : null;
        const asked = req.headers['access-control-request-method'];
        if (allow !== null && origin !== undefined && typeof asked === 'string') {
          if (res.corsOrigin === null) {
            return sendPublicError(res, publicError('origin_not_allowed', `Browser requests from ${origin.slice(0, 200)} are not allowed by this gateway (--cors-origins).`));
          }
          const wanted = req.headers['access-control-request-headers'];
          const h: OutgoingHttpHeaders = {
            'access-control-allow-methods': allow,
            'access-control-allow-headers': typeof wanted === 'string' && HEADER_LIST.test(wanted.trim()) ? wanted.trim() : 'authorization, content-type, x-api-key',
            'access-control-max-age': '600',
            'content-length': '0',
          };
          if (res.corsOrigin !== '*') h.vary = 'origin, access-control-request-method, access-control-request-headers';
          res.writeHead(204, h);
          res.end();
          return;
        }
      }
      if (draining) {
        res.setHeader('connection', 'close');
        return sendPublicError(res, publicError('unavailable', 'The gateway is shutting down; retry on another instance.', { headers: { 'retry-after': '1' } }));
      }
      if (!route) {
        if (!req.complete) res.setHeader('connection', 'close'); // an upload nobody will read
        const allow = Object.hasOwn(ALLOWED, path) ? ALLOWED[path]! : path.length > 11 && path.startsWith('/v1/models/') ? 'GET, HEAD' : null;
        if (allow) {
          return sendPublicError(res, publicError('method_not_allowed', `${req.method} is not allowed on ${path}; use ${allow}.`, { headers: { allow } }));
        }
        return sendPublicError(res, publicError('not_found', `Unknown route: ${req.method} ${path.slice(0, 200)}`));
      }
      if (req.headers.host === undefined && req.httpVersion === '1.1') {
        // HTTP/1.1 requires Host; node's own refusal of it has an empty body.
        res.setHeader('connection', 'close');
        return sendPublicError(res, publicError('invalid_request', 'HTTP/1.1 requests need a Host header.'));
      }
      // In flight until the handler is done, settlement included (it may outlive the response).
      inFlight++;
      dispatch(deps, route, ctx, req, res, path).then(done, (err: unknown) => {
        try {
          sendError(res, err, ctx.log);
        } finally {
          done();
        }
      });
    },
  );
  // Expect: 100-continue with a declared body over the limit: refused before the client uploads
  // it (node, without this listener, sent 100 Continue first and took the upload in vain).
  server.on('checkContinue', (req: IncomingMessage, res: GatewayResponse) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > config.maxBodyBytes) {
      res.setHeader('connection', 'close');
      sendPublicError(res, publicError('request_too_large', `The request body exceeds the limit of ${config.maxBodyBytes} bytes.`));
      return;
    }
    res.writeContinue();
    server.emit('request', req, res);
  });
  // An Expect other than 100-continue: node's own 417 has an empty body.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('connection', 'close');
    sendPublicError(res, publicError('invalid_request', `Unsupported Expect header: ${String(req.headers.expect).slice(0, 100)}.`, { status: 417 }));
  });
  // CONNECT (a tunnel): without a listener node drops the socket without a word.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    socket.end(rawAnswer(publicError('method_not_allowed', 'CONNECT is not supported: this is an API, not a proxy for tunnels.'), newRequestId()));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: CountedSocket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    // The error may be in the body of the last request (it never completed): that request is
    // answered by this, unless its own answer has begun (then the connection just closes).
    const state = socket[STATE];
    const last = state?.last ?? null;
    const own = last !== null && !last.req.complete && !last.writableEnded ? 1 : 0;
    if (own === 1 && last!.headersSent) return void socket.destroy();
    const answer = rawAnswer(clientErrorAnswer(err.code), newRequestId());
    // After the answers still due to earlier requests on this connection (see SocketState).
    if (state !== undefined && state.open > own) {
      state.deferred = answer;
      state.deferredAfter = own;
    } else socket.end(answer);
  });
  return {
    server,
    inFlight: () => inFlight,
    startDraining() {
      draining = true;
    },
    drained(timeoutMs) {
      if (inFlight === 0) return Promise.resolve(0);
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(inFlight), timeoutMs);
        idleWaiters.push(() => {
          clearTimeout(timer);
          resolve(0);
        });
      });
    },
  };
}
