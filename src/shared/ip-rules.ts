// IP allow-lists (CIDR, IPv4 and IPv6) on node's own BlockList, and referrer host rules.
import { BlockList, isIP } from 'node:net';
import { usageError } from './errors.js';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

export function parseCidr(text: string): Cidr {
  const [address = '', prefixText] = text.trim().split('/');
  const version = isIP(address);
  if (version === 0) throw usageError(`invalid IP or CIDR '${text}'`, 'ip');
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText))) {
    throw usageError(`invalid prefix length in '${text}' (0–${max})`, 'ip');
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Strips an IPv4-mapped IPv6 prefix so "::ffff:10.0.0.1" matches "10.0.0.0/8". */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

export function buildBlockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const { address, prefix, family } = parseCidr(c);
    list.addSubnet(address, prefix, family);
  }
  return list;
}

export function ipAllowed(list: BlockList, ip: string): boolean {
  const addr = normalizeIp(ip);
  const version = isIP(addr);
  if (version === 0) return false;
  return list.check(addr, version === 4 ? 'ipv4' : 'ipv6');
}

const HOST_RULE_RE = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d+)?$/;

export function checkReferrerRule(rule: string): string {
  const r = rule.trim().toLowerCase();
  if (!HOST_RULE_RE.test(r)) throw usageError(`invalid referrer host '${rule}': use a host such as app.example.com or *.example.com`, 'referrer');
  return r;
}

const DEFAULT_PORTS: Readonly<Record<string, string>> = { 'https:': '443', 'http:': '80' };

/**
 * Matches the host of a Referer/Origin header against host rules ("*.example.com" covers
 * subdomains; a rule with a port matches that port only, the scheme's default port included,
 * which URLs leave out: a rule naming :443, or a wildcard with any port, never matched before).
 */
export function referrerAllowed(rules: readonly string[], headerValue: string | undefined): boolean {
  if (!headerValue) return false;
  let url: URL;
  try {
    url = new URL(headerValue);
  } catch {
    return false;
  }
  const hostname = url.hostname.toLowerCase();
  const port = url.port || DEFAULT_PORTS[url.protocol] || '';
  return rules.some((rule) => {
    const colon = rule.indexOf(':');
    const ruleHost = colon === -1 ? rule : rule.slice(0, colon);
    if (colon !== -1 && rule.slice(colon + 1) !== port) return false;
    return ruleHost.startsWith('*.') ? hostname.endsWith(ruleHost.slice(1)) : hostname === ruleHost;
  });
}
