// Usage events the store refused to the end of a shutdown, kept on disk and written at the next
// start. A spill file is written whole or not at all (a temporary name, fsync, rename, fsync of
// the folder), so a file with the final name is always complete; its header counts its records,
// so a truncated copy is recognised anyway. Replaying is idempotent: events are unique by request
// id in the store, and rollups and credit charges follow only the events actually inserted, so a
// file replayed twice (two instances starting together, a crash between the write and the
// unlink) counts once.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { UsageRecord } from './types.js';

const FORMAT = 'gateway-usage-spill';
const VERSION = 1;
const SUFFIX = '.jsonl';

interface Header {
  format: typeof FORMAT;
  version: number;
  instance: string;
  /** The store the events belong to (see storeIdentity in proxy/spill-wiring.ts). */
  store: string;
  count: number;
  written_at: string;
}

export interface SpillFile {
  path: string;
  /** The instance that spilled them: recorded in usage_events.instance as if it had written them. */
  instance: string;
  store: string;
  records: UsageRecord[];
}

/** fsync of a folder, so a rename or unlink in it survives a crash; not every platform allows it. */
function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Best effort: the file itself is synced.
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Writes `records` to a new spill file in `dir` (made if missing) and returns its path. Throws if it cannot. */
export function writeSpill(dir: string, store: string, instance: string, records: readonly UsageRecord[], now = new Date()): string {
  mkdirSync(dir, { recursive: true });
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const safe = instance.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
  const name = `usage-${stamp}-${safe}-${process.pid}${SUFFIX}`;
  const header: Header = { format: FORMAT, version: VERSION, instance, store, count: records.length, written_at: now.toISOString() };
  const lines = [JSON.stringify(header), ...records.map((r) => JSON.stringify(r))];
  const tmp = join(dir, `.${name}.tmp`);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${lines.join('\n')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const path = join(dir, name);
  renameSync(tmp, path);
  syncDir(dir);
  return path;
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStrList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);

/** A record as written by writeSpill, or null if a line is not one (a hand-edited or foreign file). */
function asRecord(v: unknown): UsageRecord | null {
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  const ok =
    isStr(r.requestId) && isNum(r.ts) && isStr(r.orgId) && (r.userId === null || isStr(r.userId)) && isStr(r.keyId) && isStrList(r.ancestorKeyIds) &&
    isStr(r.model) && isStr(r.provider) && isNum(r.promptTokens) && isNum(r.completionTokens) && isNum(r.totalTokens) && isNum(r.costMicros) &&
    isNum(r.status) && (r.errorCode === null || isStr(r.errorCode)) && isNum(r.latencyMs) && (r.ttfbMs === null || isNum(r.ttfbMs)) &&
    typeof r.stream === 'boolean' && (r.usageSource === 'upstream' || r.usageSource === 'estimated' || r.usageSource === 'none') && isStrList(r.creditScopes);
  return ok ? (r as unknown as UsageRecord) : null;
}

/** Why a spill file cannot be replayed. */
export class BadSpillFile extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'BadSpillFile';
  }
}

/** Reads one spill file; throws BadSpillFile if it is not a complete one. */
export function readSpill(path: string): SpillFile {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n').filter((l) => l.length > 0);
  let header: Header;
  try {
    header = JSON.parse(lines[0] ?? '') as Header;
  } catch {
    throw new BadSpillFile(path, 'its first line is not a spill header');
  }
  if (header?.format !== FORMAT || header.version !== VERSION || !isStr(header.instance) || !isStr(header.store) || !isNum(header.count)) {
    throw new BadSpillFile(path, 'its first line is not a spill header of a version this gateway reads');
  }
  const records: UsageRecord[] = [];
  for (let i = 1; i < lines.length; i++) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(lines[i]!);
    } catch {
      throw new BadSpillFile(path, `line ${i + 1} is not JSON`);
    }
    const r = asRecord(parsed);
    if (!r) throw new BadSpillFile(path, `line ${i + 1} is not a usage event`);
    records.push(r);
  }
  if (records.length !== header.count) throw new BadSpillFile(path, `it holds ${records.length} usage events, its header says ${header.count} (truncated?)`);
  return { path, instance: header.instance, store: header.store, records };
}

/** The complete spill files in `dir`, oldest first (none if the folder does not exist). */
export function spillFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((n) => n.startsWith('usage-') && n.endsWith(SUFFIX))
    .sort()
    .map((n) => join(dir, n));
}

/** Removes a replayed file; another instance may have replayed and removed it first. */
export function removeSpill(path: string, dir: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  syncDir(dir);
}

/** Moves a file that cannot be replayed out of the way (kept for a person to look at). */
export function setAsideSpill(path: string): string {
  const to = `${path}.unreadable`;
  renameSync(path, to);
  return to;
}
