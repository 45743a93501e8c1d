import { and, asc, eq } from "drizzle-orm";
import type { Db } from "./client";
import { presets, type Preset } from "./schema";

export async function upsertPreset(db: Db, tenantId: string, name: string, params: string, isPublic: boolean, now = Date.now()): Promise<Preset> {
  const rows = await db
    .insert(presets)
    .values({ tenantId, name, params, public: isPublic, createdAt: now, updatedAt: now })
    .onConflictDoUpdate({ target: [presets.tenantId, presets.name], set: { params, public: isPublic, updatedAt: now } })
    .returning();
  const row = rows[0];
  if (!row) throw new Error("preset upsert returned no row");
  return row;
}

export async function listPresets(db: Db, tenantId: string): Promise<Preset[]> {
  return db.select().from(presets).where(eq(presets.tenantId, tenantId)).orderBy(asc(presets.name));
}

export async function deletePreset(db: Db, tenantId: string, name: string): Promise<boolean> {
  const rows = await db.delete(presets).where(and(eq(presets.tenantId, tenantId), eq(presets.name, name))).returning();
  return rows.length > 0;
}
