// Prices from the snapshot's model table, and exact integer cost arithmetic (money.ts).
import { tokenCostMicros } from '../money.js';
import type { Snapshot, SnapshotOrg, SnapshotPrice } from './types.js';

export const FREE: SnapshotPrice = Object.freeze({ prompt: 0, completion: 0, request: 0 });

/**
 * The model's price, or null when the model is unknown and the org refuses unknown models
 * (the caller answers model_not_found). An org with unknownModelPolicy 'free' gets a zero price.
 */
export function priceFor(snapshot: Snapshot, org: SnapshotOrg, model: string): SnapshotPrice | null {
  const price = snapshot.prices.get(model);
  if (price) return price;
  return org.unknownModelPolicy === 'free' ? FREE : null;
}

/** Cost in micro-dollars: each side rounded half up from micro-dollars per million tokens. */
export function costMicros(price: SnapshotPrice, promptTokens: number, completionTokens: number): number {
  return tokenCostMicros(promptTokens, price.prompt) + tokenCostMicros(completionTokens, price.completion) + price.request;
}
