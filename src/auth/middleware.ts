import { createMiddleware } from "hono/factory";
import { authenticateKey } from "../db/tenants";
import type { AppEnv, Principal } from "../env";
import { ProblemError } from "../errors";
import { secretsEqual } from "./keys";

/** Requires `Authorization: Bearer <key>`: the admin key or a live tenant key. */
export const requireKey = createMiddleware<AppEnv>(async (c, next) => {
  const secret = bearerToken(c.req.header("authorization"));
  c.set("principal", await principalFor(c.env, c.var.db, secret));
  await next();
});

async function principalFor(env: Env, db: AppEnv["Variables"]["db"], secret: string): Promise<Principal> {
  const adminKey = env.ADMIN_API_KEY;
  if (adminKey && (await secretsEqual(secret, adminKey))) return { kind: "admin" };
  const found = await authenticateKey(db, secret);
  if (!found) throw unauthorized("The API key is not valid or has been revoked.");
  return { kind: "tenant", tenant: found.tenant, keyId: found.key.id };
}

function bearerToken(header: string | undefined): string {
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) throw unauthorized("Send an API key as `Authorization: Bearer <key>`.");
  return match[1];
}

function unauthorized(detail: string): ProblemError {
  return new ProblemError(401, "unauthorized", detail);
}

/** The tenant making the request; admin callers must name one where allowed, else 403. */
export function tenantOf(principal: Principal): Extract<Principal, { kind: "tenant" }>["tenant"] {
  if (principal.kind === "tenant") return principal.tenant;
  throw new ProblemError(403, "forbidden", "This endpoint acts on one tenant's data: use that tenant's API key.");
}
