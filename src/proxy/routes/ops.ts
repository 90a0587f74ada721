// Unauthenticated operational routes: liveness, readiness (store and snapshot), metrics.
import type { ServerResponse } from 'node:http';
import type { ProxyDeps } from '../context.js';
import { sendJson } from '../relay-json.js';

export function handleHealthz(res: ServerResponse): void {
  sendJson(res, 200, '{"status":"ok"}', { 'content-type': 'application/json' });
}

export async function handleReadyz(deps: ProxyDeps, res: ServerResponse): Promise<void> {
  const report = await deps.health();
  sendJson(res, report.ready ? 200 : 503, JSON.stringify({ status: report.ready ? 'ready' : 'not_ready', ...report }), {
    'content-type': 'application/json',
  });
}

export async function handleMetrics(deps: ProxyDeps, res: ServerResponse): Promise<void> {
  const text = await deps.metrics.render();
  sendJson(res, 200, text, { 'content-type': deps.metrics.registry.contentType });
}
