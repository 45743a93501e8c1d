import { Hono, type Context } from "hono";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { requireKey } from "./auth/middleware";
import { createDb } from "./db/client";
import { accessLog } from "./http/access-log";
import { docsRoutes } from "./http/openapi";
import { requestBodies, requestLimits } from "./http/request-limits";
import type { AppEnv } from "./env";
import { ProblemError, problemResponse, toProblem } from "./errors";
import { randomId } from "./ids";
import { imageRoutes } from "./routes/images";
import { jobRoutes } from "./routes/jobs";
import { usageRoutes } from "./routes/usage";
import { serveRoutes } from "./routes/serve";
import { settingsRoutes } from "./routes/settings";
import { tenantRoutes } from "./routes/tenants";

export const app = new Hono<AppEnv>();

app.use(async (c, next) => {
  c.set("requestId", c.req.header("cf-ray") ?? randomId(16));
  c.set("db", createDb(c.env.DB));
  await next();
  c.header("x-request-id", c.var.requestId);
  // Every response, JSON and problem documents included: never let a browser sniff a type.
  c.header("x-content-type-options", "nosniff");
});
app.use(accessLog);
app.use(requestBodies);
app.use(requestLimits);

/**
 * CORS: every origin may call the API and fetch images. Safe with `*` because the API
 * authenticates with bearer keys sent explicitly in `Authorization`, never with cookies or
 * other ambient credentials (and `*` forbids credentialed requests anyway), so a foreign
 * page can do nothing it could not do with its own key. Preflights answer 204 here.
 */
const corsPolicy = cors({
  origin: "*",
  allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
  allowHeaders: ["Authorization", "Content-Type", "Content-Disposition", "X-Metadata", "X-Variants", "If-None-Match"],
  exposeHeaders: ["Location", "Retry-After", "X-Request-Id", "ETag", "Content-Length", "Server-Timing"],
  maxAge: 86400,
});
app.use("/v1/*", corsPolicy);
app.use("/i/*", corsPolicy);

const api = new Hono<AppEnv>();
api.use(requireKey);
api.route("/", tenantRoutes);
api.route("/", imageRoutes);
api.route("/", settingsRoutes);
api.route("/", jobRoutes);
api.route("/", usageRoutes);
app.route("/v1", api);
app.route("/", serveRoutes);
app.route("/", docsRoutes(app));

/** Known paths answer other methods with 405 and the methods they do take. */
const ALLOWED_METHODS: ReadonlyArray<readonly [string, string]> = [
  ["/v1/tenants", "POST"],
  ["/v1/keys", "GET, POST"],
  ["/v1/keys/:id", "DELETE"],
  ["/v1/images", "GET, HEAD, POST, PUT"],
  ["/v1/images/:id", "GET, HEAD, PATCH, DELETE"],
  ["/v1/tenant", "GET, HEAD, PATCH"],
  ["/v1/presets", "GET, HEAD"],
  ["/v1/presets/:name", "PUT, DELETE"],
  ["/v1/sign", "POST"],
  ["/v1/jobs", "GET, HEAD, POST"],
  ["/v1/jobs/:id", "GET, HEAD"],
  ["/v1/usage", "GET, HEAD"],
  ["/i/:id", "GET, HEAD"],
  ["/i/:id/:variant", "GET, HEAD"],
  ["/openapi.json", "GET, HEAD"],
  ["/docs", "GET, HEAD"],
];
for (const [path, allow] of ALLOWED_METHODS) {
  app.all(path, (c) =>
    problemResponse(new ProblemError(405, "method-not-allowed", `${c.req.method} is not allowed here; use ${allow}.`), c.req.path, {
      allow,
    }),
  );
}

// A request answered before its body is read leaves the body alone: cancelling a body the
// client is still sending tears the connection down (workerd), and the client then sees a
// network error instead of the problem document. The rest of every body is settled by
// requestBodies (src/http/request-limits.ts).
app.notFound((c) => problemResponse(new ProblemError(404, "not-found", "No such route."), c.req.path));

app.onError((error, c) => errorResponse(error, c));

function errorResponse(error: unknown, c: Context<AppEnv>): Response {
  const problem =
    error instanceof HTTPException && !(error instanceof ProblemError)
      ? new ProblemError(error.status === 413 ? 413 : 400, error.status === 413 ? "payload-too-large" : "bad-request", error.message || "Bad request.")
      : toProblem(error);
  if (problem.status >= 500) {
    console.error(JSON.stringify({ level: "error", requestId: c.var.requestId, path: c.req.path, error: String(error), cause: String(problem.cause ?? "") }));
  }
  const headers: Record<string, string> = { "x-request-id": c.var.requestId ?? "" };
  if (problem.status === 401) headers["www-authenticate"] = 'Bearer realm="edge-images"';
  return problemResponse(problem, c.req.path, headers);
}
