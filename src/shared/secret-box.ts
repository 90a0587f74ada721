// Upstream keys are sealed with AES-256-GCM under the master key. The sealed form is
// `v1:<iv b64>:<tag b64>:<ciphertext b64>`; the version prefix leaves room for key rotation.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { GatewayError } from './errors.js';

const ALG = 'aes-256-gcm';

export function seal(masterKey: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv(ALG, masterKey, iv);
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), ct.toString('base64')].join(':');
}

export function open(masterKey: Buffer, sealed: string): string {
  const [version, iv, tag, ct] = sealed.split(':');
  if (version !== 'v1' || !iv || !tag || ct === undefined) {
    throw new GatewayError('internal_error', 'sealed secret has an unknown format');
  }
  try {
    const decipher = createDecipheriv(ALG, masterKey, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
  } catch (cause) {
    throw new GatewayError(
      'internal_error',
      'cannot decrypt an upstream key: the master key differs from the one it was sealed with',
      { cause },
    );
  }
}

/** The last 4 characters, the only part of a secret ever shown. */
export function secretHint(secret: string): string {
  return secret.length < 12 ? '****' : secret.slice(-4);
}
