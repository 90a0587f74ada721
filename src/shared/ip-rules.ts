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

/** Matches the host of a Referer/Origin header against host rules ("*.example.com" covers subdomains). */
export function referrerAllowed(rules: readonly string[], headerValue: string | undefined): boolean {
  if (!headerValue) return false;
  let host: string;
  try {
    host = new URL(headerValue).host.toLowerCase();
  } catch {
    return false;
  }
  const bare = host.replace(/:\d+$/, '');
  return rules.some((rule) => {
    if (rule.startsWith('*.')) return bare.endsWith(rule.slice(1));
    return rule.includes(':') ? host === rule : bare === rule;
  });
}
