// Regression test from the review of 2026-12-07 (r3): what the comment below describes was a bug, fixed then.
// Review r3: --since / --before take "a duration such as 30d or an ISO date" (README, --help), and
// CLI.md says bad input is exit 2. A duration typed without its unit is neither, yet it is
// accepted: parseTimestamp hands it to `new Date()`, whose legacy parser reads "90" as the year
// 1990 and "7" as 2001. `usage summary --since 90` then reports all time as if it were the
// last 90 days, and `usage prune --before 90 --yes` deletes nothing and says so with exit 0.
import { beforeAll, describe, expect, it } from 'vitest';
import { freshStore, type Gw } from '../proxy/harness.js';

let gw: Gw;
beforeAll(async () => {
  ({ gw } = await freshStore('sqlite'));
}, 60_000);

describe('--since and --before without a unit', () => {
  it('usage summary --since 90 is a usage error (exit 2), not "since 1990-01-01"', async () => {
    const r = await gw(['usage', 'summary', '--since', '90', '--json']);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
  });

  it('usage prune --before 90 --yes is a usage error (exit 2), not a prune before 1990', async () => {
    const r = await gw(['usage', 'prune', '--before', '90', '--yes', '--json']);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
  });

  it('usage export --since 7 is a usage error (exit 2), not "since 2001-01-01"', async () => {
    const r = await gw(['usage', 'export', '--since', '7', '--format', 'jsonl']);
    expect(r.code).toBe(2);
  });
});
