import { hex } from "../ids";

export const SIGNATURE_HEADER = "x-edge-images-signature";

/**
 * Webhook signature, Stripe-style: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 * Receivers recompute the HMAC over the raw body and reject old timestamps (replays).
 */
export async function signWebhook(secretHex: string, body: string, timestamp: number): Promise<string> {
  const key = await crypto.subtle.importKey("raw", hexBytes(secretHex), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${timestamp}.${body}`));
  return `t=${timestamp},v1=${hex(mac)}`;
}

export interface DeliveryResult {
  readonly ok: boolean;
  readonly status?: number;
  readonly error?: string;
}

/** POSTs the body once; redirects are not followed (a redirect could point anywhere). */
export async function deliverWebhook(url: string, secretHex: string, body: string, now = Date.now(), fetcher: typeof fetch = fetch): Promise<DeliveryResult> {
  const signature = await signWebhook(secretHex, body, Math.floor(now / 1000));
  try {
    const response = await fetcher(url, {
      method: "POST",
      headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signature, "user-agent": "edge-images-webhook/1" },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(10_000),
    });
    await response.body?.cancel();
    return response.ok ? { ok: true, status: response.status } : { ok: false, status: response.status, error: `HTTP ${response.status}` };
  } catch (error) {
    return { ok: false, error: String(error) };
  }
}

function hexBytes(text: string): Uint8Array {
  return new Uint8Array((text.match(/../g) ?? []).map((pair) => parseInt(pair, 16)));
}
