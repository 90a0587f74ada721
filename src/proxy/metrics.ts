// Prometheus metrics on a registry owned by this proxy instance (no global default registry,
// so two proxies in one test process do not collide). Counters are added up in plain numbers on
// the hot path and handed to prom-client when the metrics are rendered (its inc() hashes labels
// and validates on every call); the histograms observe directly.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface ProxyMetrics {
  registry: Registry;
  request(route: string, status: number): void;
  tokens(prompt: number, completion: number): void;
  cost(micros: number): void;
  denial(reason: string): void;
  upstreamLatency(seconds: number): void;
  overhead(seconds: number): void;
  usageEvent(source: string): void;
  render(): Promise<string>;
}

export interface GaugeSources {
  inFlight: () => number;
  usagePending: () => number;
  snapshotVersion: () => number;
  snapshotAgeSeconds: () => number;
  /** 1 while Redis is unreachable and local counters stand in for the shared ones (failure modes apply). */
  countersFallback: () => number;
}

export function createMetrics(sources: GaugeSources): ProxyMetrics {
  const registry = new Registry();
  const requests = new Counter({ name: 'gateway_requests_total', help: 'Requests answered, by route and status.', labelNames: ['route', 'status'], registers: [registry] });
  const tokens = new Counter({ name: 'gateway_tokens_total', help: 'Tokens billed, by kind.', labelNames: ['kind'], registers: [registry] });
  const cost = new Counter({ name: 'gateway_cost_usd_total', help: 'Cost billed in USD.', registers: [registry] });
  const denials = new Counter({ name: 'gateway_denials_total', help: 'Requests refused by the gateway, by reason (error code).', labelNames: ['reason'], registers: [registry] });
  const usageEvents = new Counter({ name: 'gateway_usage_events_total', help: 'Usage events handed to the sink, by usage source.', labelNames: ['source'], registers: [registry] });
  const upstream = new Histogram({
    name: 'gateway_upstream_latency_seconds',
    help: 'Time from sending a request upstream to its response headers.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const overhead = new Histogram({
    name: 'gateway_overhead_seconds',
    help: 'Time the gateway adds: request received to upstream dispatch, plus upstream end to response end.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [registry],
  });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  gauge('gateway_in_flight_requests', 'Requests being served.', sources.inFlight);
  gauge('gateway_usage_events_pending', 'Usage events buffered, not yet in the store.', sources.usagePending);
  gauge('gateway_snapshot_version', 'config_version of the snapshot in use.', sources.snapshotVersion);
  gauge('gateway_snapshot_age_seconds', 'Seconds since the snapshot in use was loaded.', sources.snapshotAgeSeconds);
  gauge('gateway_limit_counters_fallback', '1 while the shared counters (Redis) are unreachable and failure modes apply, else 0.', sources.countersFallback);

  // One pending sum per label set; flushed into prom-client before every render.
  interface Pending {
    child: { inc(v?: number): void };
    value: number;
  }
  const pending = new Map<string, Pending>();
  const add = (c: Counter<string>, key: string, labels: () => Record<string, string>, v = 1) => {
    let p = pending.get(key);
    if (!p) {
      p = { child: c.labels(labels()), value: 0 };
      pending.set(key, p);
    }
    p.value += v;
  };
  // Present (at 0) from the start, as before any request.
  add(tokens, 't|prompt', () => ({ kind: 'prompt' }), 0);
  add(tokens, 't|completion', () => ({ kind: 'completion' }), 0);
  let costMicros = 0;
  const flush = () => {
    for (const p of pending.values()) {
      if (p.value > 0) p.child.inc(p.value);
      p.value = 0;
    }
    if (costMicros > 0) cost.inc(costMicros / 1e6);
    costMicros = 0;
  };

  return {
    registry,
    request: (route, status) => add(requests, `r|${route}|${status}`, () => ({ route, status: String(status) })),
    tokens(prompt, completion) {
      if (prompt) add(tokens, 't|prompt', () => ({ kind: 'prompt' }), prompt);
      if (completion) add(tokens, 't|completion', () => ({ kind: 'completion' }), completion);
    },
    cost(micros) {
      if (micros > 0) costMicros += micros;
    },
    denial: (reason) => add(denials, `d|${reason}`, () => ({ reason })),
    upstreamLatency: (s) => upstream.observe(s),
    overhead: (s) => overhead.observe(s),
    usageEvent: (source) => add(usageEvents, `u|${source}`, () => ({ source })),
    render: () => {
      flush();
      return registry.metrics();
    },
  };
}
