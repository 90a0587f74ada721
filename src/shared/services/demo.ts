// The demo: two orgs on the built-in mock provider, three users and a key each with a different
// kind of limit, so a fresh install can be tried in a minute with no account anywhere.
// Seeding is idempotent: orgs, users and keys are found by name and reused. Keys are rotated on
// every run (same id, settings and history), because a plaintext key is shown only once and the
// caller needs usable ones to print.
import { and, eq, ne } from 'drizzle-orm';
import type { ApiKey, Limit, Org, User } from '../db/schema.js';
import { conflict } from '../errors.js';
import { usdToMicros } from '../money.js';
import type { ServiceContext } from './context.js';
import { createKey, rotateKey, updateKey } from './keys.js';
import type { LimitSpec } from './limits.js';
import { refreshModels } from './models.js';
import { addOrgModels, createOrg, updateOrg } from './orgs.js';
import { findOrg, findUser } from './resolve.js';
import { localDirectory } from './users.js';

export interface DemoUserSpec {
  /** Short name used by `chat --as` and in the printed lines. */
  name: string;
  username: string;
  email: string;
  org: string;
  role: 'org-admin' | 'gateway-user';
  /** What this key shows off, for people. */
  story: string;
  models: string[] | null;
  /** What `chat` talks to with this key unless told otherwise (the mock that writes prose). */
  chatModel: string;
  limits: LimitSpec[];
  creditsUsd?: string;
}

/**
 * Admission reserves a bound on the prompt plus the answer cap on every quota; the proxy's
 * default cap (4096) would exceed bob's whole day, so the demo orgs cap answers at 256.
 */
export const DEMO_MAX_TOKENS = 256;

export const DEMO_ORGS = [
  { name: 'demo-acme', models: ['mock/*'] },
  { name: 'demo-globex', models: ['mock/echo', 'mock/llama-3-8b'] },
] as const;

export const DEMO_USERS: readonly DemoUserSpec[] = [
  {
    name: 'alice',
    username: 'demo-alice',
    email: 'alice@acme.example',
    org: 'demo-acme',
    role: 'org-admin',
    story: 'generous: 100,000 tokens a day, 60 requests a minute, every mock model',
    models: null,
    chatModel: 'mock/gpt-4o-mini',
    limits: [
      { metric: 'tokens', window: 'day', max: 100_000 },
      { metric: 'requests', window: 'minute', max: 60 },
    ],
  },
  {
    name: 'bob',
    username: 'demo-bob',
    email: 'bob@acme.example',
    org: 'demo-acme',
    role: 'gateway-user',
    story: 'small quota: 1,500 tokens a day, refused with 429 after a few turns',
    models: ['mock/gpt-4o-mini', 'mock/echo'],
    chatModel: 'mock/gpt-4o-mini',
    limits: [{ metric: 'tokens', window: 'day', max: 1500 }],
  },
  {
    name: 'carol',
    username: 'demo-carol',
    email: 'carol@globex.example',
    org: 'demo-globex',
    role: 'gateway-user',
    story: 'rate-limited and prepaid: 5 requests a minute (the 6th gets a 429), $0.01 of credits',
    models: null,
    chatModel: 'mock/llama-3-8b',
    limits: [{ metric: 'requests', window: 'minute', max: 5 }],
    creditsUsd: '0.01',
  },
];

export interface DemoKey {
  name: string;
  user: User;
  org: Org;
  key: ApiKey;
  limits: Limit[];
  plaintext: string;
  story: string;
  chatModel: string;
  /** 'created' on the first run, 'rotated' afterwards. */
  action: 'created' | 'rotated';
}

export interface DemoSeed {
  orgs: { org: Org; created: boolean; models: string[] }[];
  users: { user: User; created: boolean }[];
  keys: DemoKey[];
  /** Mock models in the price table after this run. */
  modelsPriced: number;
}

export async function seedDemo(ctx: ServiceContext): Promise<DemoSeed> {
  const orgs: DemoSeed['orgs'] = [];
  for (const spec of DEMO_ORGS) {
    const existing = await findOrg(ctx.store.db, ctx, spec.name);
    let org = existing ?? (await createOrg(ctx, spec.name, { provider: 'mock', defaultMaxTokens: DEMO_MAX_TOKENS }));
    if (org.provider !== 'mock') throw conflict(`org '${spec.name}' exists and is not a demo org (provider ${org.provider}): rename or delete it first`);
    if (org.defaultMaxTokens !== DEMO_MAX_TOKENS) org = await updateOrg(ctx, org.id, { defaultMaxTokens: DEMO_MAX_TOKENS });
    const models = await addOrgModels(ctx, org.id, [...spec.models]);
    orgs.push({ org, created: !existing, models });
  }
  // The proxy prices requests from the model table and refuses models it has no price for; the
  // catalog is shared, so loading it through one mock org prices the mock models for both.
  const [refresh] = await refreshModels(ctx, { org: orgs[0]!.org.id });
  const orgByName = new Map(orgs.map((o) => [o.org.name, o.org]));
  const users: DemoSeed['users'] = [];
  const keys: DemoKey[] = [];
  for (const spec of DEMO_USERS) {
    const org = orgByName.get(spec.org)!;
    const { user, created } = await ensureUser(ctx, spec, org);
    users.push({ user, created });
    keys.push(await ensureKey(ctx, spec, org, user));
  }
  return { orgs, users, keys, modelsPriced: refresh?.fetched ?? 0 };
}

async function ensureUser(ctx: ServiceContext, spec: DemoUserSpec, org: Org): Promise<{ user: User; created: boolean }> {
  const existing = await findUser(ctx.store.db, ctx, spec.username);
  if (existing) {
    if (existing.orgId !== org.id) throw conflict(`user '${spec.username}' exists outside org '${org.name}': rename or delete it first`);
    return { user: existing, created: false };
  }
  const user = await localDirectory(ctx).create(spec.username, { email: spec.email, org: org.id, roles: [spec.role] });
  return { user, created: true };
}

async function ensureKey(ctx: ServiceContext, spec: DemoUserSpec, org: Org, user: User): Promise<DemoKey> {
  const { db, t } = ctx.store;
  const keyName = `demo-${spec.name}`;
  const [existing] = await db
    .select()
    .from(t.apiKeys)
    .where(and(eq(t.apiKeys.orgId, org.id), eq(t.apiKeys.userId, user.id), eq(t.apiKeys.name, keyName), ne(t.apiKeys.status, 'revoked')))
    .limit(1);
  const base = { name: spec.name, user, org, story: spec.story, chatModel: spec.chatModel };
  if (!existing) {
    const created = await createKey(ctx, org.id, {
      name: keyName,
      type: 'user',
      user: user.id,
      models: spec.models,
      limits: spec.limits,
      metadata: { demo: true },
      ...(spec.creditsUsd ? { creditsMicros: usdToMicros(spec.creditsUsd) } : {}),
    });
    return { ...base, key: created.key, limits: created.limits, plaintext: created.plaintext, action: 'created' };
  }
  // Put the demo settings back (someone may have tried `keys update` on them), then rotate.
  await updateKey(ctx, existing.id, { models: spec.models, limits: spec.limits, status: 'active', expiresAt: null });
  const rotated = await rotateKey(ctx, existing.id);
  return { ...base, key: rotated.key, limits: rotated.limits, plaintext: rotated.plaintext, action: 'rotated' };
}
