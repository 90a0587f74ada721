// Regression test from the review of 2026-12-07 (r4): what the comment below describes was a bug, fixed then.
// Review r4: parseTimestamp's new error text tells every caller "use a duration such as 30d or an
// ISO-8601 date", and for a bare number "(a duration needs its unit: 30d for 30 days)". That is
// right for --since and --before (parseSince takes durations), but --expires-at goes straight to
// parseTimestamp and takes no duration: following the advice fails again with exit 2. The hint
// must only offer what the option accepts (for --expires-at: an ISO date, or --expires-in 30d).
import { beforeAll, describe, expect, it } from 'vitest';
import { freshStore, type Gw } from '../proxy/harness.js';

let gw: Gw;
beforeAll(async () => {
  ({ gw } = await freshStore('sqlite'));
  const org = await gw(['orgs', 'create', 'acme', '--provider', 'mock', '--json']);
  if (org.code !== 0) throw new Error(org.stderr);
}, 60_000);

describe('keys create --expires-at with a bare number', () => {
  it('the advice in the error works when followed', async () => {
    const bad = await gw(['keys', 'create', '--org', 'acme', '--expires-at', '30', '--json']);
    expect(bad.code).toBe(2);
    const message = bad.errorJson().error.message;
    // It offers an ISO date, or --expires-in for a duration (--expires-at takes none).
    expect(message).toBe("invalid expires-at '30': use an ISO-8601 date such as 2026-12-31T00:00:00Z, or --expires-in with a duration such as 30d");
    expect((await gw(['keys', 'create', '--org', 'acme', '--expires-in', '30d', '--json'])).code).toBe(0);
    expect((await gw(['keys', 'create', '--org', 'acme', '--expires-at', '2099-12-31T00:00:00Z', '--json'])).code).toBe(0);
  });
});
