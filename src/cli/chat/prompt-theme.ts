// @inquirer/prompts colours with node:util styleText, which on Node 20 ignores NO_COLOR; this
// theme routes every style through our chalk instance, so --no-color and NO_COLOR hold.
import type { ChalkInstance } from 'chalk';

export function promptTheme(c: ChalkInstance, prefix: string) {
  return {
    prefix: { idle: c.cyan(prefix), done: c.cyan(prefix) },
    style: {
      answer: (t: string) => t,
      message: (t: string) => c.bold(t),
      error: (t: string) => c.red(`> ${t}`),
      defaultAnswer: (t: string) => c.dim(`(${t})`),
      help: (t: string) => c.dim(t),
      highlight: (t: string) => c.cyan(t),
      key: (t: string) => c.cyan(c.bold(`<${t}>`)),
      disabled: (t: string) => c.dim(t),
      description: (t: string) => c.cyan(t),
      keysHelpTip: (keys: [string, string][]) => keys.map(([k, a]) => `${c.bold(k)} ${c.dim(a)}`).join(c.dim(' • ')),
    },
  };
}
