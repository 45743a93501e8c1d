import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { probeImage } from "../../src/images/probe";
import { loadCorpus } from "./fixtures";
import { call, createTenant, expectProblem, upload } from "./helpers";

let tenant: { tenantId: string; key: string };
let photo: string; // 640x480 JPEG
let logo: string; // 788x256 PNG with alpha

beforeAll(async () => {
  tenant = await createTenant("transforms");
  const { body } = await upload(tenant.key, [
    { name: "file", bytes: await loadCorpus("photo-small-aero1.jpg"), filename: "aero.jpg" },
    { name: "file", bytes: await loadCorpus("png-alpha-watermark-debian.png"), filename: "logo.png" },
  ]);
  photo = body.images[0]!.id;
  logo = body.images[1]!.id;
});

async function image(path: string, headers: HeadersInit = {}): Promise<{ response: Response; bytes: Uint8Array; width: number; height: number; format: string }> {
  const response = await call(path, { headers });
  expect(response.status, await peekProblem(response)).toBe(200);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const probe = probeImage(bytes);
  return { response, bytes, width: probe.width, height: probe.height, format: probe.format };
}

async function peekProblem(response: Response): Promise<string> {
  return response.status === 200 ? "" : await response.clone().text();
}

describe("transform URLs", () => {
  it("resizes with the aspect ratio kept and caches the result", async () => {
    const first = await image(`/i/${photo}?w=320`);
    expect([first.width, first.height, first.format]).toEqual([320, 240, "jpeg"]);
    expect(first.response.headers.get("content-type")).toBe("image/jpeg");
    expect(first.response.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(first.response.headers.get("vary")).toBeNull();
    const etag = first.response.headers.get("etag")!;
    expect(etag).toMatch(new RegExp(`^"${photo}-[0-9a-f]{32}"$`));

    // Equivalent spellings share one rendition.
    const same = await image(`/i/${photo}?dpr=2&w=160&fit=scale-down`);
    expect(same.response.headers.get("etag")).toBe(etag);
    expect(same.bytes).toEqual(first.bytes);

    const stored = await env.IMAGES.list({ prefix: `${tenant.tenantId}/${photo}/t/` });
    expect(stored.objects.length).toBeGreaterThanOrEqual(1);

    // Only the response that rendered reports the pipeline's timings.
    expect(first.response.headers.get("server-timing")).toMatch(/decode;dur=/);
    expect(same.response.headers.get("server-timing")).toBeNull();

    const revalidated = await call(`/i/${photo}?w=320`, { headers: { "if-none-match": etag } });
    expect(revalidated.status).toBe(304);
  });

  it("gives every fit mode its Cloudflare size", async () => {
    const cases: Array<[string, number, number]> = [
      ["w=200&h=200", 200, 150], // scale-down = contain without enlarging
      ["w=2000&h=2000", 640, 480], // never enlarges
      ["w=2000&h=2000&fit=contain", 2000, 1500],
      ["w=200&h=200&fit=cover", 200, 200],
      ["w=2000&h=100&fit=crop", 640, 100],
      ["w=300&h=300&fit=pad", 300, 300],
      ["w=300&h=100&fit=squeeze", 300, 100],
      ["h=120", 160, 120],
    ];
    for (const [query, width, height] of cases) {
      const out = await image(`/i/${photo}?${query}`);
      expect([query, out.width, out.height]).toEqual([query, width, height]);
    }
  });

  it("negotiates fmt=auto from Accept, with Vary: Accept", async () => {
    const avif = await image(`/i/${photo}?w=64&fmt=auto`, { accept: "image/avif,image/webp,*/*" });
    expect(avif.format).toBe("avif");
    expect(avif.response.headers.get("vary")).toBe("Accept");
    const webp = await image(`/i/${photo}?w=64&fmt=auto`, { accept: "image/webp,*/*" });
    expect(webp.format).toBe("webp");
    const legacy = await image(`/i/${photo}?w=64&fmt=auto`, { accept: "*/*" });
    expect(legacy.format).toBe("jpeg");
    const alpha = await image(`/i/${logo}?w=64&fmt=auto`, { accept: "*/*" });
    expect(alpha.format).toBe("png");
    expect(new Set([avif, webp, legacy].map((out) => out.response.headers.get("etag"))).size).toBe(3);
  });

  it("answers bad parameters with 400 problem+json naming the parameter", async () => {
    const bad = await expectProblem(await call(`/i/${photo}?w=abc`), 400);
    expect(bad["parameter"]).toBe("w");
    const unknown = await expectProblem(await call(`/i/${photo}?width=100`), 400, "unknown-parameter");
    expect(unknown["parameter"]).toBe("width");
    await expectProblem(await call(`/i/${photo}?w=100000`), 400);
    await expectProblem(await call(`/i/${photo}?crop=600,400,100,100`), 400);
    await expectProblem(await call(`/i/${"0".repeat(24)}?w=10`), 404);
  });

  it("uses tenant presets and config presets", async () => {
    const put = await call("/v1/presets/hero", {
      method: "PUT",
      key: tenant.key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ params: "w=300&fmt=webp" }),
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ name: "hero", params: "fmt=webp&w=300", public: false });
    const hero = await image(`/i/${photo}?p=hero`);
    expect([hero.width, hero.format]).toEqual([300, "webp"]);
    const override = await image(`/i/${photo}?p=hero&w=100`);
    expect(override.width).toBe(100);
    const thumb = await image(`/i/${photo}?p=thumb`, { accept: "image/webp" });
    expect([thumb.width, thumb.height, thumb.format]).toEqual([200, 200, "webp"]);
    await expectProblem(await call(`/i/${photo}?p=nosuch`), 400);
    const badPreset = await call("/v1/presets/bad", {
      method: "PUT",
      key: tenant.key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ params: "w=-1" }),
    });
    await expectProblem(badPreset, 400);
  });

  it("requires valid, unexpired signatures when the tenant turns them on", async () => {
    const signer = await createTenant("signed");
    const { body } = await upload(signer.key, [{ name: "file", bytes: await loadCorpus("photo-small-fruits.jpg"), filename: "f.jpg" }]);
    const id = body.images[0]!.id;
    const settings = await call("/v1/tenant", {
      method: "PATCH",
      key: signer.key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ requireSignedUrls: true }),
    });
    expect(((await settings.json()) as { requireSignedUrls: boolean }).requireSignedUrls).toBe(true);

    await expectProblem(await call(`/i/${id}?w=100`), 403, "signature-required");
    expect((await call(`/i/${id}`)).status).toBe(200); // originals stay public
    expect((await call(`/i/${id}?p=thumb`)).status).toBe(200); // a public config preset

    const sign = async (payload: Record<string, unknown>) =>
      (await (
        await call("/v1/sign", { method: "POST", key: signer.key, headers: { "content-type": "application/json" }, body: JSON.stringify(payload) })
      ).json()) as { path: string; sig: string; exp: number | null };
    const signed = await sign({ imageId: id, params: "w=100&h=50&fit=cover" });
    const ok = await image(signed.path);
    expect([ok.width, ok.height]).toEqual([100, 50]);
    // Same parameters in another order: same signature holds.
    expect((await call(`/i/${id}?w=100&fit=cover&h=50&sig=${signed.sig}`)).status).toBe(200);
    await expectProblem(await call(signed.path.replace("w=100", "w=101")), 403, "signature-invalid");
    await expectProblem(await call(`/i/${id}?w=100&sig=AAAA`), 403, "signature-invalid");

    const expiring = await sign({ imageId: id, params: "w=90", expiresIn: 3600 });
    expect((await call(expiring.path)).status).toBe(200);
    const expired = await sign({ imageId: id, params: "w=90", expiresAt: 1_000_000 });
    await expectProblem(await call(expired.path), 403, "signature-expired");
    // Someone else's image cannot be signed.
    const foreign = await call("/v1/sign", {
      method: "POST",
      key: signer.key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ imageId: photo, params: "w=10" }),
    });
    await expectProblem(foreign, 404);
  });

  it("watermarks with another image of the same tenant only", async () => {
    const marked = await image(`/i/${photo}?w=400&wm=${logo}&wm_pos=bottom-right&wm_scale=0.5&fmt=png`);
    expect([marked.width, marked.height, marked.format]).toEqual([400, 300, "png"]);
    const other = await createTenant("other");
    const { body } = await upload(other.key, [{ name: "file", bytes: await loadCorpus("pngsuite-basn6a08.png"), filename: "o.png" }]);
    await expectProblem(await call(`/i/${photo}?w=100&wm=${body.images[0]!.id}`), 400);
  });

  it("reports usage: images, bytes stored and transforms served and rendered", async () => {
    const fresh = await createTenant("usage");
    const { body } = await upload(fresh.key, [{ name: "file", bytes: await loadCorpus("pngsuite-basn2c08.png"), filename: "u.png" }]);
    const id = body.images[0]!.id;
    await image(`/i/${id}?w=10`);
    await image(`/i/${id}?w=10`); // served from the cache: counted as served, not rendered
    await image(`/i/${id}?w=12`);
    const usage = await (await call("/v1/usage", { key: fresh.key })).json<{
      images: number;
      bytesStored: { originals: number };
      transforms: { today: { served: number; rendered: number } };
    }>();
    expect(usage.images).toBe(1);
    expect(usage.bytesStored.originals).toBe(body.images[0]!.bytes);
    expect(usage.transforms.today).toEqual({ served: 3, rendered: 2 });
  });

  it("removes renditions and their cache entries with the image", async () => {
    const { body } = await upload(tenant.key, [{ name: "file", bytes: await loadCorpus("pngsuite-basn2c08.png"), filename: "d.png" }]);
    const id = body.images[0]!.id;
    await image(`/i/${id}?w=16`);
    await image(`/i/${id}?w=8&fmt=auto`, { accept: "image/webp" });
    expect((await env.IMAGES.list({ prefix: `${tenant.tenantId}/${id}/` })).objects.length).toBe(3);
    expect((await call(`/v1/images/${id}`, { method: "DELETE", key: tenant.key })).status).toBe(204);
    expect((await env.IMAGES.list({ prefix: `${tenant.tenantId}/${id}/` })).objects).toEqual([]);
    await expectProblem(await call(`/i/${id}?w=16`), 404);
    await expectProblem(await call(`/i/${id}?w=8&fmt=auto`, { headers: { accept: "image/webp" } }), 404);
  });
});
