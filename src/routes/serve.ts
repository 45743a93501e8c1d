import { Hono } from "hono";
import type { AppEnv } from "../env";
import { ProblemError } from "../errors";
import { isImageId, tenantOfImage } from "../ids";
import { originalKey } from "../storage/objects";
import { originalCacheKey } from "../storage/cache";

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

serveRoutes.get("/i/:id", async (c) => {
  const id = c.req.param("id");
  if (!isImageId(id)) throw notFound();
  const url = new URL(c.req.url);
  if (url.search !== "") {
    throw new ProblemError(400, "unknown-parameter", "Transform parameters are not supported yet.");
  }

  const cacheKey = originalCacheKey(url.origin, id);
  const cache = caches.default;
  let response = await cache.match(cacheKey);
  if (!response) {
    const object = await c.env.IMAGES.get(originalKey(tenantOfImage(id), id));
    if (!object) throw notFound();
    response = originalResponse(id, object);
    c.executionCtx.waitUntil(cache.put(cacheKey, response.clone()));
  }
  return conditional(c.req.raw, response);
});

function originalResponse(id: string, object: R2ObjectBody): Response {
  const headers = new Headers();
  headers.set("content-type", object.httpMetadata?.contentType ?? "application/octet-stream");
  headers.set("content-length", String(object.size));
  // An image id names fixed bytes forever, so the id itself is a strong validator.
  headers.set("etag", `"${id}"`);
  headers.set("cache-control", IMMUTABLE);
  imageSafetyHeaders(headers);
  return new Response(object.body, { headers });
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
