// Abuse limits (rates, the daily rendition cap, request size limits) and served-content
// safety (nosniff, CORS, raster-only content types).
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { Limiter } from "../../src/abuse/rate-limit";
import { app } from "../../src/app";
import { loadCorpus, loadFixture, loadImage } from "./fixtures";
import { ADMIN_KEY, call, createTenant, expectProblem, form, ORIGIN, upload, type UploadBody } from "./helpers";

/** A fixed-window limiter that allows `allowed` calls per key, counting every call. */
function countingLimiter(allowed: number): Limiter & { calls: number } {
  const counts = new Map<string, number>();
  return {
    calls: 0,
    async limit({ key }) {
      this.calls++;
      const count = (counts.get(key) ?? 0) + 1;
      counts.set(key, count);
      return { success: count <= allowed };
    },
  };
}

/** The app with some bindings or vars replaced (a small limiter, a small cap). */
async function callWith(overrides: Partial<Env> | Record<string, unknown>, path: string, init: RequestInit & { key?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.key) headers.set("authorization", `Bearer ${init.key}`);
  const ctx = createExecutionContext();
  const response = await app.fetch(new Request(ORIGIN + path, { ...init, headers }), { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

async function uploadOne(key: string, fixture = "photo-small-aero1.jpg"): Promise<string> {
  const { response, body } = await upload(key, [{ name: "file", bytes: await loadCorpus(fixture), filename: fixture }]);
  expect(response.status).toBe(201);
  const id = body.images[0]?.id;
  if (!id) throw new Error("no image id");
  return id;
}

describe("rate limits", () => {
  it("counts transforms only when a render runs, then answers 429 with Retry-After", async () => {
    const { key } = await createTenant("render-rate");
    const id = await uploadOne(key);
    const limiter = countingLimiter(2);
    const overrides = { RENDER_LIMITER: limiter };

    expect((await callWith(overrides, `/i/${id}?w=64`)).status).toBe(200);
    expect(limiter.calls).toBe(1);
    // Same URL again: a Cache API hit, not counted. An equivalent URL is the same rendition.
    expect((await callWith(overrides, `/i/${id}?w=64`)).status).toBe(200);
    expect((await callWith(overrides, `/i/${id}?dpr=2&w=32`)).status).toBe(200);
    // The original is never counted.
    expect((await callWith(overrides, `/i/${id}`)).status).toBe(200);
    expect(limiter.calls).toBe(1);
    // An R2 hit (cache entry gone, rendition stored) is free too.
    await caches.default.delete(`${ORIGIN}/i/${id}?w=64`);
    expect((await callWith(overrides, `/i/${id}?w=64`)).status).toBe(200);
    expect(limiter.calls).toBe(1);

    expect((await callWith(overrides, `/i/${id}?w=65`)).status).toBe(200);
    const limited = await callWith(overrides, `/i/${id}?w=66`);
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const problem = await expectProblem(limited, 429, "rate-limited");
    expect(problem["limit"]).toBe("render");
    // Cached renditions keep being served while the tenant is limited.
    expect((await callWith(overrides, `/i/${id}?w=64`)).status).toBe(200);
  });

  it("limits upload requests per tenant (POST and PUT), storing nothing over the limit", async () => {
    const { key } = await createTenant("upload-rate");
    const other = await createTenant("upload-rate-other");
    const limiter = countingLimiter(1);
    const overrides = { UPLOAD_REQUEST_LIMITER: limiter };
    const bytes = await loadCorpus("photo-small-aero1.jpg");

    const first = await callWith(overrides, "/v1/images", { method: "POST", key, body: form([{ name: "file", bytes, filename: "a.jpg" }]) });
    expect(first.status).toBe(201);
    const second = await callWith(overrides, "/v1/images", {
      method: "POST",
      key,
      body: form([{ name: "file", bytes: await loadCorpus("photo-small-fruits.jpg"), filename: "b.jpg" }]),
    });
    expect(Number(second.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    await expectProblem(second, 429, "rate-limited");
    const put = await callWith(overrides, "/v1/images", { method: "PUT", key, body: await loadCorpus("photo-small-fruits.jpg") });
    await expectProblem(put, 429, "rate-limited");
    // Another tenant has its own window.
    expect((await callWith(overrides, "/v1/images", { method: "PUT", key: other.key, body: bytes })).status).toBe(201);

    const list = await (await call("/v1/images", { key })).json<{ images: unknown[] }>();
    expect(list.images).toHaveLength(1);
  });

  it("limits uploaded files one by one: a bulk upload over the limit gets a per-file 429", async () => {
    const { key } = await createTenant("file-rate");
    const overrides = { UPLOAD_FILE_LIMITER: countingLimiter(2) };
    const names = ["photo-small-aero1.jpg", "photo-small-fruits.jpg", "gen-1x1.png"];
    const entries = await Promise.all(names.map(async (name) => ({ name: "file", bytes: await loadImage(name), filename: name })));
    const response = await callWith(overrides, "/v1/images", { method: "POST", key, body: form(entries) });
    expect(response.status).toBe(207);
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const body = await response.json<UploadBody>();
    expect(body.images).toHaveLength(2);
    expect(body.errors).toEqual([expect.objectContaining({ index: 2, status: 429, type: "https://edge-images.dev/problems/rate-limited" })]);
    const list = await (await call("/v1/images", { key })).json<{ images: unknown[] }>();
    expect(list.images).toHaveLength(2);
  });

  // The limits above use counting limiters; test/node/e2e-rate-limits.test.ts reaches the real
  // bindings' limits in a wrangler dev with low ones (test/wrangler.rate-limits.toml).
  it("uses the Workers Rate Limiting bindings configured in wrangler.toml", async () => {
    for (const binding of [env.UPLOAD_REQUEST_LIMITER, env.UPLOAD_FILE_LIMITER, env.RENDER_LIMITER]) {
      expect(await binding.limit({ key: `probe:${crypto.randomUUID()}` })).toEqual({ success: true });
    }
  });
});

describe("distinct renditions per image per day", () => {
  let key: string;
  let id: string;
  beforeAll(async () => {
    ({ key } = await createTenant("rendition-cap"));
    id = await uploadOne(key);
  });
  const overrides = { MAX_RENDITIONS_PER_IMAGE_PER_DAY: "3" };

  it("refuses a new unsigned rendition over the cap with 429, keeps serving the counted ones", async () => {
    for (const w of [40, 41, 42]) expect((await callWith(overrides, `/i/${id}?w=${w}`)).status).toBe(200);
    const capped = await callWith(overrides, `/i/${id}?w=43`);
    expect(Number(capped.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(Number(capped.headers.get("retry-after"))).toBeLessThanOrEqual(86_400);
    const problem = await expectProblem(capped, 429, "rendition-limit");
    expect(problem["cap"]).toBe(3);
    expect(String(problem["detail"])).toContain("3 distinct renditions");
    // A counted rendition stays allowed even when it must be rendered again.
    await env.IMAGES.delete((await env.IMAGES.list({ prefix: `${id.slice(0, 8)}/${id}/t/` })).objects.map((o) => o.key));
    await caches.default.delete(`${ORIGIN}/i/${id}?w=41`);
    expect((await callWith(overrides, `/i/${id}?w=41`)).status).toBe(200);
  });

  it("exempts signed URLs and bare presets", async () => {
    const signed = await call("/v1/sign", {
      method: "POST",
      key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ imageId: id, params: "w=44" }),
    });
    const { path } = await signed.json<{ path: string }>();
    expect((await callWith(overrides, path)).status).toBe(200);
    expect((await callWith(overrides, `/i/${id}?p=small`)).status).toBe(200);
    // A preset with extra parameters is an arbitrary rendition again.
    await expectProblem(await callWith(overrides, `/i/${id}?p=small&q=50`), 429, "rendition-limit");
  });

  it("exempts named variants, even when they must be rendered again", async () => {
    const response = await call("/v1/images?variants=" + encodeURIComponent(JSON.stringify({ card: "w=47&fmt=png" })), {
      method: "PUT",
      key,
      body: await loadFixture("gen-1x1.png"),
    });
    expect(response.status).toBe(201);
    const image = (await response.json<{ images: Array<{ id: string }> }>()).images[0]!;
    for (const w of [40, 41, 42]) expect((await callWith(overrides, `/i/${image.id}?w=${w}`)).status).toBe(200);
    await expectProblem(await callWith(overrides, `/i/${image.id}?w=43`), 429, "rendition-limit");
    // Drop the stored variant rendition: serving it by name renders again, and is not capped.
    await env.IMAGES.delete((await env.IMAGES.list({ prefix: `${image.id.slice(0, 8)}/${image.id}/t/` })).objects.map((o) => o.key));
    const variant = await callWith(overrides, `/i/${image.id}/card`);
    expect(variant.status).toBe(200);
    expect(variant.headers.get("content-type")).toBe("image/png");
    // It was rendered (and stored again), not served from a cache.
    expect((await env.IMAGES.list({ prefix: `${image.id.slice(0, 8)}/${image.id}/t/` })).objects).toHaveLength(1);
  });

  it("counts per image: another image of the tenant is not affected", async () => {
    const other = await uploadOne(key, "photo-small-fruits.jpg");
    expect((await callWith(overrides, `/i/${other}?w=43`)).status).toBe(200);
  });
});

describe("request size limits", () => {
  it("answers a URL over 4096 characters with 414 problem+json", async () => {
    const response = await call(`/v1/images?filename_prefix=${"a".repeat(4200)}`, { key: ADMIN_KEY });
    await expectProblem(response, 414, "uri-too-long");
    await expectProblem(await call(`/i/abc?${"w=1&".repeat(1100)}`), 414, "uri-too-long");
  });

  it("answers request headers over 16 KiB with 431 problem+json", async () => {
    const headers = { "x-padding-1": "x".repeat(9000), "x-padding-2": "y".repeat(9000) };
    await expectProblem(await call("/v1/images", { key: ADMIN_KEY, headers }), 431, "headers-too-large");
    const { key } = await createTenant("big-headers");
    const response = await call("/v1/images", { method: "PUT", key, headers, body: await loadCorpus("photo-small-aero1.jpg") });
    await expectProblem(response, 431, "headers-too-large");
  });

  it("keeps the existing body limits as problem+json (JSON 64 KiB, metadata field, PUT declared length)", async () => {
    const { key } = await createTenant("body-limits");
    const json = await call("/v1/tenant", {
      method: "PATCH",
      key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ requireSignedUrls: false, pad: "x".repeat(70 * 1024) }),
    });
    await expectProblem(json, 413, "payload-too-large");
    const metadata = await upload(key, [
      { name: "metadata", value: JSON.stringify({ k: "v".repeat(9000) }) },
      { name: "file", bytes: await loadCorpus("photo-small-aero1.jpg"), filename: "a.jpg" },
    ]);
    expect(metadata.response.status).toBe(413);
    expect(metadata.response.headers.get("content-type")).toBe("application/problem+json");
  });
});

describe("served content", () => {
  it("sends X-Content-Type-Options: nosniff on every response: JSON, problems, images, preflights", async () => {
    const { key } = await createTenant("nosniff");
    const id = await uploadOne(key);
    const responses = [
      await call("/v1/images", { key }),
      await call(`/v1/images/${id}`, { key }),
      await call("/v1/images"),
      await call("/nope"),
      await call(`/i/${id}`),
      await call(`/i/${id}?w=50`),
      await call(`/i/${id}?w=bad`),
      await call("/v1/images", { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "GET" } }),
    ];
    for (const response of responses) {
      expect(response.headers.get("x-content-type-options"), `${response.status} ${response.url}`).toBe("nosniff");
      await response.body?.cancel();
    }
  });

  it("serves only raster image types; SVG, HTML and polyglots are refused at upload", async () => {
    const { key } = await createTenant("raster-only");
    const svg = await loadCorpus("hostile-svg-script.svg");
    const html = await loadCorpus("hostile-html-disguised.png");
    const htmlWithPngName = new TextEncoder().encode("<!doctype html><script>alert(1)</script>");
    const svgAfterJpegMagic = new Uint8Array([0xff, 0xd8, 0xff, ...new TextEncoder().encode("<svg onload=alert(1)>")]);
    for (const bytes of [svg, html, htmlWithPngName, svgAfterJpegMagic]) {
      const response = await call("/v1/images", { method: "PUT", key, headers: { "content-type": "image/png" }, body: bytes });
      expect([415, 422]).toContain(response.status);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
    }
    const raster = /^image\/(jpeg|png|gif|webp|avif)$/;
    for (const fixture of ["photo-small-aero1.jpg", "gen-1x1.png", "gen-1x1.gif", "gen-1x1.webp", "gen-1x1.avif", "mismatch-jpeg-named.png"]) {
      const response = await call("/v1/images", { method: "PUT", key, headers: { "content-type": "image/svg+xml" }, body: await loadImage(fixture) });
      expect(response.status).toBe(201);
      const { id } = await response.json<{ id?: string; images?: Array<{ id: string }> }>().then((b) => ({ id: b.id ?? b.images?.[0]?.id }));
      for (const path of [`/i/${id}`, `/i/${id}?w=10`, `/i/${id}?w=10&fmt=png`, `/i/${id}?w=10&fmt=auto`]) {
        const served = await call(path, { headers: { accept: "text/html,image/svg+xml,*/*" } });
        expect(served.status).toBe(200);
        expect(served.headers.get("content-type")).toMatch(raster);
        expect(served.headers.get("content-security-policy")).toBe("default-src 'none'; sandbox");
        await served.body?.cancel();
      }
    }
  });
});

describe("user text is only ever served inside JSON", () => {
  it("returns script-like file names, metadata and parameters as JSON or problem+json with nosniff, never as HTML", async () => {
    const { key } = await createTenant("xss");
    const payload = "<img src=x onerror=alert(1)><script>alert(1)</script>";
    const response = await call(`/v1/images?filename=${encodeURIComponent(payload + ".jpg")}`, {
      method: "PUT",
      key,
      headers: { "x-metadata": JSON.stringify({ caption: payload }) },
      body: await loadCorpus("photo-small-aero1.jpg"),
    });
    expect(response.status).toBe(201);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const id = (await response.json<{ images: Array<{ id: string }> }>()).images[0]!.id;
    const answers = [
      await call(`/v1/images/${id}`, { key }),
      await call(`/v1/images?metadata.caption=${encodeURIComponent(payload)}`, { key }),
      await call(`/i/${id}?${encodeURIComponent(payload)}=1`),
      await call(`/i/${id}?w=${encodeURIComponent(payload)}`),
      await call(`/v1/${encodeURIComponent(payload)}`, { key }),
    ];
    for (const answer of answers) {
      expect(answer.headers.get("content-type")).toMatch(/^application\/(problem\+)?json/);
      expect(answer.headers.get("x-content-type-options")).toBe("nosniff");
      await answer.body?.cancel();
    }
  });
});

describe("CORS", () => {
  const origin = "https://app.example";

  it("answers API preflights with * and allows Authorization", async () => {
    const response = await call("/v1/images", {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(response.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    expect(response.headers.get("access-control-allow-methods")).toContain("DELETE");
    expect(response.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("adds * to API answers, errors included, and to image answers", async () => {
    const { key } = await createTenant("cors");
    const id = await uploadOne(key);
    const ok = await call("/v1/images", { key, headers: { origin } });
    expect(ok.headers.get("access-control-allow-origin")).toBe("*");
    expect(ok.headers.get("access-control-expose-headers")).toContain("Retry-After");
    const unauthorized = await call("/v1/images", { headers: { origin } });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("access-control-allow-origin")).toBe("*");
    for (const path of [`/i/${id}`, `/i/${id}?w=20`, "/i/nope"]) {
      const response = await call(path, { headers: { origin } });
      expect(response.headers.get("access-control-allow-origin")).toBe("*");
      await response.body?.cancel();
    }
    const preflight = await call(`/i/${id}`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "GET" } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
  });
});
