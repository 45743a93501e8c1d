// The web app (web/, served by the Worker as static assets) in Debian's chromium against the
// real `wrangler dev`: sign in with a tenant key, upload three files (one hostile) with progress,
// see them in the gallery, open one, crop and rotate it in the editor, copy the transform URL and
// check what that URL returns. Screenshots of gallery, upload and editor at desktop and phone
// widths go to test-results/screenshots/webapp-*.png.
import { join } from "node:path";
import type { Page } from "playwright-core";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { baseUrl, createTenant, listAll } from "./api-client";
import { requireChromium, screenshot, withPage } from "./browser";
import { corpusFiles } from "./corpus";

const PHOTO = "orientation-landscape-6.jpg"; // stored 1200x1800 with EXIF 6: displayed 1800x1200
const LOGO = "png-alpha-watermark-debian.png"; // 788x256, alpha
const HOSTILE = "hostile-svg-script.svg"; // refused with 415

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** Screenshots at both widths, back at desktop afterwards; waits for every visible image first. */
async function screenshots(page: Page, name: string): Promise<void> {
  for (const [label, viewport] of [["desktop", DESKTOP], ["phone", PHONE]] as const) {
    await page.setViewportSize(viewport);
    await page.evaluate(() => window.scrollTo(0, 0)); // the sticky top bar belongs at the top of a full-page shot
    await imagesSettled(page);
    await screenshot(page, `webapp-${name}-${label}`);
  }
  await page.setViewportSize(DESKTOP);
}

/** Every <img> on the page has loaded (or failed) and faded in: what a person sees after a moment. */
async function imagesSettled(page: Page): Promise<void> {
  await page.waitForFunction(() => Array.from(document.images).every((img) => img.complete), null, { timeout: 20_000 });
  await page.waitForTimeout(400); // the 0.25 s fade-in
}

describe("web app", () => {
  it("signs in, uploads with progress (hostile file rejected), lists, edits and copies a transform URL that serves the expected image", async () => {
    requireChromium();
    const { dir, names } = corpusFiles((name) => name === PHOTO || name === LOGO || name === HOSTILE);
    expect(names).toEqual([PHOTO, HOSTILE, LOGO].sort());
    const tenant = await createTenant("webapp");
    const base = baseUrl();

    await withPage(async (page) => {
      await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
      const cspViolations: string[] = [];
      page.on("console", (message) => {
        if (/Content.Security.Policy/i.test(message.text())) cspViolations.push(message.text());
      });
      page.on("pageerror", (error) => cspViolations.push(`page error: ${error.message}`));

      // The SPA is served at / with a strict CSP; a client route is index.html too.
      const response = await page.goto(`${base}/`);
      expect(response?.status()).toBe(200);
      const csp = response?.headers()["content-security-policy"] ?? "";
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("img-src 'self' data: blob:");

      // Sign in: a wrong key is refused, the tenant's key is accepted and kept in localStorage.
      await page.fill("#api-key", "eik_not-a-real-key");
      await page.click("button[type=submit]");
      await expect.poll(() => page.textContent("#api-key-error")).toContain("not accepted");
      await page.fill("#api-key", tenant.key);
      await page.click("button[type=submit]");
      await page.waitForSelector("text=No images yet.");
      expect(await page.evaluate(() => localStorage.getItem("edge-images.apiKey"))).toBe(tenant.key);

      // Upload three files, one hostile; record every state and progress value the page shows.
      await page.click("text=Upload your first images");
      await page.waitForSelector("#file-input", { state: "attached" });
      await page.click("text=Add metadata");
      await page.getByLabel("Metadata key 1", { exact: true }).fill("album");
      await page.getByLabel("Metadata value 1", { exact: true }).fill("webapp-test");
      await page.setInputFiles("#file-input", [PHOTO, LOGO, HOSTILE].map((name) => join(dir, name)));
      await page.evaluate(() => {
        const seen: string[] = [];
        (window as unknown as { seen: string[] }).seen = seen;
        const record = (): void => {
          for (const element of document.querySelectorAll<HTMLElement>(".file")) seen.push(`${element.dataset["filename"]}:${element.dataset["state"]}`);
          const overall = document.querySelector<HTMLProgressElement>("progress[aria-label='Overall progress']");
          if (overall) seen.push(`overall:${overall.value.toFixed(2)}`);
        };
        new MutationObserver(record).observe(document.body, { subtree: true, attributes: true, childList: true });
      });
      await page.click("text=Upload 3 files");
      await page.waitForFunction(() => document.querySelectorAll(".file.is-done, .file.is-error").length === 3, null, { timeout: 30_000 });
      const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
      for (const name of [PHOTO, LOGO, HOSTILE]) expect(seen).toContain(`${name}:uploading`);
      expect(seen).toContain(`${PHOTO}:done`);
      expect(seen).toContain(`${LOGO}:done`);
      expect(seen).toContain(`${HOSTILE}:error`);
      expect(seen).toContain("overall:1.00");
      const hostileRow = page.locator(`.file[data-filename="${HOSTILE}"]`);
      expect(await hostileRow.locator(".file-status").textContent()).toMatch(/Rejected: SVG is not accepted/);
      expect(await page.textContent(".overall-text")).toContain("2 of 3 stored, 1 rejected");
      await page.waitForSelector("text=Retry failed (1)");
      await screenshots(page, "upload");

      // The API has the two images with the metadata given in the form.
      const stored = await listAll(tenant.key);
      expect(stored.map((image) => image.filename).sort()).toEqual([LOGO, PHOTO].sort());
      const photo = stored.find((image) => image.filename === PHOTO);
      expect(photo).toMatchObject({ width: 1800, height: 1200 });

      // Gallery: both tiles, with fmt=auto srcsets; search by name and by metadata.
      await page.click("text=View in gallery");
      await page.waitForFunction(() => document.querySelectorAll(".tile .frame.is-loaded").length === 2, null, { timeout: 30_000 });
      const srcset = (await page.getAttribute(`a[href="/images/${photo!.id}"] img`, "srcset")) ?? "";
      expect(srcset).toContain(`/i/${photo!.id}?w=320&fmt=auto 320w`);
      expect(srcset).toContain(`/i/${photo!.id}?w=1800&fmt=auto 1800w`);
      await screenshots(page, "gallery");
      await page.fill("#search-name", "orientation");
      await page.click("button:has-text('Search')");
      await expect.poll(() => page.locator(".tile").count()).toBe(1);
      await page.fill("#search-name", "");
      await page.fill("#search-meta", "album=nothing-like-this");
      await page.click("button:has-text('Search')");
      await page.waitForSelector("text=No image matches this search.");
      await page.fill("#search-meta", "album=webapp-test");
      await page.click("button:has-text('Search')");
      await expect.poll(() => page.locator(".tile").count()).toBe(2);

      // Image page, then the editor.
      await page.click(`a[href="/images/${photo!.id}"]`);
      await page.waitForSelector("text=1800 × 1200 px");
      await page.click("text=Edit / transform");
      await page.waitForSelector(".stage img.is-loaded");

      // Crop by dragging: the bottom edge up 40 % of the image, the left edge right 10 %;
      // then nudge the box left with the keyboard, rotate right, and ask for 300 px wide.
      const stage = await page.locator("[data-testid=stage]").boundingBox();
      if (!stage) throw new Error("no stage");
      const drag = async (handle: string, dx: number, dy: number): Promise<void> => {
        const box = await page.locator(`.handle[data-handle="${handle}"]`).boundingBox();
        if (!box) throw new Error(`no ${handle} handle`);
        const x = box.x + box.width / 2;
        const y = box.y + box.height / 2;
        await page.mouse.move(x, y);
        await page.mouse.down();
        await page.mouse.move(x + dx, y + dy, { steps: 8 });
        await page.mouse.up();
      };
      await drag("s", 0, -0.4 * stage.height);
      await drag("w", 0.1 * stage.width, 0);
      await page.focus("[data-testid=crop-box]");
      await page.keyboard.press("ArrowLeft");
      await page.click("button[aria-label='Rotate right 90°']");
      await page.fill("#out-w", "300");

      const url = await page.inputValue("#transform-url");
      const params = new URL(url).searchParams;
      const [cx, cy, cw, ch] = (params.get("crop") ?? "").split(",").map(Number);
      expect(params.get("rot")).toBe("90");
      expect(params.get("w")).toBe("300");
      // Dragged from 1800x1200: about 60 % of the height and 90 % of the width, moved left by 1 % (18 px).
      expect(cy).toBe(0);
      expect(ch).toBeGreaterThan(640);
      expect(ch).toBeLessThan(800);
      expect(cw).toBeGreaterThan(1560);
      expect(cw).toBeLessThan(1660);
      expect(cx! + cw!).toBeLessThan(1800);
      // Rotated 90°: ch wide and cw high, scaled to 300 wide.
      const expected = { width: 300, height: Math.round((cw! * 300) / ch!) };
      expect(await page.textContent("[data-testid=predicted-size]")).toContain(`Output ${expected.width} × ${expected.height} px`);

      // Apply: the server's result, with its size, format and bytes.
      await page.click("button:has-text('Apply')");
      await page.waitForSelector("[data-testid=result-facts]", { timeout: 30_000 });
      const facts = (await page.textContent("[data-testid=result-facts]")) ?? "";
      expect(facts).toContain(`${expected.width} × ${expected.height} px`);
      expect(facts).toMatch(/AVIF|WEBP/);

      // Copy the URL: the clipboard holds exactly the transform URL shown.
      await page.click("button:has-text('Copy URL')");
      await page.waitForSelector("button:has-text('Copied')");
      const copied = await page.evaluate(() => navigator.clipboard.readText());
      expect(copied).toBe(url);
      expect(copied.startsWith(`${base}/i/${photo!.id}?`)).toBe(true);

      // The copied URL, fetched outside the browser, is an image of the expected size.
      const served = await fetch(copied, { headers: { accept: "image/avif,image/webp,*/*" } });
      expect(served.status).toBe(200);
      const metadata = await sharp(new Uint8Array(await served.arrayBuffer())).metadata();
      expect({ width: metadata.width, height: metadata.height }).toEqual(expected);
      expect(served.headers.get("content-type")).toMatch(/^image\/(avif|webp)$/);

      // Save the settings as a preset; the preset URL gives the same size.
      await page.fill("#preset-name", "webapp-card");
      await page.click("button:has-text('Save preset')");
      await page.waitForSelector("text=Saved. Use ?p=webapp-card");
      const preset = await fetch(`${base}/i/${photo!.id}?p=webapp-card`, { headers: { accept: "image/avif,image/webp,*/*" } }); // same rendition: cached
      expect(preset.status).toBe(200);
      const presetMeta = await sharp(new Uint8Array(await preset.arrayBuffer())).metadata();
      expect({ width: presetMeta.width, height: presetMeta.height }).toEqual(expected);

      await screenshots(page, "editor");
      expect(cspViolations).toEqual([]);

      // Sign out clears the key.
      await page.click("button:has-text('Sign out')");
      await page.waitForSelector("#api-key");
      expect(await page.evaluate(() => localStorage.getItem("edge-images.apiKey"))).toBeNull();
    });
  });
});
