import { Hono, type Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { requireKey } from "./auth/middleware";
import { createDb } from "./db/client";
import { accessLog } from "./http/access-log";
import type { AppEnv } from "./env";
import { ProblemError, problemResponse, toProblem } from "./errors";
import { randomId } from "./ids";
import { imageRoutes } from "./routes/images";
import { jobRoutes } from "./routes/jobs";
import { serveRoutes } from "./routes/serve";
import { settingsRoutes } from "./routes/settings";
import { tenantRoutes } from "./routes/tenants";

export const app = new Hono<AppEnv>();

app.use(async (c, next) => {
  c.set("requestId", c.req.header("cf-ray") ?? randomId(16));
  c.set("db", createDb(c.env.DB));
  await next();
  c.header("x-request-id", c.var.requestId);
});
app.use(accessLog);

const api = new Hono<AppEnv>();
api.use(requireKey);
api.route("/", tenantRoutes);
api.route("/", imageRoutes);
api.route("/", settingsRoutes);
api.route("/", jobRoutes);
app.route("/v1", api);
app.route("/", serveRoutes);

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
  ["/i/:id", "GET, HEAD"],
  ["/i/:id/:variant", "GET, HEAD"],
];
for (const [path, allow] of ALLOWED_METHODS) {
  app.all(path, async (c) => {
    await c.req.raw.body?.cancel();
    return problemResponse(new ProblemError(405, "method-not-allowed", `${c.req.method} is not allowed here; use ${allow}.`), c.req.path, {
      allow,
    });
  });
}

app.notFound(async (c) => {
  await c.req.raw.body?.cancel();
  return problemResponse(new ProblemError(404, "not-found", "No such route."), c.req.path);
});

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
