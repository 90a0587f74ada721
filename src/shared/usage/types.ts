// One usage event per request (DESIGN.md §5); the proxy hands them to a sink that writes in
// batches off the request path.

export type UsageSource = 'upstream' | 'estimated' | 'none';

export interface UsageRecord {
  requestId: string;
  ts: number;
  orgId: string;
  userId: string | null;
  keyId: string;
  /** Ancestor key ids (parent first) whose counters this request also charged. */
  ancestorKeyIds: readonly string[];
  model: string;
  provider: string;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** micro-dollars */
  costMicros: number;
  status: number;
  errorCode: string | null;
  latencyMs: number;
  ttfbMs: number | null;
  stream: boolean;
  usageSource: UsageSource;
  /** Credit scopes (`${scopeType}:${scopeId}`) this request is charged to. */
  creditScopes: readonly string[];
}

export interface UsageSink {
  add(record: UsageRecord): void;
  /** Write everything buffered now; resolves when it is in the store. */
  flush(): Promise<void>;
  /** Events buffered, waiting for the store. */
  pending(): number;
  /** Flush and stop the timer; after close, add() still buffers but nothing is written. */
  close(): Promise<void>;
}
