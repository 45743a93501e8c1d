import type { Db } from "../db/client";
import { listPresets } from "../db/presets";
import { findTenant } from "../db/tenants";
import type { Tenant } from "../db/schema";

export interface PresetEntry {
  /** Canonical transform query string. */
  readonly params: string;
  readonly public: boolean;
  readonly source: "tenant" | "config";
}

/** What the public image path needs to know about a tenant: signing settings and presets. */
export interface TenantConfig {
  readonly tenant: Tenant;
  readonly presets: ReadonlyMap<string, PresetEntry>;
}

/**
 * Tenant configs are kept in isolate memory for a short while, so a busy transform path does
 * not read D1 per request. Changes made through this isolate apply at once (forgetTenantConfig);
 * other isolates see them within TTL_MS.
 */
export const TTL_MS = 30_000;
const remembered = new Map<string, { config: TenantConfig | undefined; expires: number }>();

export async function tenantConfig(db: Db, tenantId: string, configPresets: string | undefined, now = Date.now()): Promise<TenantConfig | undefined> {
  const hit = remembered.get(tenantId);
  if (hit && hit.expires > now) return hit.config;
  const tenant = await findTenant(db, tenantId);
  let config: TenantConfig | undefined;
  if (tenant) {
    const entries = new Map<string, PresetEntry>(
      Object.entries(parseConfigPresets(configPresets)).map(([name, params]) => [name, { params, public: true, source: "config" }]),
    );
    for (const preset of await listPresets(db, tenantId)) {
      entries.set(preset.name, { params: preset.params, public: preset.public, source: "tenant" });
    }
    config = { tenant, presets: entries };
  }
  if (remembered.size > 10_000) remembered.clear();
  remembered.set(tenantId, { config, expires: now + TTL_MS });
  return config;
}

export function forgetTenantConfig(tenantId: string): void {
  remembered.delete(tenantId);
}

const parsedConfigPresets = new Map<string, Record<string, string>>();

/** The PRESETS var: a JSON object of name -> query string, shared by every tenant (public). */
export function parseConfigPresets(raw: string | undefined): Record<string, string> {
  if (!raw) return {};
  const cached = parsedConfigPresets.get(raw);
  if (cached) return cached;
  const value: unknown = JSON.parse(raw);
  const result: Record<string, string> = {};
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [name, params] of Object.entries(value)) if (typeof params === "string") result[name] = params;
  }
  parsedConfigPresets.set(raw, result);
  return result;
}
