// ClientAbort: the one-listener field and the list behind it behave as one ordered set of
// callbacks, each run at most once.
import { describe, expect, it } from 'vitest';
import { ClientAbort } from '../../src/proxy/client-abort.js';

describe('ClientAbort', () => {
  it('runs every listener still registered once, in registration order, and none again', () => {
    const a = new ClientAbort();
    const ran: string[] = [];
    const f1 = () => ran.push('1');
    const f2 = () => ran.push('2');
    const f3 = () => ran.push('3');
    a.onAbort(f1);
    a.onAbort(f2);
    a.onAbort(f3);
    a.offAbort(f2);
    a.abort();
    a.abort();
    expect(ran).toEqual(['1', '3']);
    expect(a.aborted).toBe(true);
  });

  it('forgets a removed first listener and keeps the ones after it', () => {
    const a = new ClientAbort();
    const ran: string[] = [];
    const f1 = () => ran.push('1');
    a.onAbort(f1);
    a.onAbort(() => ran.push('2'));
    a.offAbort(f1);
    a.onAbort(() => ran.push('3'));
    a.offAbort(() => ran.push('never registered'));
    a.abort();
    expect(ran).toEqual(['2', '3']);
  });

  it('runs nothing when its only listener was removed, and nothing registered after the abort', () => {
    const a = new ClientAbort();
    let n = 0;
    const f = () => n++;
    a.onAbort(f);
    a.offAbort(f);
    a.abort();
    a.onAbort(f);
    expect(n).toBe(0);
    expect(a.toAbortSignal().aborted).toBe(true);
  });
});
