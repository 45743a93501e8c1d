// A tiny HTTP client for end-to-end tests against the real `wrangler dev`.
import { inject } from "vitest";

export const baseUrl = (): string => inject("baseUrl");

export async function createTenant(name: string): Promise<{ tenantId: string; key: string }> {
  const response = await fetch(`${baseUrl()}/v1/tenants`, {
    method: "POST",
    headers: { authorization: `Bearer ${inject("adminKey")}`, "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  if (response.status !== 201) throw new Error(`tenant creation failed: ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { tenant: { id: string }; key: { key: string } };
  return { tenantId: body.tenant.id, key: body.key.key };
}

export interface ImageJson {
  id: string;
  url: string;
  width: number;
  height: number;
  format: string;
  bytes: number;
  sha256: string;
  filename: string | null;
  duplicate?: boolean;
}

export interface UploadJson {
  images: ImageJson[];
  errors: Array<{ index: number; filename: string | null; status: number; type: string; detail: string }>;
}

export async function listAll(key: string): Promise<ImageJson[]> {
  const all: ImageJson[] = [];
  let cursor: string | null = null;
  do {
    const response = await fetch(`${baseUrl()}/v1/images?limit=100${cursor ? `&cursor=${cursor}` : ""}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    const page = (await response.json()) as { images: ImageJson[]; nextCursor: string | null };
    all.push(...page.images);
    cursor = page.nextCursor;
  } while (cursor);
  return all;
}
