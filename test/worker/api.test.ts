import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { thumbHashToRGBA } from "thumbhash";
import { loadCorpus, loadFixture } from "./fixtures";
import { ADMIN_KEY, call, createTenant, expectProblem, form, upload, type UploadBody } from "./helpers";

let tenant: { tenantId: string; key: string; keyId: string };
let other: { tenantId: string; key: string; keyId: string };
let aero: Uint8Array;
let fruits: Uint8Array;
let logo: Uint8Array;

beforeAll(async () => {
  tenant = await createTenant("acme");
  other = await createTenant("globex");
  aero = await loadCorpus("photo-small-aero1.jpg");
  fruits = await loadCorpus("photo-small-fruits.jpg");
  logo = await loadCorpus("png-alpha-watermark-debian.png");
});

async function r2Keys(prefix: string): Promise<string[]> {
  const listed = await env.IMAGES.list({ prefix });
  return listed.objects.map((object) => object.key);
}

describe("auth and tenants", () => {
  it("rejects a missing or wrong key with 401 problem+json", async () => {
    const missing = await call("/v1/images");
    await expectProblem(missing, 401, "unauthorized");
    expect(missing.headers.get("www-authenticate")).toContain("Bearer");
    await expectProblem(await call("/v1/images", { key: "eik_wrong" }), 401, "unauthorized");
  });

  it("keeps tenant creation to the admin and image endpoints to tenants", async () => {
    const asTenant = await call("/v1/tenants", {
      method: "POST",
      key: tenant.key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "x" }),
    });
    await expectProblem(asTenant, 403, "forbidden");
    await expectProblem(await call("/v1/images", { key: ADMIN_KEY }), 403, "forbidden");
  });

  it("validates the tenant body", async () => {
    const bad = await call("/v1/tenants", { method: "POST", key: ADMIN_KEY, headers: { "content-type": "application/json" }, body: "{}" });
    await expectProblem(bad, 400, "invalid-parameter");
    const notJson = await call("/v1/tenants", { method: "POST", key: ADMIN_KEY, headers: { "content-type": "application/json" }, body: "{" });
    await expectProblem(notJson, 400, "bad-request");
  });

  it("stores keys only as hashes", async () => {
    const rows = await env.DB.prepare("select key_hash, prefix from api_keys where tenant_id = ?").bind(tenant.tenantId).all<{ key_hash: string; prefix: string }>();
    expect(rows.results.length).toBeGreaterThan(0);
    for (const row of rows.results) {
      expect(row.key_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(row.key_hash).not.toContain(tenant.key);
      expect(tenant.key.startsWith(row.prefix) || row.prefix.startsWith("eik_")).toBe(true);
    }
  });

  it("creates, lists and revokes keys; a revoked key stops working at once", async () => {
    const created = await call("/v1/keys", {
      method: "POST",
      key: tenant.key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "ci" }),
    });
    expect(created.status).toBe(201);
    const key = await created.json<{ id: string; key: string; name: string }>();
    expect(key.key).toMatch(/^eik_/);
    expect((await call("/v1/images", { key: key.key })).status).toBe(200);

    const listed = await (await call("/v1/keys", { key: tenant.key })).json<{ keys: Array<Record<string, unknown>> }>();
    expect(listed.keys.map((k) => k["id"])).toContain(key.id);
    expect(JSON.stringify(listed)).not.toContain(key.key);

    // Another tenant cannot see or revoke it.
    await expectProblem(await call(`/v1/keys/${key.id}`, { method: "DELETE", key: other.key }), 404, "not-found");
    expect((await call(`/v1/keys/${key.id}`, { method: "DELETE", key: tenant.key })).status).toBe(204);
    await expectProblem(await call("/v1/images", { key: key.key }), 401, "unauthorized");
    expect((await call(`/v1/keys/${key.id}`, { method: "DELETE", key: tenant.key })).status).toBe(204);
  });

  it("lets the admin create a key for a named tenant", async () => {
    const created = await call("/v1/keys", {
      method: "POST",
      key: ADMIN_KEY,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tenantId: other.tenantId }),
    });
    expect(created.status).toBe(201);
    const missing = await call("/v1/keys", {
      method: "POST",
      key: ADMIN_KEY,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tenantId: "nosuchtn" }),
    });
    await expectProblem(missing, 404);
  });
});

describe("upload and serve", () => {
  it("uploads one file, then serves the original byte-identical with cache headers", async () => {
    const { response, body } = await upload(tenant.key, [{ name: "file", bytes: aero, filename: "aero.jpg" }]);
    expect(response.status).toBe(201);
    expect(body.errors).toEqual([]);
    const image = body.images[0]!;
    expect(image).toMatchObject({ width: 640, height: 480, format: "jpeg", bytes: aero.byteLength, filename: "aero.jpg", duplicate: false });
    expect(image.id.startsWith(tenant.tenantId)).toBe(true);
    expect(image.url).toBe(`http://img.test/i/${image.id}`);
    expect(image.sha256).toBe(await sha256(aero));
    // A ThumbHash placeholder of the right aspect ratio, for the web app to show while loading.
    const placeholder = await placeholderOf(image.id);
    const preview = thumbHashToRGBA(Uint8Array.from(atob(placeholder), (char) => char.charCodeAt(0)));
    expect(Math.abs(preview.w / preview.h - 640 / 480)).toBeLessThan(0.1);

    const served = await call(`/i/${image.id}`);
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe("image/jpeg");
    expect(served.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(served.headers.get("x-content-type-options")).toBe("nosniff");
    const etag = served.headers.get("etag");
    expect(etag).toMatch(/^"[0-9a-z]+"$/);
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(aero);

    const revalidated = await call(`/i/${image.id}`, { headers: { "if-none-match": etag! } });
    expect(revalidated.status).toBe(304);
    expect(revalidated.headers.get("etag")).toBe(etag);
    expect(await revalidated.text()).toBe("");

    const head = await call(`/i/${image.id}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(aero.byteLength));
    expect(await head.text()).toBe("");
  });

  it("recognises the format by its bytes, not its name or content type", async () => {
    const data = new FormData();
    data.append("file", new File([fruits], "fruits.png", { type: "image/png" }));
    const response = await call("/v1/images", { method: "POST", key: tenant.key, body: data });
    expect(response.status).toBe(201);
    const body = await response.json<UploadBody>();
    expect(body.images[0]).toMatchObject({ format: "jpeg", width: 512, height: 480 });
    const served = await call(`/i/${body.images[0]!.id}`);
    expect(served.headers.get("content-type")).toBe("image/jpeg");
  });

  it("returns the existing image for the same bytes instead of a second copy", async () => {
    const first = await upload(tenant.key, [{ name: "file", bytes: logo, filename: "logo.png" }]);
    const second = await upload(tenant.key, [{ name: "file", bytes: logo, filename: "again.png" }]);
    expect(second.response.status).toBe(201);
    expect(second.body.images[0]!.id).toBe(first.body.images[0]!.id);
    expect(second.body.images[0]!.duplicate).toBe(true);
    expect(second.body.images[0]!.filename).toBe("logo.png");
    expect(await r2Keys(`${tenant.tenantId}/${first.body.images[0]!.id}/`)).toHaveLength(1);
    const count = await env.DB.prepare("select count(*) as n from images where tenant_id = ? and sha256 = ?")
      .bind(tenant.tenantId, first.body.images[0]!.sha256)
      .first<{ n: number }>();
    expect(count?.n).toBe(1);
    // Another tenant uploading the same bytes gets its own copy.
    const theirs = await upload(other.key, [{ name: "file", bytes: logo, filename: "logo.png" }]);
    expect(theirs.body.images[0]!.duplicate).toBe(false);
    expect(theirs.body.images[0]!.id).not.toBe(first.body.images[0]!.id);
  });

  it("streams a large file (several R2 multipart parts) and serves it back identical", async () => {
    // A valid JPEG followed by 12 MiB of trailer bytes, as motion photos carry.
    const big = new Uint8Array(aero.byteLength + 12 * 1024 * 1024);
    big.set(aero);
    for (let i = aero.byteLength; i < big.length; i += 4096) big[i] = i & 0xff;
    const { response, body } = await upload(tenant.key, [{ name: "file", bytes: big, filename: "big.jpg" }]);
    expect(response.status).toBe(201);
    expect(body.images[0]!.bytes).toBe(big.byteLength);
    expect(body.images[0]!.sha256).toBe(await sha256(big));
    const served = new Uint8Array(await (await call(`/i/${body.images[0]!.id}`)).arrayBuffer());
    expect(served.byteLength).toBe(big.byteLength);
    expect(await sha256(served)).toBe(await sha256(big));
  });

  it("uploads raw bytes with PUT, metadata in a header and the name in the query", async () => {
    const response = await call("/v1/images?filename=raw.jpg", {
      method: "PUT",
      key: tenant.key,
      headers: { "content-type": "image/jpeg", "x-metadata": JSON.stringify({ source: "cli" }) },
      body: await loadCorpus("orientation-landscape-6.jpg"),
    });
    expect(response.status).toBe(201);
    const body = await response.json<UploadBody>();
    // Stored sideways with EXIF orientation 6: reported as displayed.
    expect(body.images[0]).toMatchObject({ filename: "raw.jpg", metadata: { source: "cli" }, width: 1800, height: 1200, format: "jpeg" });

    const notImage = await call("/v1/images", { method: "PUT", key: tenant.key, body: "hello world, not an image" });
    await expectProblem(notImage, 415, "unsupported-format");
    const badMetadata = await call("/v1/images", { method: "PUT", key: tenant.key, headers: { "x-metadata": "[1]" }, body: aero });
    await expectProblem(badMetadata, 400, "invalid-metadata");
  });

  it("answers 404 for unknown ids and another tenant's images, on every route", async () => {
    const { body } = await upload(tenant.key, [{ name: "file", bytes: await loadCorpus("pngsuite-s01n3p01.png"), filename: "dot.png" }]);
    const id = body.images[0]!.id;
    await expectProblem(await call(`/v1/images/${id}`, { key: other.key }), 404, "not-found");
    const patch = await call(`/v1/images/${id}`, {
      method: "PATCH",
      key: other.key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ metadata: { a: "b" } }),
    });
    await expectProblem(patch, 404, "not-found");
    expect((await call(`/v1/images/${id}`, { method: "DELETE", key: other.key })).status).toBe(204);
    expect((await call(`/v1/images/${id}`, { key: tenant.key })).status).toBe(200);
    expect((await call(`/i/${id}`)).status).toBe(200);
    await expectProblem(await call(`/i/${"0".repeat(24)}`), 404, "not-found");
    await expectProblem(await call(`/i/not-an-id`), 404, "not-found");
  });
});

describe("bulk upload", () => {
  it("stores the good files and reports each bad one, leaving nothing behind for them", async () => {
    const hostile = ["hostile-svg-script.svg", "hostile-png-bomb-50000x50000.png", "hostile-empty.jpg", "hostile-text-renamed.jpg"];
    const entries = [
      { name: "file", bytes: await loadCorpus("pngsuite-basn3p08.png"), filename: "good-1.png" },
      ...(await Promise.all(hostile.map(async (name) => ({ name: "file", bytes: await loadCorpus(name), filename: name })))),
      { name: "file", bytes: await loadCorpus("pngsuite-basn2c16.png"), filename: "good-2.png" },
    ];
    const before = await countImages(tenant.tenantId);
    const { response, body } = await upload(tenant.key, entries);
    expect(response.status).toBe(207);
    expect(body.images.map((image) => image.filename)).toEqual(["good-1.png", "good-2.png"]);
    expect(body.errors.map((error) => [error.index, error.filename])).toEqual(hostile.map((name, i) => [i + 1, name]));
    for (const error of body.errors) {
      expect(error.status).toBeGreaterThanOrEqual(400);
      expect(error.status).toBeLessThan(500);
      expect(error.type).toMatch(/^https:\/\/edge-images\.dev\/problems\//);
    }
    expect(await countImages(tenant.tenantId)).toBe(before + 2);
    expect(await countObjects(tenant.tenantId)).toBe(await countImages(tenant.tenantId));
  });

  it("answers 4xx problem+json when no file was stored", async () => {
    const response = await call("/v1/images", {
      method: "POST",
      key: tenant.key,
      body: (() => {
        const data = new FormData();
        data.append("file", new File([new TextEncoder().encode("<svg/>")], "a.svg"));
        data.append("file", new File([new TextEncoder().encode("<html>")], "b.jpg"));
        return data;
      })(),
    });
    const problem = await expectProblem(response, 415, "unsupported-format");
    expect(problem["errors"]).toHaveLength(2);

    const noFiles = await call("/v1/images", { method: "POST", key: tenant.key, body: new FormData() });
    expect(noFiles.status).toBeGreaterThanOrEqual(400);
    expect(noFiles.status).toBeLessThan(500);
    const notMultipart = await call("/v1/images", { method: "POST", key: tenant.key, headers: { "content-type": "image/jpeg" }, body: aero });
    await expectProblem(notMultipart, 415, "unsupported-media-type");
  });

  it("applies shared metadata to every file and per-file metadata to the next file", async () => {
    const { response, body } = await upload(tenant.key, [
      { name: "file", bytes: await loadCorpus("pngsuite-basn0g01.png"), filename: "m0.png" },
      { name: "metadata", value: JSON.stringify({ album: "trip", camera: "x" }) },
      { name: "file_metadata", value: JSON.stringify({ camera: "y", people: "ann" }) },
      { name: "file", bytes: await loadCorpus("pngsuite-basn0g16.png"), filename: "m1.png" },
      { name: "file", bytes: await loadCorpus("pngsuite-basi0g01.png"), filename: "m2.png" },
    ]);
    expect(response.status).toBe(201);
    expect(body.images.map((image) => image.metadata)).toEqual([
      { album: "trip", camera: "x" },
      { album: "trip", camera: "y", people: "ann" },
      { album: "trip", camera: "x" },
    ]);
    const bad = await upload(tenant.key, [{ name: "metadata", value: JSON.stringify({ "bad key!": "x" }) }]);
    expect(bad.response.status).toBe(400);
  });
});

describe("listing and management", () => {
  it("pages newest first with a cursor and filters by metadata, filename prefix and time", async () => {
    const fresh = await createTenant("lister");
    const names = ["basn0g01", "basn0g02", "basn0g04", "basn0g08", "basn2c08"];
    for (const [i, name] of names.entries()) {
      const metadata = JSON.stringify({ n: String(i), kind: i % 2 === 0 ? "even" : "odd" });
      await call(`/v1/images?filename=${name}.png&metadata=${encodeURIComponent(metadata)}`, {
        method: "PUT",
        key: fresh.key,
        body: await loadCorpus(`pngsuite-${name}.png`),
      });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { images: Array<{ filename: string }>; nextCursor: string | null } = await (
        await call(`/v1/images?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { key: fresh.key })
      ).json();
      expect(page.images.length).toBeLessThanOrEqual(2);
      seen.push(...page.images.map((image) => image.filename));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(names.map((name) => `${name}.png`).reverse());

    const even = await (await call("/v1/images?metadata.kind=even", { key: fresh.key })).json<{ images: unknown[] }>();
    expect(even.images).toHaveLength(3);
    const both = await (await call("/v1/images?metadata.kind=even&metadata.n=2", { key: fresh.key })).json<{ images: Array<{ filename: string }> }>();
    expect(both.images.map((image) => image.filename)).toEqual(["basn0g04.png"]);
    const prefix = await (await call("/v1/images?filename_prefix=basn0g0", { key: fresh.key })).json<{ images: unknown[] }>();
    expect(prefix.images).toHaveLength(4);
    const future = await (await call(`/v1/images?created_after=${Date.now() + 60_000}`, { key: fresh.key })).json<{ images: unknown[] }>();
    expect(future.images).toHaveLength(0);

    // sha256: "does the tenant have these bytes?" (the CLI's resume check); exact match, hex in any case.
    const bytes = await loadCorpus("pngsuite-basn0g04.png");
    const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const byHash = await (await call(`/v1/images?sha256=${digest.toUpperCase()}`, { key: fresh.key })).json<{ images: Array<{ filename: string; sha256: string }> }>();
    expect(byHash.images.map((image) => [image.filename, image.sha256])).toEqual([["basn0g04.png", digest]]);
    const elsewhere = await (await call(`/v1/images?sha256=${digest}`, { key: tenant.key })).json<{ images: unknown[] }>();
    expect(elsewhere.images).toHaveLength(0);
    await expectProblem(await call("/v1/images?sha256=abc", { key: fresh.key }), 400, "invalid-parameter");

    await expectProblem(await call("/v1/images?limit=0", { key: fresh.key }), 400, "invalid-parameter");
    await expectProblem(await call("/v1/images?cursor=@@@", { key: fresh.key }), 400, "invalid-parameter");
    await expectProblem(await call("/v1/images?sort=asc", { key: fresh.key }), 400, "unknown-parameter");
  });

  it("patches metadata as a JSON merge patch", async () => {
    const { body } = await upload(tenant.key, [
      { name: "metadata", value: JSON.stringify({ keep: "1", drop: "2" }) },
      { name: "file", bytes: await loadCorpus("pngsuite-basn3p01.png"), filename: "patch.png" },
    ]);
    const id = body.images[0]!.id;
    const patched = await call(`/v1/images/${id}`, {
      method: "PATCH",
      key: tenant.key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ metadata: { drop: null, added: "3" } }),
    });
    expect(patched.status).toBe(200);
    expect((await patched.json<{ metadata: unknown }>()).metadata).toEqual({ keep: "1", added: "3" });
    const got = await (await call(`/v1/images/${id}`, { key: tenant.key })).json<{ metadata: unknown }>();
    expect(got.metadata).toEqual({ keep: "1", added: "3" });
    const invalid = await call(`/v1/images/${id}`, {
      method: "PATCH",
      key: tenant.key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ metadata: { ok: 5 } }),
    });
    await expectProblem(invalid, 400);
  });

  it("refuses the metadata key __proto__ wherever metadata enters, never dropping it silently", async () => {
    const tenant = await createTenant("proto"); // its own images: no duplicate of another test's upload
    const { body } = await upload(tenant.key, [
      { name: "metadata", value: JSON.stringify({ keep: "1" }) },
      { name: "file", bytes: await loadFixture("gen-1x1.png"), filename: "proto.png" },
    ]);
    const id = body.images[0]!.id;
    // Raw JSON text: a "__proto__" key in a JS object literal would set the prototype instead.
    const namesIt = async (response: Response, type: string): Promise<void> => {
      const problem = await expectProblem(response, 400, type);
      expect(`${String(problem["detail"])} ${String(problem["parameter"])}`).toContain("__proto__");
    };
    const patch = (json: string) => call(`/v1/images/${id}`, { method: "PATCH", key: tenant.key, headers: { "content-type": "application/json" }, body: json });
    await namesIt(await patch('{"metadata":{"__proto__":{"polluted":"yes"}}}'), "invalid-metadata");
    await namesIt(await patch('{"metadata":{"__proto__":"x","a":"b"}}'), "invalid-metadata");
    await namesIt(await patch('{"metadata":{"a":"b","__proto__":null}}'), "invalid-metadata");
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    // Nothing was half-applied.
    expect((await (await call(`/v1/images/${id}`, { key: tenant.key })).json<{ metadata: unknown }>()).metadata).toEqual({ keep: "1" });

    const before = await r2Keys(`${tenant.tenantId}/`);
    const photo = await loadFixture("gen-icc.png");
    for (const field of ["metadata", "file_metadata"]) {
      const response = await call("/v1/images", {
        method: "POST",
        key: tenant.key,
        body: form([
          { name: field, value: '{"__proto__":"x","a":"b"}' },
          { name: "file", bytes: photo, filename: "proto2.png" },
        ]),
      });
      await namesIt(response, "invalid-metadata");
    }
    const header = await call("/v1/images", { method: "PUT", key: tenant.key, headers: { "x-metadata": '{"__proto__":{"polluted":"yes"}}' }, body: photo });
    await namesIt(header, "invalid-metadata");
    const query = await call(`/v1/images?metadata=${encodeURIComponent('{"a":"b","__proto__":"x"}')}`, { method: "PUT", key: tenant.key, body: photo });
    await namesIt(query, "invalid-metadata");
    expect(await r2Keys(`${tenant.tenantId}/`)).toEqual(before);

    // Other ways in: the list filter, and variant names (upload field and job body).
    await expectProblem(await call("/v1/images?metadata.__proto__=x", { key: tenant.key }), 400, "invalid-parameter");
    const variantField = await call("/v1/images", {
      method: "POST",
      key: tenant.key,
      body: form([
        { name: "variants", value: '{"__proto__":"w=10"}' },
        { name: "file", bytes: photo, filename: "proto3.png" },
      ]),
    });
    await namesIt(variantField, "invalid-parameter");
    const job = await call("/v1/jobs", {
      method: "POST",
      key: tenant.key,
      headers: { "content-type": "application/json" },
      body: `{"imageIds":["${id}"],"variants":{"__proto__":"w=10","ok":"w=20"}}`,
    });
    await namesIt(job, "invalid-parameter");
    expect(await r2Keys(`${tenant.tenantId}/`)).toEqual(before);
  });

  it("deletes the row, the objects and the cached original; deleting again is fine", async () => {
    const { body } = await upload(tenant.key, [{ name: "file", bytes: await loadCorpus("pngsuite-basn3p02.png"), filename: "gone.png" }]);
    const id = body.images[0]!.id;
    expect((await call(`/i/${id}`)).status).toBe(200); // now in the edge cache
    expect((await call(`/v1/images/${id}`, { method: "DELETE", key: tenant.key })).status).toBe(204);
    await expectProblem(await call(`/i/${id}`), 404, "not-found");
    await expectProblem(await call(`/v1/images/${id}`, { key: tenant.key }), 404, "not-found");
    expect(await r2Keys(`${tenant.tenantId}/${id}/`)).toEqual([]);
    expect((await call(`/v1/images/${id}`, { method: "DELETE", key: tenant.key })).status).toBe(204);
  });
});

describe("routing", () => {
  it("answers unknown routes with 404 and wrong methods with 405, as problem+json", async () => {
    await expectProblem(await call("/nope"), 404, "not-found");
    const wrong = await call("/v1/tenants", { method: "GET", key: ADMIN_KEY });
    await expectProblem(wrong, 405, "method-not-allowed");
    expect(wrong.headers.get("allow")).toBe("POST");
    await expectProblem(await call(`/i/${"a".repeat(24)}`, { method: "POST" }), 405, "method-not-allowed");
  });
});

/** Placeholders are made after the upload answers: wait for it. */
async function placeholderOf(id: string): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const image = await (await call(`/v1/images/${id}`, { key: tenant.key })).json<{ placeholder: string | null }>();
    if (image.placeholder) return image.placeholder;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no placeholder for ${id}`);
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function countImages(tenantId: string): Promise<number> {
  const row = await env.DB.prepare("select count(*) as n from images where tenant_id = ?").bind(tenantId).first<{ n: number }>();
  return row?.n ?? 0;
}

async function countObjects(tenantId: string): Promise<number> {
  return (await r2Keys(`${tenantId}/`)).length;
}
