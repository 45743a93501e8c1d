import { Hono } from "hono";
import { and, eq, gte, sql } from "drizzle-orm";
import { tenantOf } from "../auth/middleware";
import { images, usageDaily, variants } from "../db/schema";
import type { AppEnv } from "../env";
import { docs } from "../http/openapi";
import { flushUsage } from "../usage/counters";

export const usageRoutes = new Hono<AppEnv>();

/** The tenant's footprint and transform counts (today and the last 30 days). */
usageRoutes.get("/usage", docs.getUsage, async (c) => {
  const tenant = tenantOf(c.var.principal);
  await flushUsage(c.var.db, Date.now(), true);
  const [stored] = await c.var.db
    .select({ count: sql<number>`count(*)`, bytes: sql<number>`coalesce(sum(${images.bytes}), 0)` })
    .from(images)
    .where(eq(images.tenantId, tenant.id));
  const [variantBytes] = await c.var.db
    .select({ count: sql<number>`count(*)`, bytes: sql<number>`coalesce(sum(${variants.bytes}), 0)` })
    .from(variants)
    .where(eq(variants.tenantId, tenant.id));
  const since = new Date(Date.now() - 29 * 86_400_000).toISOString().slice(0, 10);
  const days = await c.var.db
    .select()
    .from(usageDaily)
    .where(and(eq(usageDaily.tenantId, tenant.id), gte(usageDaily.day, since)));
  const today = new Date().toISOString().slice(0, 10);
  const todayRow = days.find((row) => row.day === today);
  return c.json({
    images: stored?.count ?? 0,
    bytesStored: { originals: stored?.bytes ?? 0, variants: variantBytes?.bytes ?? 0 },
    variants: variantBytes?.count ?? 0,
    transforms: {
      today: { served: todayRow?.transformsServed ?? 0, rendered: todayRow?.transformsRendered ?? 0 },
      last30Days: {
        served: days.reduce((sum, row) => sum + row.transformsServed, 0),
        rendered: days.reduce((sum, row) => sum + row.transformsRendered, 0),
      },
    },
  });
});
