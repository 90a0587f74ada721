// Model rules are exact ids or prefixes ending in '*' ("openai/*"); '*' alone means any model.

export function modelMatches(pattern: string, model: string): boolean {
  return pattern.endsWith('*') ? model.startsWith(pattern.slice(0, -1)) : pattern === model;
}

export function anyMatches(patterns: readonly string[], model: string): boolean {
  return patterns.some((p) => modelMatches(p, model));
}

/** Whether every model `child` admits is also admitted by one of `parents`. */
export function patternCovered(child: string, parents: readonly string[]): boolean {
  return parents.some((p) => {
    if (!p.endsWith('*')) return p === child;
    const prefix = p.slice(0, -1);
    return child.startsWith(prefix);
  });
}
