import { hex, randomId } from "../ids";

/** API keys look like `eik_<40 chars>`; the prefix makes leaked keys easy to grep for. */
export const KEY_PREFIX = "eik_";

export function generateApiKey(): string {
  return KEY_PREFIX + randomId(40);
}

export async function hashKey(key: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
}

/** The part of a key that is safe to show in listings. */
export function displayPrefix(key: string): string {
  return key.slice(0, KEY_PREFIX.length + 6);
}

/** Constant-time comparison of two secrets of any length (compares their digests). */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const [ha, hb] = await Promise.all([hashBytes(a), hashBytes(b)]);
  let diff = 0;
  for (let i = 0; i < ha.length; i++) diff |= (ha[i] ?? 0) ^ (hb[i] ?? 0);
  return diff === 0;
}

async function hashBytes(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value)));
}
