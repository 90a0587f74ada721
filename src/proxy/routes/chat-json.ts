// The non-streaming half of chat completions: read the whole answer, settle, then send it
// with gateway_usage and the x-ratelimit-* headers of the settled counters.
import { completionTokenEstimate } from '../chat-request.js';
import { sendPublicError } from '../errors.js';
import { rateLimitHeaders } from '../rate-headers.js';
import { dropIfUnread, readJsonAnswer, sendJson, spliceGatewayUsage, spliceGatewayUsageText } from '../relay-json.js';
import { gatewayUsageJson, usageJsonBytes } from '../usage-view.js';
import { type ChatCall, finish } from './chat.js';

export async function relayChatJson(call: ChatCall): Promise<void> {
  const { deps, ctx, res, outcome } = call;
  const adapter = deps.upstreams.forOrg(call.auth.org);
  const sentAt = performance.now();
  const up = await adapter.chatWhole({
    org: call.auth.org, raw: call.raw, parsed: call.parsed, stream: false, price: call.plan.price, signal: call.abort, requestId: ctx.id,
  });
  deps.metrics.upstreamLatency((up.headersAt - sentAt) / 1000);
  const answer = readJsonAnswer(up);
  if (!answer.ok) {
    outcome.status = answer.error.status;
    outcome.errorCode = answer.error.body.error.code;
    ctx.log.info({ upstreamStatus: up.status, status: answer.error.status }, 'upstream refused the request');
    sendPublicError(res, answer.error);
    await finish(call);
    return;
  }
  outcome.delivered = true;
  // The upstream produced it (and bills for it), but a client already gone will not get it.
  if (call.clientGone()) {
    outcome.status = 499;
    outcome.errorCode = 'aborted';
  }
  outcome.reported = answer.reported;
  outcome.completionEstimate = completionTokenEstimate(answer.completionBytes);
  const afterUpstream = performance.now();
  outcome.ttfbMs = Math.round(afterUpstream - ctx.startedAt);
  let settled = finish(call);
  if (settled instanceof Promise) settled = await settled;
  const charge = settled?.charge ?? { promptTokens: 0, completionTokens: 0, costMicros: 0, source: 'none' as const };
  const states = settled?.states ?? [];
  const usage = gatewayUsageJson(ctx.id, charge, states);
  deps.recent.add(call.auth.key.id, ctx.id, charge, states);
  const headers = rateLimitHeaders(settled?.states ?? [], deps.now(), { 'content-type': answer.contentType });
  if (answer.text === null) sendJson(res, 200, spliceGatewayUsage(answer.body, usage), headers);
  else {
    const out = spliceGatewayUsageText(answer.text, answer.body.length, usage, usageJsonBytes(usage));
    sendJson(res, 200, out.text, headers, out.bytes);
  }
  dropIfUnread(res, deps.config.clientWriteTimeoutMs);
  deps.metrics.overhead((sentAt - ctx.startedAt + performance.now() - afterUpstream) / 1000);
}
