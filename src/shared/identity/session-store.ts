// The signed-in operator's tokens on disk: one JSON file, mode 0600 in a 0700 directory,
// replaced atomically (write a temp file, rename) so a crash never leaves half a session.
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { signInAgain } from './failures.js';

const jwkSchema = z.record(z.string(), z.unknown());

const sessionSchema = z.object({
  version: z.literal(1),
  issuer: z.string(),
  client_id: z.string(),
  username: z.string(),
  access_token: z.string(),
  refresh_token: z.string().nullable(),
  /** Epoch ms. */
  expires_at: z.number(),
  refresh_expires_at: z.number().nullable(),
  /** The realm's public keys, cached so a command with a fresh token needs no extra round trip. */
  jwks: z.object({ keys: z.array(jwkSchema) }).optional(),
});

export type StoredSession = z.infer<typeof sessionSchema>;

export function sessionFile(configHome: string): string {
  return join(configHome, 'ai-gateway', 'session.json');
}

export class SessionStore {
  constructor(readonly path: string) {}

  /** Undefined when nobody is signed in; a damaged file is a sign-in problem, not a crash. */
  read(): StoredSession | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw signInAgain(`cannot read the session file ${this.path} (${(err as Error).message})`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw signInAgain(`the session file ${this.path} is damaged`);
    }
    const result = sessionSchema.safeParse(parsed);
    if (!result.success) throw signInAgain(`the session file ${this.path} is damaged`);
    return result.data;
  }

  write(session: StoredSession): void {
    const dir = dirname(this.path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(session, null, 2)}\n`, { mode: 0o600 });
    // The mode given to writeFileSync only applies to a new file; make sure of it either way.
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.path);
  }

  /** True when there was a session to remove. */
  remove(): boolean {
    try {
      rmSync(this.path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }
}
