import { type AdminCaller, authenticateAdmin, forbid, type Need, permits } from './admin-auth.js';
import { type Req, type Res, sendProseError, sendUnknownResource } from './http-io.js';
import type { OidcContext } from './token-issue.js';

export interface AdminCall {
  ctx: OidcContext;
  req: Req;
  res: Res;
  params: Record<string, string>;
  caller: AdminCaller;
}

export type AdminHandler = (call: AdminCall) => void | Promise<void>;

/** `path` is relative to `/admin/realms/{realm}`; `:name` segments are parameters. */
export interface AdminRoute {
  method: string;
  path: string;
  need: Need;
  handler: AdminHandler;
}

function matchPath(pattern: string, segments: string[]): Record<string, string> | undefined {
  const parts = pattern.split('/');
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of parts.entries()) {
    const seg = segments[i] ?? '';
    if (part.startsWith(':')) params[part.slice(1)] = seg;
    else if (part !== seg) return undefined;
  }
  return params;
}

type Match = { route: AdminRoute; params: Record<string, string> } | 'method' | undefined;

/** First route whose path matches; literal routes are listed before parameter routes. */
function findRoute(routes: AdminRoute[], method: string, segments: string[]): Match {
  let pathMatched = false;
  for (const route of routes) {
    const params = matchPath(route.path, segments);
    if (!params) continue;
    if (route.method === method) return { route, params };
    pathMatched = true;
  }
  return pathMatched ? 'method' : undefined;
}

/**
 * `/admin/realms/{realm}/…`: token first (401), then realm (404 `Realm not found.`), then the
 * route (404 / 405), then the caller's rights (403), then the handler.
 */
export async function adminRoute(ctx: OidcContext, routes: AdminRoute[], req: Req, res: Res): Promise<void> {
  const [, , realm, ...rest] = req.segments;
  const caller = await authenticateAdmin(ctx, req, res);
  if (!caller) return;
  if (realm !== ctx.state.name) return sendProseError(res, 404, 'Realm not found.');
  const match = findRoute(routes, req.method, rest);
  if (match === undefined) return sendUnknownResource(res);
  if (match === 'method') return sendProseError(res, 405, 'HTTP 405 Method Not Allowed');
  if (!permits(caller, match.route.need)) return forbid(res);
  await match.route.handler({ ctx, req, res, params: match.params, caller });
}
