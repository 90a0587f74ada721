// Prometheus metrics on a registry owned by this proxy instance (no global default registry,
// so two proxies in one test process do not collide). Counters are added up in plain numbers on
// the hot path and handed to prom-client when the metrics are rendered (its inc() hashes labels
// and validates on every call); the histograms are plain bucket arrays that prom-client renders.
import { Counter, Gauge, type Metric, Registry } from 'prom-client';

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
  clockSkewSeconds: () => number;
}

/**
 * A label-less histogram that prom-client's registry renders exactly as its own Histogram would
 * (same `_bucket{le=…}`, `_sum`, `_count` lines), but whose observe() is a bucket search and
 * three additions: prom-client's observe hashed an empty label set and validated on every call,
 * ~5 µs a request for the two histograms here.
 */
export class BucketHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly upper: readonly number[],
  ) {
    this.counts = new Float64Array(upper.length);
  }

  observe(value: number): void {
    if (!(value >= 0 || value < 0)) return; // NaN says nothing; prom-client throws on it
    const u = this.upper;
    let i = 0;
    while (i < u.length && value > u[i]!) i++;
    if (i < u.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; value: number; metricName: string }[] } {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    let acc = 0;
    for (let i = 0; i < this.upper.length; i++) {
      acc += this.counts[i]!;
      values.push({ labels: { le: this.upper[i]! }, value: acc, metricName: `${this.name}_bucket` });
    }
    values.push({ labels: { le: '+Inf' }, value: this.count, metricName: `${this.name}_bucket` });
    values.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: this.count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export function createMetrics(sources: GaugeSources): ProxyMetrics {
  const registry = new Registry();
  const requests = new Counter({ name: 'gateway_requests_total', help: 'Requests answered, by route and status.', labelNames: ['route', 'status'], registers: [registry] });
  const tokens = new Counter({ name: 'gateway_tokens_total', help: 'Tokens billed, by kind.', labelNames: ['kind'], registers: [registry] });
  const cost = new Counter({ name: 'gateway_cost_usd_total', help: 'Cost billed in USD.', registers: [registry] });
  const denials = new Counter({ name: 'gateway_denials_total', help: 'Requests refused by the gateway, by reason (error code).', labelNames: ['reason'], registers: [registry] });
  const usageEvents = new Counter({ name: 'gateway_usage_events_total', help: 'Usage events handed to the sink, by usage source.', labelNames: ['source'], registers: [registry] });
  const upstream = new BucketHistogram(
    'gateway_upstream_latency_seconds',
    'Time from sending a request upstream to its response headers.',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  );
  const overhead = new BucketHistogram(
    'gateway_overhead_seconds',
    'Time the gateway adds: request received to upstream dispatch, plus upstream end to response end.',
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
  );
  registry.registerMetric(upstream as unknown as Metric);
  registry.registerMetric(overhead as unknown as Metric);
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  gauge('gateway_in_flight_requests', 'Requests being served.', sources.inFlight);
  gauge('gateway_usage_events_pending', 'Usage events buffered, not yet in the store.', sources.usagePending);
  gauge('gateway_snapshot_version', 'config_version of the snapshot in use.', sources.snapshotVersion);
  gauge('gateway_snapshot_age_seconds', 'Seconds since the configuration was last checked against the store (reloaded or found current); it grows while reloads fail.', sources.snapshotAgeSeconds);
  gauge('gateway_limit_counters_fallback', '1 while the shared counters (Redis) are unreachable and failure modes apply, else 0.', sources.countersFallback);
  gauge('gateway_clock_skew_seconds', "This instance's clock minus Redis's at the last check (every minute; 0 without Redis). Rolling limits are only as exact as the instances' clocks agree.", sources.clockSkewSeconds);

  // One pending sum per label set, flushed into prom-client before every render. Found by the
  // label values themselves (a map per label), not by a key string built per call.
  interface Pending {
    child: { inc(v?: number): void };
    value: number;
  }
  const all: Pending[] = [];
  const pendingOf = (c: Counter<string>, labels: Record<string, string>): Pending => {
    const p = { child: c.labels(labels), value: 0 };
    all.push(p);
    return p;
  };
  const byLabel = (c: Counter<string>, label: string) => {
    const map = new Map<string, Pending>();
    return (value: string): Pending => {
      let p = map.get(value);
      if (!p) {
        p = pendingOf(c, { [label]: value });
        map.set(value, p);
      }
      return p;
    };
  };
  const requestsByRoute = new Map<string, Map<number, Pending>>();
  const requestPending = (route: string, status: number): Pending => {
    let byStatus = requestsByRoute.get(route);
    if (!byStatus) {
      byStatus = new Map();
      requestsByRoute.set(route, byStatus);
    }
    let p = byStatus.get(status);
    if (!p) {
      p = pendingOf(requests, { route, status: String(status) });
      byStatus.set(status, p);
    }
    return p;
  };
  const denialPending = byLabel(denials, 'reason');
  const usagePending = byLabel(usageEvents, 'source');
  // Present (at 0) from the start, as before any request.
  const promptTokens = pendingOf(tokens, { kind: 'prompt' });
  const completionTokens = pendingOf(tokens, { kind: 'completion' });
  // The cost is summed in whole micro-dollars and rendered as total / 1e6: adding each scrape's
  // share in dollars (a float) drifted from the store's exact total (ten $0.10 requests, scraped
  // after each, showed 0.9999999999999999).
  let costMicros = 0;
  let costRendered = 0;
  const flush = () => {
    for (const p of all) {
      if (p.value > 0) p.child.inc(p.value);
      p.value = 0;
    }
    if (costMicros !== costRendered) {
      cost.reset();
      cost.inc(costMicros / 1e6);
      costRendered = costMicros;
    }
  };

  return {
    registry,
    request(route, status) {
      requestPending(route, status).value++;
    },
    tokens(prompt, completion) {
      if (prompt) promptTokens.value += prompt;
      if (completion) completionTokens.value += completion;
    },
    cost(micros) {
      if (micros > 0) costMicros += micros;
    },
    denial(reason) {
      denialPending(reason).value++;
    },
    upstreamLatency: (s) => upstream.observe(s),
    overhead: (s) => overhead.observe(s),
    usageEvent(source) {
      usagePending(source).value++;
    },
    render: () => {
      flush();
      return registry.metrics();
    },
  };
}
