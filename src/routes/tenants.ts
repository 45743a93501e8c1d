import { Hono } from "hono";
import { z } from "zod";
import { createKey, createTenant, listKeys, revokeKey } from "../db/tenants";
import type { ApiKey } from "../db/schema";
import type { AppEnv } from "../env";
import { ProblemError } from "../errors";
import { readJson } from "../http/json";
import { docs } from "../http/openapi";

export const tenantRoutes = new Hono<AppEnv>();

const createTenantBody = z.object({ name: z.string().trim().min(1).max(128) }).strict();
const createKeyBody = z.object({ name: z.string().trim().min(1).max(128).optional(), tenantId: z.string().max(64).optional() }).strict();

tenantRoutes.post("/tenants", docs.createTenant(createTenantBody), async (c) => {
  if (c.var.principal.kind !== "admin") throw new ProblemError(403, "forbidden", "Creating tenants needs the admin key.");
  const body = await readJson(c, createTenantBody);
  const { tenant, key } = await createTenant(c.var.db, body.name);
  return c.json(
    {
      tenant: { id: tenant.id, name: tenant.name, requireSignedUrls: tenant.requireSignedUrls, createdAt: new Date(tenant.createdAt).toISOString() },
      key: { ...keyView(key.record), key: key.key },
    },
    201,
  );
});

tenantRoutes.post("/keys", docs.createKey(createKeyBody), async (c) => {
  const body = await readJson(c, createKeyBody, { optional: true });
  const tenantId = keyTenant(c.var.principal, body.tenantId);
  const created = await createKey(c.var.db, tenantId, body.name ?? null).catch((error: unknown) => {
    // The only foreign key here: an admin naming a tenant that does not exist.
    throw new ProblemError(404, "not-found", "No such tenant.", {}, { cause: error });
  });
  return c.json({ ...keyView(created.record), key: created.key }, 201);
});

tenantRoutes.get("/keys", docs.listKeys, async (c) => {
  const tenantId = keyTenant(c.var.principal, c.req.query("tenantId"));
  const keys = await listKeys(c.var.db, tenantId);
  return c.json({ keys: keys.map(keyView) });
});

tenantRoutes.delete("/keys/:id", docs.revokeKey, async (c) => {
  const tenantId = keyTenant(c.var.principal, c.req.query("tenantId"));
  const found = await revokeKey(c.var.db, tenantId, c.req.param("id"));
  if (!found) throw new ProblemError(404, "not-found", "No such key.");
  return c.body(null, 204);
});

/** Tenants manage their own keys; the admin names the tenant. */
function keyTenant(principal: AppEnv["Variables"]["principal"], requested: string | undefined): string {
  if (principal.kind === "tenant") {
    if (requested !== undefined && requested !== principal.tenant.id) throw new ProblemError(404, "not-found", "No such tenant.");
    return principal.tenant.id;
  }
  if (!requested) throw new ProblemError(400, "invalid-parameter", "With the admin key, name the tenant with tenantId.", { parameter: "tenantId" });
  return requested;
}

function keyView(key: ApiKey) {
  return {
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    createdAt: new Date(key.createdAt).toISOString(),
    revokedAt: key.revokedAt === null ? null : new Date(key.revokedAt).toISOString(),
  };
}
