import { exports } from "cloudflare:workers";
import { expect } from "vitest";

export const ORIGIN = "http://img.test";
export const ADMIN_KEY = "test-admin-key";

export function call(path: string, init: RequestInit & { key?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.key) headers.set("authorization", `Bearer ${init.key}`);
  return exports.default.fetch(new Request(ORIGIN + path, { ...init, headers }));
}

export async function createTenant(name = "test"): Promise<{ tenantId: string; key: string; keyId: string }> {
  const response = await call("/v1/tenants", {
    method: "POST",
    key: ADMIN_KEY,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  expect(response.status).toBe(201);
  const body = await response.json<{ tenant: { id: string }; key: { id: string; key: string } }>();
  return { tenantId: body.tenant.id, key: body.key.key, keyId: body.key.id };
}

export interface UploadedImage {
  id: string;
  url: string;
  width: number;
  height: number;
  format: string;
  bytes: number;
  sha256: string;
  filename: string | null;
  metadata: Record<string, string>;
  createdAt: string;
  duplicate: boolean;
}

export interface UploadBody {
  images: UploadedImage[];
  errors: Array<{ index: number; filename: string | null; status: number; type: string; detail: string }>;
}

export type FormEntry = { name: string; value: string } | { name: string; bytes: Uint8Array; filename: string };

export function form(entries: FormEntry[]): FormData {
  const data = new FormData();
  for (const entry of entries) {
    if ("bytes" in entry) data.append(entry.name, new File([entry.bytes], entry.filename));
    else data.append(entry.name, entry.value);
  }
  return data;
}

export async function upload(key: string, entries: FormEntry[]): Promise<{ response: Response; body: UploadBody }> {
  const response = await call("/v1/images", { method: "POST", key, body: form(entries) });
  const body = await response.json<UploadBody>();
  return { response, body };
}

export async function expectProblem(response: Response, status: number, type?: string): Promise<Record<string, unknown>> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const body = await response.json<Record<string, unknown>>();
  expect(body["status"]).toBe(status);
  expect(typeof body["detail"]).toBe("string");
  if (type) expect(body["type"]).toBe(`https://edge-images.dev/problems/${type}`);
  return body;
}
