// API keys: rotation (new key, revoke the old one: the old stops at once, the new works) and
// no key ever reaching the logs.
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadCorpus } from "./fixtures";
import { ADMIN_KEY, call, createTenant, expectProblem } from "./helpers";

async function newKey(key: string, name: string): Promise<{ id: string; key: string }> {
  const response = await call("/v1/keys", { method: "POST", key, headers: { "content-type": "application/json" }, body: JSON.stringify({ name }) });
  expect(response.status).toBe(201);
  return response.json<{ id: string; key: string }>();
}

describe("key rotation", () => {
  it("rotates: create a new key, revoke the old one; the old stops at once, the new one keeps working", async () => {
    const tenant = await createTenant("rotation");
    const upload = await call("/v1/images", { method: "PUT", key: tenant.key, body: await loadCorpus("photo-small-aero1.jpg") });
    expect(upload.status).toBe(201);

    const next = await newKey(tenant.key, "rotated");
    // Both work during the overlap.
    expect((await call("/v1/images", { key: tenant.key })).status).toBe(200);
    expect((await call("/v1/images", { key: next.key })).status).toBe(200);

    // The new key revokes the old one (a tenant can revoke the very key it calls with too).
    expect((await call(`/v1/keys/${tenant.keyId}`, { method: "DELETE", key: next.key })).status).toBe(204);
    await expectProblem(await call("/v1/images", { key: tenant.key }), 401, "unauthorized");
    await expectProblem(await call("/v1/keys", { method: "POST", key: tenant.key }), 401, "unauthorized");

    // The new key sees the same tenant's data, and the listing shows the old key as revoked.
    const list = await (await call("/v1/images", { key: next.key })).json<{ images: unknown[] }>();
    expect(list.images).toHaveLength(1);
    const keys = await (await call("/v1/keys", { key: next.key })).json<{ keys: Array<{ id: string; revokedAt: string | null }> }>();
    expect(keys.keys.find((k) => k.id === tenant.keyId)?.revokedAt).not.toBeNull();
    expect(keys.keys.find((k) => k.id === next.id)?.revokedAt).toBeNull();

    // Revoking the key in use: that request succeeds, the next one with it is refused.
    expect((await call(`/v1/keys/${next.id}`, { method: "DELETE", key: next.key })).status).toBe(204);
    await expectProblem(await call("/v1/images", { key: next.key }), 401, "unauthorized");
  });

  it("lets the admin rotate a tenant's key", async () => {
    const tenant = await createTenant("admin-rotation");
    const created = await call("/v1/keys", {
      method: "POST",
      key: ADMIN_KEY,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tenantId: tenant.tenantId, name: "by-admin" }),
    });
    const next = await created.json<{ key: string }>();
    expect((await call(`/v1/keys/${tenant.keyId}?tenantId=${tenant.tenantId}`, { method: "DELETE", key: ADMIN_KEY })).status).toBe(204);
    await expectProblem(await call("/v1/images", { key: tenant.key }), 401);
    expect((await call("/v1/images", { key: next.key })).status).toBe(200);
  });
});

describe("keys never logged", () => {
  afterEach(() => vi.restoreAllMocks());

  it("writes no key (admin, tenant, revoked or wrong) to any console output", async () => {
    const lines: string[] = [];
    const capture = (...args: unknown[]) => {
      lines.push(args.map((arg) => (typeof arg === "string" ? arg : arg instanceof Error ? `${arg.message}\n${arg.stack ?? ""}` : JSON.stringify(arg))).join(" "));
    };
    for (const method of ["log", "error", "warn", "info", "debug"] as const) vi.spyOn(console, method).mockImplementation(capture);

    const tenant = await createTenant("no-logs");
    const second = await newKey(tenant.key, "second");
    const wrongKey = "eik_" + "x".repeat(40);
    const bytes = await loadCorpus("photo-small-aero1.jpg");
    await call("/v1/images", { method: "PUT", key: tenant.key, body: bytes });
    await call("/v1/images", { key: second.key });
    await call("/v1/images?limit=nope", { key: second.key });
    await call("/v1/images", { method: "PUT", key: second.key, body: new TextEncoder().encode("<svg/>") });
    await call("/v1/images", { key: wrongKey });
    await call("/v1/images", { headers: { authorization: `Basic ${tenant.key}` } });
    await call(`/v1/keys/${second.id}`, { method: "DELETE", key: tenant.key });
    await call("/v1/images", { key: second.key });
    await call("/v1/tenant", { key: ADMIN_KEY });

    // The capture works: the access log wrote one line per request.
    expect(lines.filter((line) => line.includes('"route"')).length).toBeGreaterThanOrEqual(9);
    const text = lines.join("\n");
    for (const secret of [tenant.key, second.key, wrongKey, ADMIN_KEY]) expect(text).not.toContain(secret);
    expect(text).not.toMatch(/eik_[0-9a-z]{10,}/);
  });
});
