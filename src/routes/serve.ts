import { Hono, type Context } from "hono";
import { claimRendition, enforceRateLimit } from "../abuse/rate-limit";
import { limitsFrom } from "../config";
import type { AppEnv } from "../env";
import { ProblemError } from "../errors";
import { docs } from "../http/openapi";
import { isImageId, tenantOfImage } from "../ids";
import { originalCacheKey } from "../storage/cache";
import { findVariant } from "../processing/variants";
import { originalKey } from "../storage/objects";
import { countTransform, flushUsage } from "../usage/counters";
import { tenantConfig, type TenantConfig } from "../tenants/config";
import { acceptClass } from "../transform/negotiate";
import { canonicalString, parseTransform, type ParsedTransform } from "../transform/params";
import { renderLimitsFrom, renderTransform } from "../transform/render";
import { verifyTransformSignature } from "../transform/signing";

export const serveRoutes = new Hono<AppEnv>();

/** Served images never change under their URL: cache them for a year everywhere. */
export const IMMUTABLE = "public, max-age=31536000, immutable";

/** Headers every served image carries: user bytes must never be sniffed or run as a document. */
export function imageSafetyHeaders(headers: Headers): void {
  headers.set("x-content-type-options", "nosniff");
  headers.set("content-security-policy", "default-src 'none'; sandbox");
  headers.set("cross-origin-resource-policy", "cross-origin");
  headers.set("access-control-allow-origin", "*");
}

serveRoutes.get("/i/:id", docs.serveImage, async (c) => {
  const id = c.req.param("id");
  if (!isImageId(id)) throw notFound();
  const url = new URL(c.req.url);
  if (url.search === "" || url.search === "?") return serveOriginal(c, id, url.origin);
  return serveTransformed(c, id, url.origin, url.searchParams, { signedByTenant: false });
});

/**
 * A stored variant by name. Variants are defined by the tenant's own key holders, so like
 * public presets they need no signature. Served through the same renditions as the
 * equivalent URL parameters.
 */
serveRoutes.get("/i/:id/:variant", docs.serveVariant, async (c) => {
  const id = c.req.param("id");
  if (!isImageId(id)) throw notFound();
  const url = new URL(c.req.url);
  if (url.search !== "" && url.search !== "?") {
    throw new ProblemError(400, "unknown-parameter", "A variant URL takes no parameters; use /i/:id?<parameters> for others.");
  }
  const variant = await findVariant(c.var.db, id, c.req.param("variant"));
  if (!variant) throw new ProblemError(404, "not-found", "No variant with this name for this image.");
  return serveTransformed(c, id, url.origin, new URLSearchParams(variant.params), { signedByTenant: true });
});

async function serveOriginal(c: Context<AppEnv>, id: string, origin: string): Promise<Response> {
  const cacheKey = originalCacheKey(origin, id);
  const cache = caches.default;
  let response = await cache.match(cacheKey);
  if (!response) {
    const object = await c.env.IMAGES.get(originalKey(tenantOfImage(id), id));
    if (!object) throw notFound();
    const headers = imageHeaders(object.httpMetadata?.contentType ?? "application/octet-stream", object.size, `"${id}"`);
    response = new Response(object.body, { headers });
    c.executionCtx.waitUntil(cache.put(cacheKey, response.clone()));
  }
  return conditional(c.req.raw, response);
}

async function serveTransformed(
  c: Context<AppEnv>,
  id: string,
  origin: string,
  query: URLSearchParams,
  trust: { signedByTenant: boolean },
): Promise<Response> {
  const limits = limitsFrom(c.env);
  const config = await tenantConfig(c.var.db, tenantOfImage(id), c.env.PRESETS);
  if (!config) throw notFound();

  const parsed = parseTransform(query, {
    resolvePreset: (name) => config.presets.get(name)?.params,
    limits: { maxSide: limits.maxOutputSide, maxPixels: limits.maxOutputPixels },
  });
  const canonical = canonicalString(parsed.options);
  // `?p=name` and nothing else: the tenant's own preset, as chosen.
  const barePreset = parsed.preset !== undefined && [...query.keys()].every((name) => name === "p");
  if (!trust.signedByTenant) await checkSignature(config, id, canonical, parsed, barePreset);
  // Parameters that change nothing (e.g. ?fit=scale-down) are the original.
  if (canonical === "") return serveOriginal(c, id, origin);

  const accept = parsed.options.format === "auto" ? acceptClass(c.req.header("accept")) : undefined;
  const cacheKeyPath = `/i/${id}?${canonical}${accept ? `&accept=${accept}` : ""}`;
  const cacheKey = origin + cacheKeyPath;
  const cache = caches.default;

  let response = await cache.match(cacheKey);
  let rendered = false;
  if (!response) {
    // Abuse limits apply only when a render really runs (inside renderTransform, after the R2 lookup).
    // Signed URLs, bare presets and variants are the tenant's own choices: exempt from the daily cap.
    const capped = !trust.signedByTenant && parsed.signature === undefined && !barePreset;
    const rendition = await renderTransform(
      c.env.IMAGES,
      renderLimitsFrom(limits),
      { imageId: id, options: parsed.options, canonical, accept },
      cacheKeyPath,
      {
        beforeRender: async (renditionId) => {
          await enforceRateLimit(c.env.RENDER_LIMITER, "render", tenantOfImage(id));
          if (capped) await claimRendition(c.env.DB, id, renditionId, limits.maxRenditionsPerImagePerDay);
        },
      },
    );
    const headers = imageHeaders(rendition.contentType, rendition.bytes, rendition.etag);
    response = new Response(rendition.body, { headers });
    c.executionCtx.waitUntil(cache.put(cacheKey, response.clone()));
    rendered = rendition.rendered;
    if (rendition.timings) {
      // Only on the response that rendered: the cached copy must not claim this work again.
      response = new Response(response.body, response);
      response.headers.set("server-timing", rendition.timings.map(([step, ms]) => `${step};dur=${ms.toFixed(1)}`).join(", "));
    }
  }
  if (accept) {
    // The Cache API key already names the negotiated class; browsers and CDNs need Vary.
    response = new Response(response.body, response);
    response.headers.set("vary", "Accept");
  }
  countTransform(tenantOfImage(id), rendered);
  c.executionCtx.waitUntil(flushUsage(c.var.db));
  return conditional(c.req.raw, response);
}

/**
 * With `require_signed_urls`, every transform needs a valid signature, except a bare public
 * preset (`?p=thumb`). A signature that is present is always checked.
 */
async function checkSignature(config: TenantConfig, id: string, canonical: string, parsed: ParsedTransform, barePreset: boolean): Promise<void> {
  const barePublicPreset = barePreset && parsed.preset !== undefined && config.presets.get(parsed.preset)?.public === true;
  if (parsed.signature || (config.tenant.requireSignedUrls && !barePublicPreset)) {
    await verifyTransformSignature(config.tenant.signingSecret, id, canonical, parsed.signature);
  }
}

function imageHeaders(contentType: string, bytes: number, etag: string): Headers {
  const headers = new Headers();
  headers.set("content-type", contentType);
  headers.set("content-length", String(bytes));
  // An image id (and a rendition id) names fixed bytes forever, so it is a strong validator.
  headers.set("etag", etag);
  headers.set("cache-control", IMMUTABLE);
  imageSafetyHeaders(headers);
  return headers;
}

/** Answers If-None-Match with 304 (the body is dropped unread). */
export function conditional(request: Request, response: Response): Response {
  const etag = response.headers.get("etag");
  const ifNoneMatch = request.headers.get("if-none-match");
  if (etag && ifNoneMatch && etagMatches(ifNoneMatch, etag)) {
    void response.body?.cancel();
    const headers = new Headers(response.headers);
    headers.delete("content-length");
    return new Response(null, { status: 304, headers });
  }
  return response;
}

function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === "*") return true;
  return header.split(",").some((candidate) => candidate.trim().replace(/^W\//, "") === etag);
}

function notFound(): ProblemError {
  return new ProblemError(404, "not-found", "No image with this id.");
}
