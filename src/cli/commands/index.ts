// Each namespace registers its own verbs; this file only lists the namespaces.
import type { Command } from 'commander';
import type { App } from '../app.js';
import { registerChat } from './chat/index.js';
import { registerDb } from './db/index.js';
import { registerDemo } from './demo/index.js';
import { registerInit } from './init.js';
import { registerKeys } from './keys/index.js';
import { registerOrgs } from './orgs/index.js';

export function registerCommands(program: Command, app: App): void {
  registerInit(program, app);
  registerDb(program, app);
  registerOrgs(program, app);
  registerKeys(program, app);
  registerDemo(program, app);
  registerChat(program, app);
}
