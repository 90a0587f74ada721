// `limits set` on any scope. Key limits go through updateKey so a child key can never be
// looser than its parent; user and org limits are written here, audited the same way.
import type { Limit } from '../db/schema.js';
import { usageError } from '../errors.js';
import { recordChange } from './audit.js';
import type { ServiceContext } from './context.js';
import { updateKey } from './keys.js';
import { applyLimits, type LimitSpec, listLimits } from './limits.js';
import { type ResolvedScope, resolveScope } from './scopes.js';
import { sortLimits } from './limit-usage.js';

export async function setScopeLimits(ctx: ServiceContext, scopeText: string, specs: LimitSpec[]): Promise<{ scope: ResolvedScope; limits: Limit[] }> {
  if (specs.length === 0) throw usageError('nothing to set: pass at least one limit option (e.g. --rpm 60)');
  const scope = await resolveScope(ctx.store.db, ctx, scopeText);
  if (scope.type === 'key') {
    const { limits } = await updateKey(ctx, scope.id, { limits: specs });
    return { scope, limits: sortLimits(limits) };
  }
  const limits = await ctx.store.transaction(async (tx) => {
    await applyLimits(tx, ctx, scope, specs);
    const changes = specs.map((s) => ({ metric: s.metric, window: s.window, model: s.model || null, max: s.max }));
    await recordChange(tx, ctx, 'limits.set', { type: scope.type, id: scope.id }, { limits: changes });
    return listLimits(tx, ctx, scope);
  });
  return { scope, limits: sortLimits(limits) };
}
