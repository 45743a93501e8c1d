import { and, desc, eq, isNull } from "drizzle-orm";
import { displayPrefix, generateApiKey, hashKey } from "../auth/keys";
import { hex, newTenantId, randomId } from "../ids";
import type { Db } from "./client";
import { apiKeys, tenants, type ApiKey, type Tenant } from "./schema";

export interface CreatedKey {
  readonly record: ApiKey;
  /** The secret, returned once at creation and never stored. */
  readonly key: string;
}

export async function createTenant(db: Db, name: string, now = Date.now()): Promise<{ tenant: Tenant; key: CreatedKey }> {
  const tenant: Tenant = {
    id: newTenantId(),
    name,
    signingSecret: hex(crypto.getRandomValues(new Uint8Array(32))),
    webhookSecret: hex(crypto.getRandomValues(new Uint8Array(32))),
    requireSignedUrls: false,
    createdAt: now,
  };
  const key = await newKeyRecord(tenant.id, "default", now);
  // One batch = one transaction: never a tenant without its first key.
  await db.batch([db.insert(tenants).values(tenant), db.insert(apiKeys).values(key.record)]);
  return { tenant, key };
}

export async function findTenant(db: Db, tenantId: string): Promise<Tenant | undefined> {
  return db.query.tenants.findFirst({ where: eq(tenants.id, tenantId) });
}

export async function createKey(db: Db, tenantId: string, name: string | null, now = Date.now()): Promise<CreatedKey> {
  const key = await newKeyRecord(tenantId, name, now);
  await db.insert(apiKeys).values(key.record);
  return key;
}

export async function listKeys(db: Db, tenantId: string): Promise<ApiKey[]> {
  return db.select().from(apiKeys).where(eq(apiKeys.tenantId, tenantId)).orderBy(desc(apiKeys.createdAt));
}

/** Revokes a key of the tenant; returns false when the tenant has no such key. Idempotent. */
export async function revokeKey(db: Db, tenantId: string, keyId: string, now = Date.now()): Promise<boolean> {
  const existing = await db.query.apiKeys.findFirst({ where: and(eq(apiKeys.id, keyId), eq(apiKeys.tenantId, tenantId)) });
  if (!existing) return false;
  if (existing.revokedAt === null) {
    await db.update(apiKeys).set({ revokedAt: now }).where(and(eq(apiKeys.id, keyId), eq(apiKeys.tenantId, tenantId)));
  }
  return true;
}

/** The live key with this secret, with its tenant. */
export async function authenticateKey(db: Db, secret: string): Promise<{ key: ApiKey; tenant: Tenant } | undefined> {
  const keyHash = await hashKey(secret);
  const rows = await db
    .select({ key: apiKeys, tenant: tenants })
    .from(apiKeys)
    .innerJoin(tenants, eq(apiKeys.tenantId, tenants.id))
    .where(and(eq(apiKeys.keyHash, keyHash), isNull(apiKeys.revokedAt)))
    .limit(1);
  return rows[0];
}

async function newKeyRecord(tenantId: string, name: string | null, now: number): Promise<CreatedKey> {
  const key = generateApiKey();
  return {
    key,
    record: {
      id: "key_" + randomId(16),
      tenantId,
      keyHash: await hashKey(key),
      prefix: displayPrefix(key),
      name,
      createdAt: now,
      revokedAt: null,
    },
  };
}
