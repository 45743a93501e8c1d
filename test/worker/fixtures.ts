/// <reference types="vite/client" />
/**
 * Test images for tests running inside workerd (@cloudflare/vitest-plugin). Two sources:
 *
 *   import { loadCorpus, loadCorpusHead, loadFixture } from "./fixtures";
 *   const photo = await loadCorpus("photo-small-aero1.jpg"); // the shared corpus (third-party)
 *   const head = await loadCorpusHead("photo-medium-storm.jpg", 12288); // its first bytes
 *   const tiny = await loadFixture("gen-1x1.jpg"); // test/fixtures: files made here
 *
 * Each call gives a fresh Uint8Array the caller may modify.
 *
 * The corpus (../shared/corpus beside the clone, or CORPUS_DIR; origins and licences in its
 * MANIFEST.tsv) is served from Node by the CORPUS service binding of vitest.config.ts, which also
 * makes the files derived from it (test/node/corpus.ts: the restart-marker JPEGs, the fuzzer's
 * bit-flipped GIF, the CMYK profile). A corpus file that is not there throws an Error naming the
 * path looked at: the test fails, it never skips or falls back.
 *
 * test/fixtures holds only files made here (listed in test/fixtures/LICENSES.tsv; make-fixtures.mjs
 * generates the `gen-*` images). Any file dropped in there is available by its file name: workerd
 * cannot read the disk and a plain `?url` import only yields a dev-server path it cannot fetch, so
 * each fixture is imported through Vite with `?url&inline`, which inlines the file as a base64
 * `data:` URL string (for any extension). The import is lazy (`import.meta.glob` without `eager`),
 * so a test file pays only for the fixtures it loads. Vite "optimises" `.svg` data URLs (which
 * would change the bytes), so `.svg` fixtures are imported with `?raw` instead (UTF-8 text).
 */
import { env } from "cloudflare:workers";

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

/** A file of the shared corpus (or one derived from it), or its first `head` bytes. */
async function fetchCorpus(name: string, head?: number): Promise<Uint8Array> {
  const query = head === undefined ? "" : `?head=${head}`;
  const response = await env.CORPUS.fetch(`http://corpus/${encodeURIComponent(name)}${query}`);
  if (!response.ok) throw new Error(await response.text());
  return new Uint8Array(await response.arrayBuffer());
}

/** The bytes of a shared corpus file, or of a file derived from one (test/node/corpus.ts). */
export function loadCorpus(name: string): Promise<Uint8Array> {
  return fetchCorpus(name);
}

/** The first `bytes` bytes of a corpus file (a header copy). */
export function loadCorpusHead(name: string, bytes: number): Promise<Uint8Array> {
  return fetchCorpus(name, bytes);
}

/** A corpus file as UTF-8 text (e.g. MANIFEST.tsv). */
export async function loadCorpusText(name: string): Promise<string> {
  return new TextDecoder().decode(await fetchCorpus(name));
}

/** Names of the corpus files (from its MANIFEST.tsv), sorted. */
export async function corpusNames(): Promise<string[]> {
  const manifest = await loadCorpusText("MANIFEST.tsv");
  return manifest.trimEnd().split("\n").slice(1).map((line) => line.split("\t")[0] ?? "").filter((name) => name !== "").sort();
}

/** A test image by name: our own fixture when test/fixtures has it, else the corpus (which throws when absent). */
export function loadImage(name: string): Promise<Uint8Array> {
  return hasFixture(name) ? loadFixture(name) : loadCorpus(name);
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
