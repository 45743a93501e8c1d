import { ProblemError } from "../errors";

/**
 * Checks a URL we are asked to fetch (ingest sources) or call (webhooks): https only, no
 * credentials, no IP literals of private, loopback or link-local ranges, no internal names.
 * Workers cannot resolve DNS, so a public name pointing at a private address is not caught
 * here; on Cloudflare, outbound fetches cannot reach private networks anyway.
 * `allowInsecure` (local development and tests only) also allows http and loopback.
 */
export function checkOutboundUrl(raw: string, parameter: string, allowInsecure: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw outbound(parameter, "an absolute https URL", raw);
  }
  if (url.protocol !== "https:" && !(allowInsecure && url.protocol === "http:")) throw outbound(parameter, "an https URL", raw);
  if (url.username || url.password) throw outbound(parameter, "a URL without credentials", raw);
  if (!allowInsecure && isInternalHost(url.hostname)) throw outbound(parameter, "a public host", url.hostname);
  return url;
}

function isInternalHost(hostname: string): boolean {
  // A trailing dot is the same name ("localhost." is localhost).
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.+$/, "");
  if (host.includes(":")) return isPrivateIpv6(host);
  // WHATWG URL parsing has already normalised every IPv4 spelling (decimal, hex) to dotted form.
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) {
    const a = Number(v4[1]);
    const b = Number(v4[2]);
    return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || a >= 224;
  }
  return host === "localhost" || host.endsWith(".localhost") || host.endsWith(".local") || host.endsWith(".internal") || !host.includes(".");
}

function isPrivateIpv6(host: string): boolean {
  // Loopback, unspecified, unique-local, link-local, multicast, and IPv4 embedded in IPv6
  // (mapped ::ffff:, the deprecated compatible ::a.b.c.d, NAT64 64:ff9b::).
  return (
    host === "::1" ||
    host === "::" ||
    /^f[cd]/.test(host) ||
    /^fe[89ab]/.test(host) ||
    /^ff/.test(host) ||
    host.startsWith("::ffff:") ||
    /^::[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(host) ||
    host.startsWith("64:ff9b:")
  );
}

function outbound(parameter: string, expected: string, received: string): ProblemError {
  return new ProblemError(400, "invalid-parameter", `Expected ${expected} for ${parameter} but received ${JSON.stringify(received.slice(0, 200))}`, {
    parameter,
    expected,
    received: received.slice(0, 200),
  });
}

/** Fetches an image to ingest: at most 3 redirects, each target re-checked; 200 only; a timeout. */
export async function fetchSource(raw: string, maxBytes: number, allowInsecure: boolean): Promise<{ body: ReadableStream<Uint8Array>; filename: string | undefined }> {
  let url = checkOutboundUrl(raw, "urls", allowInsecure);
  for (let hop = 0; hop <= 3; hop++) {
    const response = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(20_000), headers: { accept: "image/*" } }).catch((error: unknown) => {
      throw new ProblemError(422, "invalid-image", `Could not fetch ${url.href}: ${String(error).slice(0, 200)}`);
    });
    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get("location");
      await response.body?.cancel();
      if (!location) break;
      url = checkOutboundUrl(new URL(location, url).href, "urls", allowInsecure);
      continue;
    }
    if (response.status !== 200 || !response.body) {
      await response.body?.cancel();
      throw new ProblemError(422, "invalid-image", `Fetching ${url.href} answered HTTP ${response.status}.`);
    }
    const length = Number(response.headers.get("content-length") ?? "NaN");
    if (Number.isFinite(length) && length > maxBytes) {
      await response.body.cancel();
      throw new ProblemError(413, "payload-too-large", `${url.href} is ${length} bytes; the limit is ${maxBytes}.`);
    }
    return { body: response.body, filename: decodeURIComponent(url.pathname.split("/").pop() ?? "") || undefined };
  }
  throw new ProblemError(422, "invalid-image", `Too many redirects fetching ${raw.slice(0, 200)}.`);
}
