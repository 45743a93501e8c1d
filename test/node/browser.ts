// A real browser for Node-side tests: Debian's chromium driven by playwright-core
// (`npx playwright install` cannot work on this machine kind; .ci/run installs chromium).
//
//   import { naturalSizes, screenshot, withPage } from "./browser";
//   await withPage(async (page) => {
//     const sizes = await naturalSizes(page, [`/i/${id}`, `/i/${id}?w=400&h=300&fit=cover`]);
//     expect(sizes[1]).toMatchObject({ loaded: true, status: 200, width: 400, height: 300 });
//     await screenshot(page, "transforms");
//   });
//
// Chromium is launched lazily, once per test file (vitest evaluates this module once per file),
// and closed after the file's tests. Each withPage() call gets a fresh context (no shared cache or
// cookies between calls). When a callback fails, a screenshot of the page is saved next to the
// others in test-results/screenshots/ before the error is rethrown. A missing chromium fails the
// test with a message saying how to install it; it is never skipped.
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page, type Request as PageRequest, type Response as PageResponse } from "playwright-core";
import { afterAll, expect } from "vitest";
import { baseUrl } from "./api-client";

export const CHROMIUM_PATH = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
export const SCREENSHOTS_DIR = resolve(import.meta.dirname, "../../test-results/screenshots");

let launched: Promise<Browser> | undefined;

/** Throws a clear error when chromium is not installed: call it first in each browser test (a throwing beforeAll makes vitest count the tests as skipped). */
export function requireChromium(): void {
  if (existsSync(CHROMIUM_PATH)) return;
  throw new Error(
    `The browser tests need Debian's chromium at ${CHROMIUM_PATH}, and it is not installed. ` +
      `Install it with: apt-get update && apt-get install -y chromium (.ci/run does this in CI), ` +
      `or point CHROMIUM_PATH at a Chromium binary.`,
  );
}

/** The file's browser, launched on first use. */
export function browser(): Promise<Browser> {
  requireChromium();
  launched ??= chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true, timeout: 60_000 }).catch((error: unknown) => {
    launched = undefined;
    throw new Error(`Could not launch ${CHROMIUM_PATH}: ${String(error)}`, { cause: error });
  });
  return launched;
}

afterAll(async () => {
  const current = launched;
  launched = undefined;
  if (current) await (await current.catch(() => undefined))?.close();
});

/** Runs fn with a fresh page; on failure saves `<test name>-failed.png` and rethrows. */
export async function withPage<T>(fn: (page: Page) => Promise<T>): Promise<T> {
  const context = await (await browser()).newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  try {
    return await fn(page);
  } catch (error) {
    await screenshot(page, `${expect.getState().currentTestName ?? "page"}-failed`).catch(() => undefined);
    throw error;
  } finally {
    await context.close();
  }
}

/** Saves a full-page PNG to test-results/screenshots/<name>.png (name made file-safe); returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  const path = join(SCREENSHOTS_DIR, `${name.replace(/[^\w.-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 120) || "page"}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

export interface NaturalSize {
  /** The absolute URL the <img> loaded. */
  readonly url: string;
  /** Whether the image loaded and decoded; width and height are 0 when not. */
  readonly loaded: boolean;
  /** naturalWidth / naturalHeight: as displayed, after EXIF orientation (Chromium's default). */
  readonly width: number;
  readonly height: number;
  /** The HTTP status of the image's response (null if the browser reported none: from its cache, or blocked). */
  readonly status: number | null;
  /** Chromium's network error for the request, e.g. net::ERR_BLOCKED_BY_ORB for a non-image body; null when none. */
  readonly error: string | null;
}

const escapeAttribute = (value: string): string => value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** An absolute URL; paths such as `/i/ID?w=400` are resolved against the wrangler dev server. */
export const absoluteUrl = (url: string): string => new URL(url, baseUrl()).href;

/** A page of one `<img>` per URL (in order, ids img-0, img-1, ...), each with its URL as title. */
export function imagesPage(urls: readonly string[]): string {
  const images = urls.map((url, i) => {
    const src = escapeAttribute(absoluteUrl(url));
    return `<img id="img-${i}" src="${src}" title="${src}" style="max-width: 400px; border: 1px solid #ccc; margin: 4px">`;
  });
  return `<!doctype html><html><head><meta charset="utf-8"><title>images</title></head><body style="background: #555">\n${images.join("\n")}\n</body></html>`;
}

/**
 * Loads a page of `<img>` tags for the URLs (absolute, or paths on the dev server), waits until
 * every image has loaded or failed, and returns each one's natural size in the order given.
 * Replaces the page's content; take a screenshot afterwards to keep what was shown.
 */
export async function naturalSizes(page: Page, urls: readonly string[]): Promise<NaturalSize[]> {
  const statuses = new Map<string, number>();
  const errors = new Map<string, string>();
  const onResponse = (response: PageResponse): void => void statuses.set(response.url(), response.status());
  const onFailed = (request: PageRequest): void => void errors.set(request.url(), request.failure()?.errorText ?? "failed");
  page.on("response", onResponse);
  page.on("requestfailed", onFailed);
  try {
    // setContent resolves on the load event, which waits for every <img> to load or fail.
    await page.setContent(imagesPage(urls), { waitUntil: "load", timeout: 60_000 });
    const sizes = await page.evaluate(async () => {
      const images = Array.from(document.images);
      return Promise.all(
        images.map(async (img) => {
          const loaded = await img.decode().then(
            () => true,
            () => false,
          );
          return { url: img.currentSrc || img.src, loaded, width: loaded ? img.naturalWidth : 0, height: loaded ? img.naturalHeight : 0 };
        }),
      );
    });
    return sizes.map((size) => ({ ...size, status: statuses.get(size.url) ?? null, error: errors.get(size.url) ?? null }));
  } finally {
    page.off("response", onResponse);
    page.off("requestfailed", onFailed);
  }
}
