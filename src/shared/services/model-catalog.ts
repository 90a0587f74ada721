// Fetching an upstream's model catalog: OpenRouter's GET {base_url}/models (protocols.md A.6),
// with prices as per-token decimal strings turned into exact integers. The mock provider's
// catalog comes from src/shared/mock-catalog.ts, with no network.
import { Agent, errors as undiciErrors, request } from 'undici';
import { z } from 'zod';
import type { Org } from '../db/schema.js';
import { GatewayError } from '../errors.js';
import { MOCK_MODELS } from '../mock-catalog.js';
import { perTokenUsdToMicrosPerM, usdToMicros } from '../money.js';

export interface CatalogEntry {
  id: string;
  name: string;
  contextLength: number | null;
  /** micro-dollars per million tokens; null when the upstream gives no usable price */
  prompt: number | null;
  completion: number | null;
  /** micro-dollars per request */
  request: number;
}

export interface FetchOptions {
  timeoutMs?: number;
}

const price = z.union([z.string(), z.number()]).nullish();
const catalogSchema = z.object({
  data: z.array(
    z.object({
      id: z.string().min(1),
      name: z.string().nullish(),
      context_length: z.number().nullish(),
      pricing: z.object({ prompt: price, completion: price, request: price }).partial().nullish(),
    }),
  ),
});

/** A per-token (or per-request, scale 6) price; negative or unparsable prices (OpenRouter's "-1" for routers) count as unknown. */
function parsePrice(value: string | number | null | undefined, toInt: (s: string) => number): number | null {
  if (value === null || value === undefined) return null;
  try {
    const n = toInt(typeof value === 'number' ? String(value) : value);
    return n < 0 ? null : n;
  } catch {
    return null;
  }
}

export function mockCatalog(): CatalogEntry[] {
  return MOCK_MODELS.map((m) => ({
    id: m.id,
    name: m.name,
    contextLength: m.contextLength,
    prompt: perTokenUsdToMicrosPerM(m.pricing.prompt),
    completion: perTokenUsdToMicrosPerM(m.pricing.completion),
    request: 0,
  }));
}

export function parseCatalog(body: unknown, origin: string): CatalogEntry[] {
  const parsed = catalogSchema.safeParse(body);
  if (!parsed.success) throw new GatewayError('upstream_error', `${origin}/models did not answer with a model list ({"data":[…]})`);
  return parsed.data.data.map((m) => ({
    id: m.id,
    name: m.name ?? m.id,
    contextLength: m.context_length ?? null,
    prompt: parsePrice(m.pricing?.prompt, perTokenUsdToMicrosPerM),
    completion: parsePrice(m.pricing?.completion, perTokenUsdToMicrosPerM),
    request: parsePrice(m.pricing?.request, usdToMicros) ?? 0,
  }));
}

/** GET {base_url}/models with the org's upstream key; any failure is exit 6 with the reason. */
export async function fetchCatalog(org: Org, upstreamKey: string | null, opts: FetchOptions = {}): Promise<CatalogEntry[]> {
  if (org.provider === 'mock') return mockCatalog();
  if (!org.baseUrl) throw new GatewayError('usage_error', `org '${org.name}' has no base URL: set one with gatewayctl orgs update ${org.name} --base-url URL`);
  const url = `${org.baseUrl}/models`;
  const timeout = opts.timeoutMs ?? 15_000;
  const dispatcher = new Agent({ connect: { timeout }, headersTimeout: timeout, bodyTimeout: timeout });
  try {
    const res = await request(url, {
      method: 'GET',
      dispatcher,
      headers: { accept: 'application/json', ...(upstreamKey ? { authorization: `Bearer ${upstreamKey}` } : {}) },
    });
    if (res.statusCode < 200 || res.statusCode >= 300) {
      await res.body.dump();
      throw new GatewayError('upstream_error', `the upstream of org '${org.name}' answered ${res.statusCode} to GET ${url}`);
    }
    let body: unknown;
    try {
      body = await res.body.json();
    } catch {
      throw new GatewayError('upstream_error', `GET ${url} did not answer JSON`);
    }
    return parseCatalog(body, org.baseUrl);
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    if (err instanceof undiciErrors.ConnectTimeoutError || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
      throw new GatewayError('upstream_timeout', `the upstream of org '${org.name}' did not answer GET ${url} within ${timeout} ms`, { cause: err });
    }
    const reason = (err as { code?: string }).code ?? (err instanceof Error ? err.message : String(err));
    throw new GatewayError('upstream_error', `cannot reach the upstream of org '${org.name}' at ${url} (${reason})`, { cause: err });
  } finally {
    await dispatcher.close();
  }
}
