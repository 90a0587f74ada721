// What every upstream adapter offers the relay: one call that yields a status, headers and a
// byte stream, so JSON and SSE share one path and nothing is buffered here (STYLE §13).
import type { SnapshotOrg, SnapshotPrice } from '../../shared/snapshot/types.js';
import type { ChatRequest } from '../chat-request.js';
import type { ClientAbort } from '../client-abort.js';

export interface UpstreamCall {
  org: SnapshotOrg;
  /** The client's body exactly as received. */
  raw: Buffer;
  parsed: ChatRequest;
  stream: boolean;
  /** The price the gateway knows for the model, if any (the mock prices its usage.cost with it). */
  price: SnapshotPrice | undefined;
  signal: ClientAbort;
  requestId: string;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Buffer>;
  /** Releases the connection without reading the rest (client gone, stream cut). */
  discard(): void;
  /**
   * Whether the body has ended cleanly with every chunk taken (the iterator would say done):
   * the relay then sends the last chunk and the end of the response in one write. Optional: a
   * body that cannot tell is read to its end.
   */
  ended?(): boolean;
}

/** A non-streaming answer, read whole. */
export interface UpstreamWhole {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The content-type header (read without building `headers`). */
  contentType: string | undefined;
  body: Buffer;
  /** performance.now() when the response headers arrived. */
  headersAt: number;
}

export interface UpstreamAdapter {
  readonly provider: string;
  /**
   * Throws GatewayError upstream_timeout (504) or upstream_error (502) when no answer comes, or
   * unavailable (503) when no connection to the upstream frees in time (nothing was sent).
   */
  chat(call: UpstreamCall): Promise<UpstreamResponse>;
  /**
   * The same call for a non-streaming request, answered with the whole body at once: no
   * stream object, async iterator or promise per chunk for an answer that is read whole anyway.
   */
  chatWhole(call: UpstreamCall): Promise<UpstreamWhole>;
}
