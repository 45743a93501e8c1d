/// <reference types="vite/client" />
/**
 * Test fixtures for tests running inside workerd (@cloudflare/vitest-plugin).
 *
 *   import { loadFixture, fixtureNames } from "./fixtures";
 *   const bytes = await loadFixture("photo-small-aero1.jpg"); // a fresh Uint8Array each call
 *
 * Any file dropped into test/fixtures/ is available by its file name; no config change and no
 * generated module. How it works: workerd cannot read the disk and a plain `?url` import only
 * yields a dev-server path it cannot fetch, so each fixture is imported through Vite with
 * `?url&inline`, which makes Vite's asset plugin inline the file as a base64 `data:` URL string
 * (for any extension, even ones Vite does not know, such as .heic or .bin). The import is lazy
 * (`import.meta.glob` without `eager`), so a test file pays only for the fixtures it loads.
 *
 * One exception: Vite "optimises" `.svg` data URLs (collapses whitespace, swaps quotes), which
 * would change the bytes, so `.svg` fixtures are imported with `?raw` instead (UTF-8 text, read
 * back exactly; an SVG fixture must therefore be valid UTF-8).
 *
 * Licences and origins of the files are in test/fixtures/LICENSES.tsv (one line per file, in
 * the corpus MANIFEST.tsv format); test/fixtures/make-fixtures.mjs copies and generates them.
 * Keep the directory small (a few MB): copy big corpus files as `head-<name>` prefixes.
 */

const DIR = "../fixtures/";

const inlined = import.meta.glob<string>(["../fixtures/*", "!../fixtures/*.svg", "!../fixtures/*.mjs", "!../fixtures/*.md"], {
  query: "?url&inline",
  import: "default",
});
const svg = import.meta.glob<string>("../fixtures/*.svg", { query: "?raw", import: "default" });

/** File names (not paths) of every fixture, sorted. */
export function fixtureNames(): string[] {
  return [...Object.keys(inlined), ...Object.keys(svg)].map((path) => path.slice(DIR.length)).sort();
}

export function hasFixture(name: string): boolean {
  return inlined[DIR + name] !== undefined || svg[DIR + name] !== undefined;
}

/** The bytes of test/fixtures/<name>, as a fresh Uint8Array the caller may modify. */
export async function loadFixture(name: string): Promise<Uint8Array> {
  const text = svg[DIR + name];
  if (text !== undefined) return new TextEncoder().encode(await text());
  const url = inlined[DIR + name];
  if (url === undefined) throw new Error(`No fixture test/fixtures/${name}; have: ${fixtureNames().join(", ")}`);
  return dataUrlBytes(await url(), name);
}

/** The text of a fixture (UTF-8). */
export async function loadFixtureText(name: string): Promise<string> {
  return new TextDecoder().decode(await loadFixture(name));
}

function dataUrlBytes(url: string, name: string): Uint8Array {
  const comma = url.indexOf(",");
  if (!url.startsWith("data:") || comma < 0) throw new Error(`Fixture ${name} was not inlined (got ${url.slice(0, 40)})`);
  const payload = url.slice(comma + 1);
  if (!url.slice(0, comma).endsWith(";base64")) return new TextEncoder().encode(decodeURIComponent(payload));
  const binary = atob(payload);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
