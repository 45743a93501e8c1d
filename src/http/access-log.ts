import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { isImageId, tenantOfImage } from "../ids";

/**
 * One structured JSON line per request: request id, tenant, route, status, bytes, duration
 * and, for transforms, the pipeline's step timings. Never the Authorization header or a key.
 */
export const accessLog = createMiddleware<AppEnv>(async (c, next) => {
  const started = Date.now();
  await next();
  const principal = c.var.principal;
  const imageId = c.req.param("id");
  const tenant = principal?.kind === "tenant" ? principal.tenant.id : principal?.kind === "admin" ? "admin" : imageId && isImageId(imageId) ? tenantOfImage(imageId) : undefined;
  console.log(
    JSON.stringify({
      level: c.res.status >= 500 ? "error" : "info",
      requestId: c.var.requestId,
      method: c.req.method,
      route: c.req.routePath,
      path: c.req.path,
      status: c.res.status,
      bytes: Number(c.res.headers.get("content-length") ?? 0) || undefined,
      ms: Date.now() - started,
      tenant,
      transform: c.res.headers.get("server-timing") ?? undefined,
    }),
  );
});
