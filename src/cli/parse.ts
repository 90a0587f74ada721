// Option parsers for commander: each throws a usage error that names the flag.
import { InvalidArgumentError } from 'commander';

export function intArg(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError('must be a non-negative integer');
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('is too large');
  return n;
}

export function positiveIntArg(value: string): number {
  const n = intArg(value);
  if (n === 0) throw new InvalidArgumentError('must be greater than 0');
  return n;
}

export function listArg(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

export function usdArg(value: string): string {
  if (!/^-?\d+(\.\d+)?$/.test(value.trim())) throw new InvalidArgumentError('must be a USD amount such as 25 or 0.50');
  return value.trim();
}

export function choiceArg<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`use one of ${choices.join(', ')}`);
    return value as T;
  };
}
