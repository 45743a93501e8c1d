// End to end against a real `wrangler dev`: bulk and one-by-one uploads of real photos,
// read back byte-identical; every hostile file in the corpus refused (or safely served).
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { baseUrl, createTenant, listAll, type UploadJson } from "./api-client";
import { corpusFiles, readCorpusFile } from "./corpus";

const PHOTO_COUNT = 50;

function realPhotos(): Array<{ name: string; bytes: Uint8Array<ArrayBuffer> }> {
  const { dir, names } = corpusFiles((name) => /\.(jpe?g|png|webp|avif|gif)$/i.test(name) && !name.startsWith("hostile-"));
  // Real photos first; small PngSuite files only top the list up to 50 when needed.
  const ordered = [...names.filter((name) => !name.startsWith("pngsuite-")), ...names.filter((name) => name.startsWith("pngsuite-"))];
  return ordered.slice(0, PHOTO_COUNT).map((name) => ({ name, bytes: readCorpusFile(dir, name) }));
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

describe("uploads against wrangler dev", () => {
  const photos = realPhotos();

  it(`stores ${PHOTO_COUNT} photos in one bulk request, then one at a time, and serves them back identical`, async () => {
    expect(photos.length).toBe(PHOTO_COUNT);
    const totalBytes = photos.reduce((sum, photo) => sum + photo.bytes.byteLength, 0);

    const bulkTenant = await createTenant("e2e-bulk");
    const form = new FormData();
    for (const photo of photos) form.append("file", new Blob([photo.bytes]), photo.name);
    const bulkStart = performance.now();
    const bulkResponse = await fetch(`${baseUrl()}/v1/images`, { method: "POST", headers: { authorization: `Bearer ${bulkTenant.key}` }, body: form });
    const bulk = (await bulkResponse.json()) as UploadJson;
    const bulkSeconds = (performance.now() - bulkStart) / 1000;
    expect(bulk.errors).toEqual([]);
    expect(bulkResponse.status).toBe(201);
    expect(bulk.images).toHaveLength(PHOTO_COUNT);

    const singleTenant = await createTenant("e2e-single");
    const singleStart = performance.now();
    const singles: UploadJson["images"] = [];
    for (const photo of photos) {
      const response = await fetch(`${baseUrl()}/v1/images?filename=${encodeURIComponent(photo.name)}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${singleTenant.key}`, "content-type": "application/octet-stream" },
        body: photo.bytes,
      });
      expect(response.status).toBe(201);
      singles.push(((await response.json()) as UploadJson).images[0]!);
    }
    const singleSeconds = (performance.now() - singleStart) / 1000;

    const mb = totalBytes / 1e6;
    console.log(
      `[upload throughput] ${PHOTO_COUNT} photos, ${mb.toFixed(1)} MB: bulk ${(PHOTO_COUNT / bulkSeconds).toFixed(1)} files/s ` +
        `${(mb / bulkSeconds).toFixed(1)} MB/s (${bulkSeconds.toFixed(2)} s); one at a time ${(PHOTO_COUNT / singleSeconds).toFixed(1)} files/s ` +
        `${(mb / singleSeconds).toFixed(1)} MB/s (${singleSeconds.toFixed(2)} s)`,
    );

    for (const [i, photo] of photos.entries()) {
      for (const image of [bulk.images[i]!, singles[i]!]) {
        expect(image.filename).toBe(photo.name);
        expect(image.sha256).toBe(sha256(photo.bytes));
        const served = await fetch(image.url);
        expect(served.status).toBe(200);
        expect(served.headers.get("x-content-type-options")).toBe("nosniff");
        expect(sha256(new Uint8Array(await served.arrayBuffer()))).toBe(sha256(photo.bytes));
      }
    }
    expect(await listAll(bulkTenant.key)).toHaveLength(PHOTO_COUNT);
    expect(await listAll(singleTenant.key)).toHaveLength(PHOTO_COUNT);
  });
});
