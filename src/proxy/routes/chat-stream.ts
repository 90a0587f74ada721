// The streaming half of chat completions: relay SSE as it arrives, watch a stream without
// max_tokens against its reservation, and settle on whatever ended the stream.
import { buildCounters } from '../../shared/snapshot/counters.js';
import { extend } from '../admission.js';
import type { ReportedUsage } from '../billing.js';
import { completionTokenEstimate, deliveredTokenBound } from '../chat-request.js';
import { denialError, sendPublicError, toPublicError, upstreamError } from '../errors.js';
import { reportedUsage } from '../relay-json.js';
import { type Refusal, type RelayOptions, relaySse, type StreamWatch } from '../relay-sse.js';
import type { StreamUsage } from '../sse-usage.js';
import { type ChatCall, finish } from './chat.js';

function reported(u: StreamUsage | null): ReportedUsage | null {
  const r = u ? reportedUsage(u.raw) : null;
  if (!r) return null;
  // The cost as the observer found its literal text where the text decides (exact, not as
  // JSON.parse's double prints), else the number, which then decides alone.
  delete r.costText;
  delete r.cost;
  if (u!.costText !== undefined) r.costText = u!.costText;
  else if (u!.cost !== undefined) r.cost = u!.cost;
  return r;
}

/**
 * Without max_tokens the reservation holds the default cap. When the delivered text outgrows
 * it, more room is reserved; if the quota has none, the stream is ended cleanly (error event,
 * then [DONE]) and billed for what was delivered.
 *
 * The watch compares the reservation with an upper bound of the tokens delivered, not with the
 * billing estimate (4 bytes a token): every token of delivered text is at least one UTF-8 byte
 * (the prompt bound's argument), so the bound is the delivered text's size in bytes. With the
 * estimate, text of 1–3 bytes a token (digits, punctuation, some scripts), which a client can
 * ask for, ran past an exhausted quota 2–4×. The price of the bound: ordinary text (~4 bytes a
 * token) takes room four times as fast as it uses it while it streams, so near an exhausted
 * quota a stream is cut earlier than its real usage would require; the settlement gives the
 * surplus back. One extension covers however far the delivery has run past the reservation
 * (a burst of many events in one piece is judged once).
 */
function quotaWatch(call: ChatCall): StreamWatch {
  const { deps, plan, bill, auth, ctx } = call;
  let reservedCompletion = plan.completionCap;
  let extensions = 0;
  const step = Math.max(1, plan.extensionTokens);
  const grow = async (bound: number): Promise<Refusal | null> => {
    const more = Math.ceil((bound - reservedCompletion) / step) * step;
    try {
      // The room is asked of the limits as they are now: a reload since the admission may have
      // reset a quota, raised, lowered or removed a limit, or granted credits. On the admission's
      // counters a removed or reset limit was rebuilt from the store (the memory backend) or
      // found as it was (Redis) and cut the stream, a raised one cut it at its old max, and a
      // lowered one let it grow past the new. The extension is released at settlement, which
      // charges the real usage as before.
      const current = deps.snapshot();
      const now = deps.now();
      const counters = current === plan.snapshot ? plan.counters : buildCounters(current, auth, call.parsed.model, now);
      const r = await extend(deps.limits, `${ctx.id}:x${++extensions}`, plan, auth.org.failureMode, now, more, counters);
      if (r.ok) {
        if (r.reservation) bill.reservations.push(r.reservation);
        reservedCompletion += more;
        return null;
      }
      deps.metrics.denial(r.denial.code);
      const e = denialError(r.denial, deps.now(), 'stream').body.error;
      return { message: e.message, type: e.type, code: e.code };
    } catch (err) {
      const e = toPublicError(err, ctx.log).body.error;
      return { message: e.message, type: e.type, code: e.code };
    }
  };
  return {
    // Within the reservation (nearly every event) the answer is a plain null: no promise.
    check(state) {
      const bound = deliveredTokenBound(state.deliveredBytes);
      return bound <= reservedCompletion ? null : grow(bound);
    },
  };
}

/**
 * With max_tokens the reservation is exact and the stream is not watched, provided the upstream
 * honours the cap. One that does not (it happens: a provider ignoring max_tokens, a proxy in
 * between dropping it) would stream past the reservation unchecked. So once a stream's raw bytes
 * pass RAW_BYTES_PER_TOKEN per token of the cap (+16 KiB) its delivered text is measured on every
 * chunk (measuring is what a stream billed by its usage otherwise skips; small streams never pay
 * it), and past TEXT_BYTES_PER_TOKEN per token (no tokenizer's tokens are that long on average)
 * it is watched like a stream without max_tokens: more room is reserved as it grows, and without
 * room it is cut. A stream that honours its cap never gets there, however fat its events
 * (logprobs); one that does not overspends by at most the text of those raw bytes.
 */
const RAW_BYTES_PER_TOKEN = 64;
const TEXT_BYTES_PER_TOKEN = 16;

function capGuard(call: ChatCall): NonNullable<RelayOptions['guard']> {
  const cap = call.plan.completionCap;
  return {
    afterBytes: cap * RAW_BYTES_PER_TOKEN + 16_384,
    exceeded: (state) => state.deliveredBytes > cap * TEXT_BYTES_PER_TOKEN + 1_024,
    watch: () => quotaWatch(call),
  };
}

const NEVER = () => false;

export async function relayChatStream(call: ChatCall, headers: Record<string, string>): Promise<void> {
  const { deps, ctx, res, outcome, plan } = call;
  const sentAt = performance.now();
  const up = await deps.upstreams.forOrg(call.auth.org).chat({
    org: call.auth.org, raw: call.raw, parsed: call.parsed, stream: true, price: plan.price, signal: call.abort, requestId: ctx.id,
  });
  deps.metrics.upstreamLatency((performance.now() - sentAt) / 1000);
  if (up.status < 200 || up.status > 299) {
    const chunks: Buffer[] = [];
    for await (const c of up.body) chunks.push(c);
    const e = upstreamError(up.status, Buffer.concat(chunks), up.headers);
    outcome.status = e.status;
    outcome.errorCode = e.body.error.code;
    sendPublicError(res, e);
    await finish(call);
    return;
  }
  outcome.delivered = true;
  const limited = call.bill.reservations.length > 0;
  const watch = !plan.capGiven && limited ? quotaWatch(call) : null;
  const r = await relaySse(res, up, {
    includeUsage: call.parsed.stream_options?.include_usage === true,
    headers,
    clientGone: call.clientGone,
    watch,
    writeTimeoutMs: deps.config.clientWriteTimeoutMs,
    // One choice only: with n > 1, a finish_reason ends one choice, not the completion.
    onGone: (call.parsed.n ?? 1) === 1 ? call.onGone : undefined,
    guard: plan.capGiven && limited ? capGuard(call) : undefined,
  });
  // The relay is over: a hang-up from now on has no stream to read on (its write may still be
  // flushing when the socket closes).
  call.onGone(NEVER);
  const endedAt = performance.now();
  outcome.reported = reported(r.state.usage);
  outcome.cutShort = r.end.kind !== 'complete';
  // The estimate bills a stream whose usage never came (or came without a completion count, or
  // may be older than the text of a stream cut short); reading deliveredBytes measures the
  // delivered text (see sse-usage.ts), so a finished stream billed by its usage skips that.
  const claimed = outcome.reported?.completionTokens ?? null;
  if (claimed === null || claimed === 0 || outcome.cutShort) {
    outcome.completionEstimate = completionTokenEstimate(r.state.deliveredBytes);
  }
  outcome.ttfbMs = r.firstByteAt === null ? null : Math.round(r.firstByteAt - ctx.startedAt);
  if (r.end.kind === 'client_gone') {
    up.discard();
    outcome.status = 499;
    outcome.errorCode = 'aborted';
  } else if (r.end.kind !== 'complete') outcome.errorCode = r.end.code;
  else if (r.state.error) outcome.errorCode = 'upstream_error';
  let settled = finish(call);
  if (settled instanceof Promise) settled = await settled;
  if (settled) deps.recent.add(call.auth.key.id, ctx.id, settled.charge, settled.states);
  deps.metrics.overhead((sentAt - ctx.startedAt + performance.now() - endedAt) / 1000);
}
