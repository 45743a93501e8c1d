import { ProblemError } from "../errors";
import type { TransformSignature } from "./params";

/**
 * Signed transform URLs: sig = base64url(HMAC-SHA256(tenant secret, "/i/<id>?<canonical>[&exp=<unix s>]")).
 * Signing the canonical parameters (not the raw query) lets equivalent URLs share one signature
 * and keeps the signature independent of parameter order.
 */
export function signedPayload(imageId: string, canonical: string, exp?: number): string {
  const parts = [canonical, exp === undefined ? "" : `exp=${exp}`].filter((part) => part !== "");
  return `/i/${imageId}?${parts.join("&")}`;
}

export async function signTransform(secretHex: string, imageId: string, canonical: string, exp?: number): Promise<string> {
  const key = await hmacKey(secretHex, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(signedPayload(imageId, canonical, exp)));
  return base64url(new Uint8Array(mac));
}

/** Throws 403 unless the signature is valid and unexpired. crypto.subtle.verify compares in constant time. */
export async function verifyTransformSignature(
  secretHex: string,
  imageId: string,
  canonical: string,
  signature: TransformSignature | undefined,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<void> {
  if (!signature) {
    throw new ProblemError(403, "signature-required", "This tenant requires signed transform URLs: add sig= (and optionally exp=).", {
      parameter: "sig",
    });
  }
  const mac = fromBase64url(signature.sig);
  const key = await hmacKey(secretHex, ["verify"]);
  const valid = mac !== undefined && (await crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode(signedPayload(imageId, canonical, signature.exp))));
  if (!valid) throw new ProblemError(403, "signature-invalid", "The URL signature does not match its parameters.", { parameter: "sig" });
  if (signature.exp !== undefined && signature.exp < nowSeconds) {
    throw new ProblemError(403, "signature-expired", `The signed URL expired at ${new Date(signature.exp * 1000).toISOString()}.`, {
      parameter: "exp",
    });
  }
}

async function hmacKey(secretHex: string, usages: Array<"sign" | "verify">): Promise<CryptoKey> {
  const raw = new Uint8Array((secretHex.match(/../g) ?? []).map((pair) => parseInt(pair, 16)));
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, usages);
}

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array | undefined {
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
}
