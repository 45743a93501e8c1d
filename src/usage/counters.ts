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
  addPending(tenantId, 1, rendered ? 1 : 0);
}

function addPending(tenantId: string, served: number, rendered: number): void {
  const counts = pending.get(tenantId) ?? { served: 0, rendered: 0 };
  counts.served += served;
  counts.rendered += rendered;
  pending.set(tenantId, counts);
}

/**
 * Writes the pending counts when due (or when `force`); call through ctx.waitUntil. The counts
 * written are taken out of `pending` first, so a flush overlapping this one writes only what
 * arrived since (nothing is counted twice); if the write fails they are added back and the next
 * flush writes them. Returns whether counts were written; a failure is logged, never thrown.
 */
export async function flushUsage(db: Db, now = Date.now(), force = false): Promise<boolean> {
  if (pending.size === 0 || (!force && now - lastFlush < FLUSH_EVERY_MS)) return false;
  lastFlush = now;
  const day = new Date(now).toISOString().slice(0, 10);
  const taken = [...pending.entries()];
  pending.clear();
  const statements = taken.map(([tenantId, counts]) =>
    db
      .insert(usageDaily)
      .values({ tenantId, day, transformsServed: counts.served, transformsRendered: counts.rendered })
      .onConflictDoUpdate({
        target: [usageDaily.tenantId, usageDaily.day],
        set: {
          transformsServed: sql`${usageDaily.transformsServed} + ${counts.served}`,
          transformsRendered: sql`${usageDaily.transformsRendered} + ${counts.rendered}`,
        },
      }),
  );
  const [first, ...rest] = statements;
  if (!first) return false;
  try {
    // One batch is one transaction: every tenant's counts are written, or none.
    await db.batch([first, ...rest]);
    return true;
  } catch (error) {
    for (const [tenantId, counts] of taken) addPending(tenantId, counts.served, counts.rendered);
    console.error(JSON.stringify({ level: "error", message: "usage flush failed; counts kept for the next flush", tenants: taken.length, error: String(error).slice(0, 300) }));
    return false;
  }
}

/** The counts of a tenant not yet written to D1 (for tests and diagnostics). */
export function pendingUsage(tenantId: string): Readonly<Pending> {
  const counts = pending.get(tenantId);
  return { served: counts?.served ?? 0, rendered: counts?.rendered ?? 0 };
}
