import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, openRouterModel, startFakeUpstream } from '../fakes/upstream.js';
import { cliFor } from '../helpers/cli.js';
import { DIALECTS, freshStoreUrl } from '../helpers/stores.js';

interface ModelJson {
  id: string;
  name: string;
  context_length: number | null;
  prompt_usd_per_m: number;
  completion_usd_per_m: number;
  request_usd: number;
  price_overridden: boolean;
  source: string;
  orgs?: string[];
}
interface ListJson {
  models: ModelJson[];
  orgs: { name: string; unknown_model_policy: string; models: string[] }[];
}

const UPSTREAM_KEY = 'sk-or-v1-test-0123456789abcdef';

describe.each(DIALECTS)('gatewayctl models on %s', (dialect) => {
  let fake: FakeUpstream;
  beforeAll(async () => {
    fake = await startFakeUpstream({
      models: [
        openRouterModel('openai/gpt-4o', '0.0000025', '0.00001'),
        { ...openRouterModel('openai/o1-pro', '0.00015', '0.0006', 200_000), pricing: { prompt: '0.00015', completion: '0.0006', request: '0.005' } },
        openRouterModel('meta-llama/llama-3.1-8b-instruct', '0.00000002', '0.00000005', 131_072),
        openRouterModel('openrouter/auto', '-1', '-1'),
      ],
    });
  });
  afterAll(() => fake.close());

  async function setup() {
    const gw = cliFor(await freshStoreUrl(dialect), { OR_KEY: UPSTREAM_KEY });
    await gw(['init']);
    expect((await gw(['orgs', 'create', 'acme', '--provider', 'openrouter', '--base-url', fake.url, '--upstream-key-env', 'OR_KEY'])).code).toBe(0);
    return gw;
  }

  it('models refresh pulls the OpenRouter-shaped catalog with the decrypted upstream key and stores exact prices', async () => {
    const gw = await setup();
    fake.reset();
    const res = await gw(['models', 'refresh', '--org', 'acme', '--json']);
    expect(res.code).toBe(0);
    expect(res.json()).toEqual([
      expect.objectContaining({ org: 'acme', fetched: 4, added: 3, updated: 0, kept_overrides: 0, unpriced: ['openrouter/auto'] }),
    ]);
    const [req] = fake.requests;
    expect(req).toMatchObject({ method: 'GET', path: '/api/v1/models' });
    expect(req!.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(res.stderr).toBe('');

    const list = (await gw(['models', 'list', '--json'])).json<ListJson>();
    expect(list.models.map((m) => m.id)).toEqual(['meta-llama/llama-3.1-8b-instruct', 'openai/gpt-4o', 'openai/o1-pro']);
    expect(list.models[1]).toMatchObject({ prompt_usd_per_m: 2.5, completion_usd_per_m: 10, request_usd: 0, source: 'openrouter', price_overridden: false, orgs: ['acme'] });
    expect(list.models[0]).toMatchObject({ prompt_usd_per_m: 0.02, completion_usd_per_m: 0.05, context_length: 131_072 });
    expect(list.models[2]).toMatchObject({ prompt_usd_per_m: 150, completion_usd_per_m: 600, request_usd: 0.005 });
    expect(list.orgs).toEqual([{ id: expect.any(String), name: 'acme', unknown_model_policy: 'refuse', models: [] }]);

    const human = await gw(['models', 'list']);
    expect(human.stdout).toContain('openai/gpt-4o');
    expect(human.stdout).toContain('2.5');
    expect(human.stdout).toContain('unknown models: refused');
    const humanRefresh = await gw(['models', 'refresh']);
    expect(humanRefresh.stdout).toContain('acme: 4 models (0 new, 3 updated');
    expect(humanRefresh.stderr).toContain('[0/1] fetching the catalog of acme');
    expect(humanRefresh.stderr).toContain('[1/1] acme: 4 models');
    expect(humanRefresh.stderr).toContain('without a usable price');
  });

  it('a price set by hand survives refresh; models list --org shows only what the org allows', async () => {
    const gw = await setup();
    await gw(['models', 'refresh']);
    const set = await gw(['models', 'price', 'set', 'openai/gpt-4o', '--prompt', '2', '--completion', '8.125', '--request', '0.01', '--json']);
    expect(set.code).toBe(0);
    expect(set.json()).toMatchObject({ id: 'openai/gpt-4o', prompt_usd_per_m: 2, completion_usd_per_m: 8.125, request_usd: 0.01, price_overridden: true });
    const refreshed = await gw(['models', 'refresh', '--json']);
    expect(refreshed.json<{ kept_overrides: number }[]>()[0]!.kept_overrides).toBe(1);
    const list = (await gw(['models', 'list', '--json'])).json<ListJson>();
    expect(list.models.find((m) => m.id === 'openai/gpt-4o')).toMatchObject({ prompt_usd_per_m: 2, completion_usd_per_m: 8.125, price_overridden: true });

    // Clearing hands the price back to the upstream at the next refresh; clearing twice is a conflict.
    const cleared = await gw(['models', 'price', 'clear', 'openai/gpt-4o', '--json']);
    expect(cleared.code).toBe(0);
    expect(cleared.json()).toMatchObject({ id: 'openai/gpt-4o', prompt_usd_per_m: 2, price_overridden: false });
    expect((await gw(['models', 'price', 'clear', 'openai/gpt-4o', '--json'])).code).toBe(4);
    expect((await gw(['models', 'price', 'clear', 'nope/model'])).code).toBe(3);
    expect((await gw(['models', 'refresh', '--json'])).json<{ kept_overrides: number }[]>()[0]!.kept_overrides).toBe(0);
    const back = (await gw(['models', 'list', '--json'])).json<ListJson>();
    expect(back.models.find((m) => m.id === 'openai/gpt-4o')).toMatchObject({ prompt_usd_per_m: 2.5, completion_usd_per_m: 10, price_overridden: false });
    expect((await gw(['audit', 'list', '--json'])).stdout).toContain('models.price.clear');
    await gw(['models', 'price', 'set', 'openai/gpt-4o', '--prompt', '2', '--completion', '8.125', '--request', '0.01']);

    await gw(['orgs', 'create', 'globex', '--provider', 'mock', '--unknown-models', 'free']);
    await gw(['orgs', 'models', 'add', 'globex', 'openai/*']);
    const globex = (await gw(['models', 'list', '--org', 'globex', '--json'])).json<ListJson>();
    expect(globex.models.map((m) => m.id)).toEqual(['openai/gpt-4o', 'openai/o1-pro']);
    expect(globex.orgs).toEqual([expect.objectContaining({ name: 'globex', unknown_model_policy: 'free', models: ['openai/*'] })]);
    expect((await gw(['models', 'list', '--org', 'globex'])).stdout).toContain('unknown models: served free');
  });

  it('a mock org refreshes from the built-in catalog, with no network', async () => {
    const gw = cliFor(await freshStoreUrl(dialect));
    await gw(['init']);
    await gw(['orgs', 'create', 'demo', '--provider', 'mock']);
    const res = await gw(['models', 'refresh', '--org', 'demo', '--json']);
    expect(res.code).toBe(0);
    const list = (await gw(['models', 'list', '--json'])).json<ListJson>();
    expect(list.models.map((m) => m.id)).toEqual(['mock/echo', 'mock/gpt-4o-mini', 'mock/llama-3-8b']);
    expect(list.models.find((m) => m.id === 'mock/gpt-4o-mini')).toMatchObject({ prompt_usd_per_m: 0.15, completion_usd_per_m: 0.6, source: 'mock' });
  });

  it('exits 6 with a clear message when the upstream is down, errs or answers nonsense, and changes nothing', async () => {
    const gw = await setup();
    fake.script((req) => (req.path.endsWith('/models') ? { type: 'error', status: 503, message: 'down' } : undefined));
    const err = await gw(['models', 'refresh', '--json']);
    expect(err.code).toBe(6);
    expect(err.errorJson().error).toMatchObject({ code: 'upstream_error' });
    expect(err.errorJson().error.message).toContain('answered 503');
    fake.script((req) => (req.path.endsWith('/models') ? { type: 'json', body: { models: 'nope' } } : undefined));
    const nonsense = await gw(['models', 'refresh']);
    expect(nonsense.code).toBe(6);
    expect(nonsense.stderr).toContain('did not answer with a model list');
    fake.script((req) => (req.path.endsWith('/models') ? { type: 'hang' } : undefined));
    const slow = await gw(['models', 'refresh', '--timeout', '300', '--json']);
    expect(slow.code).toBe(6);
    expect(slow.errorJson().error.code).toBe('upstream_timeout');
    fake.script(null);
    expect((await gw(['models', 'list', '--json'])).json<ListJson>().models).toEqual([]);

    const dead = await startFakeUpstream();
    const deadUrl = dead.url;
    await dead.close();
    await gw(['orgs', 'update', 'acme', '--base-url', deadUrl]);
    const down = await gw(['models', 'refresh']);
    expect(down.code).toBe(6);
    expect(down.stderr).toMatch(/cannot reach the upstream of org 'acme'.*ECONNREFUSED/);
  });

  it('models price set exits 3 on an unknown model and 2 on a bad price or missing flag', async () => {
    const gw = await setup();
    const unknown = await gw(['models', 'price', 'set', 'nope/model', '--prompt', '1', '--completion', '2', '--json']);
    expect(unknown.code).toBe(3);
    expect(unknown.errorJson().error.message).toContain('models refresh');
    await gw(['models', 'refresh']);
    expect((await gw(['models', 'price', 'set', 'openai/gpt-4o', '--prompt', '-1', '--completion', '2'])).code).toBe(2);
    expect((await gw(['models', 'price', 'set', 'openai/gpt-4o', '--prompt', 'cheap', '--completion', '2'])).code).toBe(2);
    expect((await gw(['models', 'price', 'set', 'openai/gpt-4o', '--prompt', '1'])).code).toBe(2);
    expect((await gw(['models', 'refresh', '--org', 'nope'])).code).toBe(3);
  });
});
