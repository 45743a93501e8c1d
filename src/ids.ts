const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";
/** Largest multiple of 36 below 256: bytes at or above it are redrawn, so every character is equally likely. */
const UNBIASED_LIMIT = 252;

export const TENANT_ID_LENGTH = 8;
export const IMAGE_ID_LENGTH = 24;

export function randomId(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (byte < UNBIASED_LIMIT) out += ALPHABET[byte % 36];
      if (out.length === length) break;
    }
  }
  return out;
}

export function newTenantId(): string {
  return randomId(TENANT_ID_LENGTH);
}

/**
 * Image ids start with their tenant's id, so the public serving path can find the
 * tenant-prefixed R2 object from the URL alone, without a D1 query.
 */
export function newImageId(tenantId: string): string {
  return tenantId + randomId(IMAGE_ID_LENGTH - TENANT_ID_LENGTH);
}

const IMAGE_ID_PATTERN = new RegExp(`^[0-9a-z]{${IMAGE_ID_LENGTH}}$`);

export function isImageId(value: string): boolean {
  return IMAGE_ID_PATTERN.test(value);
}

export function tenantOfImage(imageId: string): string {
  return imageId.slice(0, TENANT_ID_LENGTH);
}

export function hex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let out = "";
  for (const byte of view) out += byte.toString(16).padStart(2, "0");
  return out;
}
