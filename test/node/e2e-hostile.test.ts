// Every hostile file of the corpus, uploaded as a client would, against a real `wrangler dev`.
import { describe, expect, it } from "vitest";
import { baseUrl, createTenant, listAll, type UploadJson } from "./api-client";
import { corpusFiles, readCorpusFile } from "./corpus";

/**
 * Valid images that carry a payload (PHP in EXIF and after the end marker). Cameras write
 * trailers too, so these are accepted, then only ever served as their image type with nosniff.
 */
const ACCEPTED_WITH_PAYLOAD = new Set(["hostile-php-in-exif.jpg"]);

describe("hostile files against wrangler dev", () => {
  const { dir, names } = corpusFiles((name) => name.startsWith("hostile-") || name.endsWith(".heic"));

  it("refuses each one with a 4xx problem+json and stores nothing for it", async () => {
    expect(names.length).toBeGreaterThan(5);
    const tenant = await createTenant("e2e-hostile");
    for (const name of names) {
      const bytes = readCorpusFile(dir, name);
      // Claim an image type whatever the bytes: the service must look at the bytes.
      const put = await fetch(`${baseUrl()}/v1/images?filename=${name}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${tenant.key}`, "content-type": "image/png" },
        body: bytes,
      });
      const form = new FormData();
      form.append("file", new Blob([bytes], { type: "image/jpeg" }), name);
      const post = await fetch(`${baseUrl()}/v1/images`, { method: "POST", headers: { authorization: `Bearer ${tenant.key}` }, body: form });

      for (const response of [put, post]) {
        if (ACCEPTED_WITH_PAYLOAD.has(name)) {
          expect(response.status, name).toBe(201);
          const image = ((await response.json()) as UploadJson).images[0]!;
          const served = await fetch(image.url);
          expect(served.headers.get("content-type")).toBe("image/jpeg");
          expect(served.headers.get("x-content-type-options")).toBe("nosniff");
          await served.body?.cancel();
          continue;
        }
        expect(response.status, `${name}: ${response.status}`).toBeGreaterThanOrEqual(400);
        expect(response.status, name).toBeLessThan(500);
        expect(response.headers.get("content-type"), name).toBe("application/problem+json");
        const problem = (await response.json()) as { type: string; detail: string; status: number };
        expect(problem.type, name).toMatch(/^https:\/\/edge-images\.dev\/problems\//);
        expect(problem.status).toBe(response.status);
        console.log(`[hostile] ${name}: ${response.status} ${problem.detail}`);
      }
    }
    const stored = await listAll(tenant.key);
    expect(stored.map((image) => image.filename).sort()).toEqual([...ACCEPTED_WITH_PAYLOAD].sort());
  });
});
