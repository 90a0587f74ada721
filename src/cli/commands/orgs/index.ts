import type { Command } from 'commander';
import {
  addOrgModels,
  createOrg,
  deleteOrg,
  getOrg,
  listOrgModels,
  listOrgs,
  removeOrgModels,
  updateOrg,
} from '../../../shared/services/orgs.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import type { Output } from '../../output.js';
import { orgView } from '../../views.js';
import { addOrgOptions, type OrgFlags, orgInput } from './options.js';

function showOrg(out: Output, o: ReturnType<typeof orgView>): void {
  out.fields([
    ['id', o.id],
    ['name', o.name],
    ['provider', o.provider],
    ['base url', o.base_url],
    ['upstream key', o.upstream_key_hint ? `…${o.upstream_key_hint}` : null],
    ['failure mode', o.failure_mode],
    ['unknown models', o.unknown_model_policy],
    ['default max tokens', o.default_max_tokens],
    ['created', o.created_at],
  ]);
}

export function registerOrgs(program: Command, app: App): void {
  const orgs = program.command('orgs').description('organizations and their upstream provider');

  addOrgOptions(orgs.command('create').argument('[name]', 'unique org name'))
    .description('create an org')
    .addHelpText('after', '\nExamples:\n  gatewayctl orgs create acme --provider mock\n  OR_KEY=sk-or-… gatewayctl orgs create acme --upstream-key-env OR_KEY --json')
    .action(
      action(app, async ({ cmd, out, prompt }: Run, name: string | undefined, flags: OrgFlags) => {
        const orgName = name ?? (await prompt.text('<name>', 'Org name'));
        const ctx = await app.services(cmd);
        const org = await createOrg(ctx, orgName, await orgInput(app, flags));
        out.result(orgView(org), () => {
          out.success(`org ${out.c.bold(org.name)} created (${org.id})`);
          if (org.provider !== 'mock' && !org.upstreamKeyEnc) {
            out.warn(`no upstream key yet: gatewayctl orgs update ${org.name} --upstream-key-env VAR`);
          }
        });
      }),
    );

  orgs
    .command('list')
    .description('list orgs')
    .action(
      action(app, async ({ cmd, out }) => {
        const rows = await listOrgs(await app.services(cmd));
        out.result(rows.map(orgView), () =>
          out.table(
            ['id', 'name', 'provider', 'failure mode', 'upstream key', 'created'],
            rows.map((o) => [o.id, o.name, o.provider, o.failureMode, o.upstreamKeyHint ? `…${o.upstreamKeyHint}` : null, o.createdAt.toISOString()]),
          ),
        );
      }),
    );

  orgs
    .command('get')
    .argument('<org>', 'org id or name')
    .description('show one org')
    .action(
      action(app, async ({ cmd, out }: Run, ref: string) => {
        const view = orgView(await getOrg(await app.services(cmd), ref));
        out.result(view, () => showOrg(out, view));
      }),
    );

  addOrgOptions(orgs.command('update').argument('<org>', 'org id or name'))
    .option('--name <name>', 'rename the org')
    .description('change an org')
    .addHelpText('after', '\nExample:\n  gatewayctl orgs update acme --failure-mode open')
    .action(
      action(app, async ({ cmd, out }: Run, ref: string, flags: OrgFlags) => {
        const org = await updateOrg(await app.services(cmd), ref, await orgInput(app, flags));
        const view = orgView(org);
        out.result(view, () => out.success(`org ${org.name} updated`));
      }),
    );

  orgs
    .command('delete')
    .argument('<org>', 'org id or name')
    .description('delete an org with its keys and model rules (usage history stays)')
    .action(
      action(app, async ({ cmd, out, prompt }: Run, ref: string) => {
        const ctx = await app.services(cmd);
        const org = await getOrg(ctx, ref);
        await prompt.confirmDestructive(`delete org '${org.name}' and all its keys`);
        await deleteOrg(ctx, org.id);
        out.result({ id: org.id, name: org.name, deleted: true }, () => out.success(`org ${org.name} deleted`));
      }),
    );

  const models = orgs.command('models').description("the org's model rules (exact ids or patterns like openai/*)");
  models
    .command('list')
    .argument('<org>')
    .description('list model rules (none means every model is allowed)')
    .action(
      action(app, async ({ cmd, out }: Run, ref: string) => {
        const patterns = await listOrgModels(await app.services(cmd), ref);
        out.result({ org: ref, models: patterns }, () => {
          if (patterns.length === 0) out.line(out.c.dim('(no rules: every model is allowed)'));
          else for (const p of patterns) out.line(p);
        });
      }),
    );
  models
    .command('add')
    .argument('<org>')
    .argument('<model...>')
    .description('allow models')
    .addHelpText('after', '\nExample:\n  gatewayctl orgs models add acme "openai/*" anthropic/claude-3.5-sonnet')
    .action(
      action(app, async ({ cmd, out }: Run, ref: string, patterns: string[]) => {
        const all = await addOrgModels(await app.services(cmd), ref, patterns);
        out.result({ org: ref, models: all }, () => out.success(`allowed: ${all.join(', ')}`));
      }),
    );
  models
    .command('remove')
    .argument('<org>')
    .argument('<model...>')
    .description('remove model rules')
    .action(
      action(app, async ({ cmd, out }: Run, ref: string, patterns: string[]) => {
        const all = await removeOrgModels(await app.services(cmd), ref, patterns);
        out.result({ org: ref, models: all }, () =>
          out.success(all.length ? `allowed: ${all.join(', ')}` : 'no rules left: every model is allowed'),
        );
      }),
    );
}
