import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { adminRoute } from './admin-router.js';
import { ROLE_GROUP_ROUTES } from './admin-roles-groups.js';
import { USER_LINK_ROUTES } from './admin-user-links.js';
import { USER_ROUTES } from './admin-users.js';
import { type Req, readBody, type Res, send, sendOAuthError, sendUnknownResource, toReq } from './http-io.js';
import { realmRoute } from './oidc-routes.js';
import type { OidcContext } from './token-issue.js';
import type { DownMode, RecordedRequest } from './types.js';

const ADMIN_ROUTES = [...USER_ROUTES, ...USER_LINK_ROUTES, ...ROLE_GROUP_ROUTES];

export interface ServerControl {
  requests: RecordedRequest[];
  down: boolean;
  downMode: DownMode;
}

async function dispatch(ctx: OidcContext, req: Req, res: Res): Promise<void> {
  const [first, second] = req.segments;
  if (first === 'realms' && req.segments.length >= 2) return realmRoute(ctx, req, res);
  if (first === 'admin' && second === 'realms' && req.segments.length >= 3) return adminRoute(ctx, ADMIN_ROUTES, req, res);
  sendUnknownResource(res);
}

function record(control: ServerControl, raw: IncomingMessage, body: string): void {
  control.requests.push({ method: raw.method ?? 'GET', path: raw.url ?? '/', headers: { ...raw.headers }, body });
}

/** Down: the request is recorded (without its body), then the socket is destroyed or a bare 503 sent. */
function answerDown(control: ServerControl, raw: IncomingMessage, res: ServerResponse): void {
  record(control, raw, '');
  if (control.downMode === 'destroy') raw.socket.destroy();
  else send(res, 503, '', { Connection: 'close' });
}

async function handle(getCtx: () => OidcContext, control: ServerControl, raw: IncomingMessage, res: ServerResponse): Promise<void> {
  if (control.down) return answerDown(control, raw, res);
  const body = await readBody(raw);
  record(control, raw, body);
  try {
    await dispatch(getCtx(), toReq(raw, body), res);
  } catch (err) {
    console.error('fake keycloak: handler failed', err);
    if (!res.headersSent) sendOAuthError(res, 500, 'unknown_error', 'For more on this error consult the server log.');
  }
}

export async function listen(getCtx: () => OidcContext, control: ServerControl): Promise<{ server: Server; url: string }> {
  const server = createServer((raw, res) => {
    handle(getCtx, control, raw, res).catch(() => raw.socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

export function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
}
