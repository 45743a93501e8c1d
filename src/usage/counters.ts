import { sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { usageDaily } from "../db/schema";

/**
 * Transform counts are kept in isolate memory and written to D1 in one statement per tenant
 * at most every FLUSH_EVERY_MS, so a cached image costs no D1 write. Counts of an isolate
 * that is evicted before its next flush are lost: the figures are a close lower bound.
 */
export const FLUSH_EVERY_MS = 10_000;

interface Pending {
  served: number;
  rendered: number;
}

const pending = new Map<string, Pending>();
let lastFlush = 0;

export function countTransform(tenantId: string, rendered: boolean): void {
  const counts = pending.get(tenantId) ?? { served: 0, rendered: 0 };
  counts.served++;
  if (rendered) counts.rendered++;
  pending.set(tenantId, counts);
}

/** Writes the pending counts when due (or when `force`); call through ctx.waitUntil. */
export async function flushUsage(db: Db, now = Date.now(), force = false): Promise<void> {
  if (pending.size === 0 || (!force && now - lastFlush < FLUSH_EVERY_MS)) return;
  lastFlush = now;
  const day = new Date(now).toISOString().slice(0, 10);
  const batch = [...pending.entries()];
  pending.clear();
  for (const [tenantId, counts] of batch) {
    await db
      .insert(usageDaily)
      .values({ tenantId, day, transformsServed: counts.served, transformsRendered: counts.rendered })
      .onConflictDoUpdate({
        target: [usageDaily.tenantId, usageDaily.day],
        set: {
          transformsServed: sql`${usageDaily.transformsServed} + ${counts.served}`,
          transformsRendered: sql`${usageDaily.transformsRendered} + ${counts.rendered}`,
        },
      });
  }
}
