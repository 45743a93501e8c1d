import { Hono } from "hono";
import { eq } from "drizzle-orm";
import { z } from "zod";
import { tenantOf } from "../auth/middleware";
import { limitsFrom } from "../config";
import { findImage } from "../db/images";
import { deletePreset, listPresets, upsertPreset } from "../db/presets";
import { tenants, type Preset, type Tenant } from "../db/schema";
import type { AppEnv } from "../env";
import { invalidParameter, ProblemError } from "../errors";
import { readJson } from "../http/json";
import { docs } from "../http/openapi";
import { forgetTenantConfig, tenantConfig } from "../tenants/config";
import { canonicalString, parseTransform } from "../transform/params";
import { signTransform } from "../transform/signing";

/** Tenant settings, presets and the URL-signing helper. */
export const settingsRoutes = new Hono<AppEnv>();

const PRESET_NAME = /^[a-z0-9_-]{1,64}$/;

/** The tenant's settings, with the webhook secret its receivers verify signatures with. */
settingsRoutes.get("/tenant", docs.getTenant, (c) => c.json(tenantView(tenantOf(c.var.principal))));

const tenantPatch = z.object({ requireSignedUrls: z.boolean() }).strict();

settingsRoutes.patch("/tenant", docs.patchTenant(tenantPatch), async (c) => {
  const tenant = tenantOf(c.var.principal);
  const body = await readJson(c, tenantPatch);
  const rows = await c.var.db.update(tenants).set({ requireSignedUrls: body.requireSignedUrls }).where(eq(tenants.id, tenant.id)).returning();
  forgetTenantConfig(tenant.id);
  return c.json(tenantView(rows[0] ?? tenant));
});

settingsRoutes.get("/presets", docs.listPresets, async (c) => {
  const tenant = tenantOf(c.var.principal);
  return c.json({ presets: (await listPresets(c.var.db, tenant.id)).map(presetView) });
});

const presetBody = z.object({ params: z.string().max(2048), public: z.boolean().optional() }).strict();

settingsRoutes.put("/presets/:name", docs.putPreset(presetBody), async (c) => {
  const tenant = tenantOf(c.var.principal);
  const name = c.req.param("name");
  if (!PRESET_NAME.test(name)) throw invalidParameter("name", `a preset name matching ${PRESET_NAME.source}`, name);
  const body = await readJson(c, presetBody);
  const query = new URLSearchParams(body.params);
  for (const field of ["p", "sig", "exp"]) {
    if (query.has(field)) throw invalidParameter("params", "transform parameters without p, sig or exp", body.params.slice(0, 64));
  }
  const limits = limitsFrom(c.env);
  const { options } = parseTransform(query, { limits: { maxSide: limits.maxOutputSide, maxPixels: limits.maxOutputPixels } });
  const preset = await upsertPreset(c.var.db, tenant.id, name, canonicalString(options), body.public ?? false);
  forgetTenantConfig(tenant.id);
  return c.json(presetView(preset));
});

settingsRoutes.delete("/presets/:name", docs.deletePreset, async (c) => {
  const tenant = tenantOf(c.var.principal);
  await deletePreset(c.var.db, tenant.id, c.req.param("name"));
  forgetTenantConfig(tenant.id);
  return c.body(null, 204);
});

const signBody = z
  .object({
    imageId: z.string().max(64),
    params: z.string().max(4096).default(""),
    /** Expiry in Unix seconds, or a lifetime in seconds from now. */
    expiresAt: z.number().int().positive().optional(),
    expiresIn: z.number().int().positive().max(10 * 365 * 24 * 3600).optional(),
  })
  .strict();

/** Signs a transform URL with the tenant's secret; the secret itself never leaves the server. */
settingsRoutes.post("/sign", docs.sign(signBody), async (c) => {
  const tenant = tenantOf(c.var.principal);
  const body = await readJson(c, signBody);
  if (!(await findImage(c.var.db, tenant.id, body.imageId))) throw new ProblemError(404, "not-found", "No image with this id.");
  const config = await tenantConfig(c.var.db, tenant.id, c.env.PRESETS);
  const limits = limitsFrom(c.env);
  const { options } = parseTransform(new URLSearchParams(body.params), {
    resolvePreset: (name) => config?.presets.get(name)?.params,
    limits: { maxSide: limits.maxOutputSide, maxPixels: limits.maxOutputPixels },
  });
  const canonical = canonicalString(options);
  const exp = body.expiresAt ?? (body.expiresIn === undefined ? undefined : Math.floor(Date.now() / 1000) + body.expiresIn);
  const sig = await signTransform(tenant.signingSecret, body.imageId, canonical, exp);
  const query = [canonical, exp === undefined ? "" : `exp=${exp}`, `sig=${sig}`].filter((part) => part !== "").join("&");
  const path = `/i/${body.imageId}?${query}`;
  return c.json({ url: new URL(c.req.url).origin + path, path, sig, exp: exp ?? null, params: canonical });
});

function tenantView(tenant: Tenant) {
  return {
    id: tenant.id,
    name: tenant.name,
    requireSignedUrls: tenant.requireSignedUrls,
    webhookSecret: tenant.webhookSecret,
    createdAt: new Date(tenant.createdAt).toISOString(),
  };
}

function presetView(preset: Preset) {
  return { name: preset.name, params: preset.params, public: preset.public, updatedAt: new Date(preset.updatedAt).toISOString() };
}
