// What each command requires of the operator, in one table, checked by the action wrapper
// before the command runs (App.authorize). Without Keycloak the operator is the local
// gateway-admin and every rule passes. A command missing from the table needs gateway-admin,
// so a new command is closed until someone decides who may run it.
import type { Command } from 'commander';
import type { Requirement, Target } from '../shared/identity/access.js';

type Opts = Record<string, unknown>;
type Rule = (args: unknown[], opts: Opts) => Requirement;

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : text(v) ? [v as string] : []);

const org = (ref: unknown, flag?: string): Target => ({ kind: 'org', ref: text(ref), ...(flag ? { flag } : {}) });
const user = (ref: unknown, flag?: string): Target => ({ kind: 'user', ref: text(ref), ...(flag ? { flag } : {}) });
const key = (ref: unknown): Target => ({ kind: 'key', ref: text(ref) });
const scope = (ref: unknown): Target => ({ kind: 'scope', ref: text(ref) });
const roles = (refs: unknown): Target[] => list(refs).map((r) => ({ kind: 'role', ref: r }));
const groups = (refs: unknown): Target[] => list(refs).map((g) => ({ kind: 'group', ref: g }));

const PUBLIC: Rule = () => ({ level: 'public' });
const SIGNED_IN: Rule = () => ({ level: 'signed-in' });
const ADMIN: Rule = () => ({ level: 'admin' });
const inOrg = (targets: (a: unknown[], o: Opts) => Target[]): Rule => (a, o) => ({ level: 'org', targets: targets(a, o) });
const own = (targets: (a: unknown[], o: Opts) => Target[]): Rule => (a, o) => ({ level: 'self', targets: targets(a, o) });

/** Credits are money: attaching them to a key is a gateway-admin's decision, whoever may manage the key. */
const noCredits = (rule: Rule): Rule => (a, o) => (o.credits !== undefined ? { level: 'admin' } : rule(a, o));

const RULES: Record<string, Rule> = {
  login: PUBLIC,
  logout: PUBLIC,
  chat: PUBLIC,
  whoami: SIGNED_IN,
  'keys mine': SIGNED_IN,

  'orgs get': inOrg((a) => [org(a[0])]),
  'orgs models list': inOrg((a) => [org(a[0])]),

  'keys create': noCredits(inOrg((_a, o) => [org(o.org, 'org'), user(o.user), key(o.parent)])),
  'keys list': inOrg((_a, o) => [org(o.org, 'org'), user(o.user)]),
  'keys get': own((a) => [key(a[0])]),
  'keys usage': own((a) => [key(a[0])]),
  'keys usage-summary': own((a) => [key(a[0])]),
  'keys update': noCredits(inOrg((a, o) => [key(a[0]), user(o.user)])),
  'keys revoke': inOrg((a) => [key(a[0])]),
  'keys delete': inOrg((a) => [key(a[0])]),
  'keys rotate': inOrg((a) => [key(a[0])]),

  'quotas list': inOrg((_a, o) => [org(o.org, 'org')]),
  'quotas get': own((a) => [key(a[0])]),
  'quotas set': inOrg((a) => [key(a[0])]),
  'quotas reset': inOrg((a) => [key(a[0])]),
  'limits get': own((a) => [scope(a[0])]),
  'limits set': inOrg((a) => [scope(a[0])]),
  // Credits are money: only a gateway-admin adds them; anyone may read their own balance.
  'credits balance': own((a) => [scope(a[0])]),
  'usage summary': own((_a, o) => [org(o.org, 'org'), key(o.key), user(o.user, 'user')]),
  'usage export': own((_a, o) => [org(o.org, 'org'), key(o.key), user(o.user, 'user')]),
  'models list': inOrg((_a, o) => [org(o.org, 'org')]),

  'users list': inOrg((_a, o) => [org(o.org, 'org')]),
  'users create': inOrg((_a, o) => [org(o.org, 'org'), ...roles(o.role), ...groups(o.group)]),
  'users get': own((a) => [user(a[0])]),
  'users update': inOrg((a, o) => [user(a[0]), org(o.org), ...roles(o.role), ...groups(o.group)]),
  'users delete': inOrg((a, o) => [user(a[0]), user(o.to)]),
  'users enable': inOrg((a) => [user(a[0])]),
  'users disable': inOrg((a) => [user(a[0])]),
  'users roles add': inOrg((a) => [user(a[0]), ...roles(a[1])]),
  'users roles remove': inOrg((a) => [user(a[0]), ...roles(a[1])]),
  'users groups add': inOrg((a) => [user(a[0]), ...groups(a[1])]),
  'users groups remove': inOrg((a) => [user(a[0]), ...groups(a[1])]),
};

/** `users roles add`: the names from the program down, without the program's own. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * The command's requirement. A target whose flag the command does not have is dropped, so a
 * rule can never "fill in" an --org that the command would silently ignore.
 */
export function requirementOf(cmd: Command, args: unknown[], opts: Opts): Requirement {
  const rule = RULES[commandPath(cmd)] ?? ADMIN;
  const req = rule(args, opts);
  if (req.level !== 'org' && req.level !== 'self') return req;
  const has = new Set(cmd.options.map((o) => o.attributeName()));
  return { ...req, targets: req.targets.filter((t) => !('flag' in t) || !t.flag || has.has(t.flag)) };
}
