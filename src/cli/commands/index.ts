// Each namespace registers its own verbs; this file only lists the namespaces.
import type { Command } from 'commander';
import type { App } from '../app.js';
import { registerAuth } from './auth/index.js';
import { registerAudit } from './audit/index.js';
import { registerChat } from './chat/index.js';
import { registerCredits } from './credits/index.js';
import { registerDb } from './db/index.js';
import { registerDemo } from './demo/index.js';
import { registerInit } from './init.js';
import { registerKeys } from './keys/index.js';
import { registerLimits } from './limits/index.js';
import { registerModels } from './models/index.js';
import { registerOrgs } from './orgs/index.js';
import { registerQuotas } from './quotas/index.js';
import { registerStats } from './stats/index.js';
import { registerUsage } from './usage/index.js';
import { registerUsers } from './users/index.js';

export function registerCommands(program: Command, app: App): void {
  registerInit(program, app);
  registerAuth(program, app);
  registerDb(program, app);
  registerOrgs(program, app);
  registerKeys(program, app);
  registerDemo(program, app);
  registerChat(program, app);
  registerUsers(program, app);
  registerQuotas(program, app);
  registerLimits(program, app);
  registerCredits(program, app);
  registerModels(program, app);
  registerUsage(program, app);
  registerStats(program, app);
  registerAudit(program, app);
}
