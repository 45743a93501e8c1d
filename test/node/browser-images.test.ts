// In a real browser (Debian's chromium, see ./browser.ts): images uploaded to `wrangler dev`
// load from <img> tags at their /i/:id URLs, with the size the API reported. The API reports
// width and height as displayed (after EXIF orientation), which is what Chromium shows by default.
import { describe, expect, it } from "vitest";
import { baseUrl, createTenant, type ImageJson, type UploadJson } from "./api-client";
import { naturalSizes, requireChromium, screenshot, withPage } from "./browser";
import { corpusFiles, readCorpusFile } from "./corpus";

/** Small corpus files, one per format, with the size they are displayed at. */
const FILES = [
  // Stored 1200x1800 with EXIF Orientation 6 (rotate 90° clockwise): displayed as a 1800x1200 landscape.
  { name: "orientation-landscape-6.jpg", width: 1800, height: 1200 },
  { name: "png-alpha-watermark-debian.png", width: 788, height: 256 },
  { name: "avif-photo-kite.avif", width: 1920, height: 1200 },
] as const;

async function putImage(key: string, name: string, bytes: Uint8Array): Promise<ImageJson> {
  const response = await fetch(`${baseUrl()}/v1/images?filename=${encodeURIComponent(name)}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/octet-stream" },
    body: new Uint8Array(bytes), // a copy typed over ArrayBuffer, which BodyInit wants
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`upload of ${name} failed: ${response.status} ${text}`);
  const image = (JSON.parse(text) as UploadJson).images[0];
  if (!image) throw new Error(`upload of ${name} returned no image: ${text}`);
  return image;
}

describe("uploaded images in Chromium", () => {
  it("load from <img src=/i/:id> with the natural size the API reported (EXIF orientation applied)", async () => {
    requireChromium(); // without chromium every test fails saying how to install it (a failing beforeAll would count as skipped)
    const { dir, names } = corpusFiles((name) => FILES.some((file) => file.name === name));
    expect(names).toEqual(expect.arrayContaining(FILES.map((file) => file.name)));

    const tenant = await createTenant("browser-images");
    const uploaded: ImageJson[] = [];
    for (const file of FILES) {
      const image = await putImage(tenant.key, file.name, readCorpusFile(dir, file.name));
      expect({ name: file.name, width: image.width, height: image.height }).toEqual(file);
      uploaded.push(image);
    }

    const urls = uploaded.map((image) => `${baseUrl()}/i/${image.id}`);
    expect(uploaded.map((image) => image.url)).toEqual(urls);

    await withPage(async (page) => {
      const sizes = await naturalSizes(page, urls);
      await screenshot(page, "browser-images-originals");
      expect(sizes).toEqual(uploaded.map((image) => ({ url: `${baseUrl()}/i/${image.id}`, loaded: true, status: 200, error: null, width: image.width, height: image.height })));
    });
  });

  it("load transform URLs with the expected natural sizes (fit modes, dpr, fmt=auto, presets)", async () => {
    requireChromium();
    const { dir, names } = corpusFiles((name) => name === "orientation-landscape-6.jpg" || name === "png-alpha-watermark-debian.png");
    const tenant = await createTenant("browser-transforms");
    const photo = await putImage(tenant.key, names[0]!, readCorpusFile(dir, names[0]!)); // displayed 1800x1200
    const logo = await putImage(tenant.key, names[1]!, readCorpusFile(dir, names[1]!)); // 788x256, alpha
    const cases: Array<[string, number, number]> = [
      [`/i/${photo.id}?w=400`, 400, 267],
      [`/i/${photo.id}?w=400&h=300&fit=cover&fmt=auto`, 400, 300],
      [`/i/${photo.id}?w=300&h=300&fit=pad&bg=000000`, 300, 300],
      [`/i/${photo.id}?w=200&dpr=2&fmt=webp`, 400, 267],
      [`/i/${photo.id}?h=100&rot=90&fmt=avif`, 67, 100],
      [`/i/${photo.id}?crop=0,0,900,600&w=300`, 300, 200],
      [`/i/${photo.id}?w=5000`, 1800, 1200],
      [`/i/${photo.id}?p=thumb`, 200, 200],
      [`/i/${logo.id}?w=394&fmt=auto`, 394, 128],
      [`/i/${photo.id}?w=600&wm=${logo.id}&wm_op=0.5`, 600, 400],
    ];
    await withPage(async (page) => {
      const sizes = await naturalSizes(page, cases.map(([url]) => url));
      await screenshot(page, "browser-images-transforms");
      expect(sizes.map((size) => [size.url.slice(baseUrl().length), size.width, size.height])).toEqual(cases);
    });
  });

  it("reports an image that does not load as not loaded", async () => {
    requireChromium();
    await withPage(async (page) => {
      const [missing] = await naturalSizes(page, ["/i/does-not-exist"]);
      expect(missing).toMatchObject({ url: `${baseUrl()}/i/does-not-exist`, loaded: false, width: 0, height: 0 });
      // The 404 is a problem+json body, which Chromium's opaque-response blocking stops before a status is reported.
      expect([missing?.status, missing?.error]).toEqual([null, "net::ERR_BLOCKED_BY_ORB"]);
    });
  });
});
