// The shared test corpus beside the clone (../shared/corpus, described by its MANIFEST.tsv): the
// third-party images the tests read. The repo keeps none of them (test/fixtures holds only files
// made here). A test that needs a corpus file and finds none fails with the path it looked at;
// there is no fallback. CORPUS_DIR (relative to the repo root, or absolute) points elsewhere.
//
// Node tests import this directly; the workerd tests reach it through the CORPUS service binding
// of vitest.config.ts (serveCorpus below), since workerd cannot read the disk.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import sharp from "sharp";

const REPO_ROOT = resolve(import.meta.dirname, "../..");
export const CORPUS_DIR = resolve(REPO_ROOT, process.env.CORPUS_DIR ?? "../shared/corpus");
/** The files made here (make-fixtures.mjs, hand-built): never third-party. */
export const FIXTURES_DIR = resolve(REPO_ROOT, "test/fixtures");

function missing(name: string, path: string): Error {
  return new Error(
    `corpus file ${name} not found at ${path}: the shared corpus must be beside the clone (../shared/corpus, with MANIFEST.tsv), or CORPUS_DIR must point to it`,
  );
}

/** Path of a corpus file; throws (naming the path) when it is not there. */
export function corpusPath(name: string): string {
  const path = join(CORPUS_DIR, name);
  if (name.includes("/") || !existsSync(path) || !statSync(path).isFile()) throw missing(name, path);
  return path;
}

/** The bytes of a corpus file (a fresh copy); throws when it is not there. */
export function readCorpus(name: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readFileSync(corpusPath(name)));
}

/** The first `length` bytes of a corpus file (a header copy). */
export function readCorpusHead(name: string, length: number): Uint8Array<ArrayBuffer> {
  return readCorpus(name).slice(0, length);
}

/** Names of the corpus files (MANIFEST.tsv order is by kind; these are sorted) that match the filter. */
export function corpusNames(filter: (name: string) => boolean = () => true): string[] {
  const manifest = new TextDecoder().decode(readCorpus("MANIFEST.tsv"));
  const names = manifest.trimEnd().split("\n").slice(1).map((line) => line.split("\t")[0] ?? "");
  return names.filter((name) => name !== "" && filter(name)).sort();
}

/** The corpus folder and the names in it that match the filter (for tests that hand paths to tools). */
export function corpusFiles(filter: (name: string) => boolean): { dir: string; names: string[] } {
  return { dir: CORPUS_DIR, names: corpusNames(filter) };
}

/** The bytes of `name` in `dir` (the corpus folder from corpusFiles); throws naming the path when absent. */
export function readCorpusFile(dir: string, name: string): Uint8Array<ArrayBuffer> {
  const path = join(dir, name);
  if (!existsSync(path)) throw missing(name, path);
  return new Uint8Array(readFileSync(path));
}

// ---------------------------------------------------------------------------------------------
// Files derived from corpus files at test time (they were once kept in test/fixtures).

/** aero1 shrunk to 96x72 by sharp (JPEG quality 80): the source of the restart-marker files. */
async function smallAero(): Promise<Buffer> {
  return sharp(corpusPath("photo-small-aero1.jpg")).resize(96, 72).jpeg({ quality: 80 }).toBuffer();
}

/** Debian's jpegtran (libjpeg-turbo-progs) over `input`; a clear error when it is not installed. */
function jpegtran(args: readonly string[], input: Uint8Array): Uint8Array<ArrayBuffer> {
  try {
    return new Uint8Array(execFileSync("jpegtran", args, { input, maxBuffer: 64 * 1024 * 1024 }));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error("jpegtran not found: the restart-marker test files are made with it (apt-get install libjpeg-turbo-progs)");
    }
    throw error;
  }
}

/**
 * An ICC profile cut down to the given tags, in that order (ICC.1:2010 section 7: a 128-byte
 * header whose first field is the profile size, a tag count, 12-byte tag entries of signature,
 * offset and size, then the tag data, each element starting on a 4-byte boundary).
 */
function iccWithTags(profile: Uint8Array, keep: readonly string[]): Uint8Array<ArrayBuffer> {
  const view = new DataView(profile.buffer, profile.byteOffset, profile.byteLength);
  const tags = new Map<string, Uint8Array>();
  for (let i = 0, count = view.getUint32(128); i < count; i++) {
    const entry = 132 + 12 * i;
    const signature = String.fromCharCode(...profile.subarray(entry, entry + 4));
    const offset = view.getUint32(entry + 4);
    tags.set(signature, profile.subarray(offset, offset + view.getUint32(entry + 8)));
  }
  const align = (n: number): number => (n + 3) & ~3;
  let end = 132 + 12 * keep.length;
  const placed = keep.map((signature) => {
    const data = tags.get(signature);
    if (data === undefined) throw new Error(`ICC profile has no ${signature} tag`);
    const offset = align(end);
    end = offset + data.length;
    return { signature, data, offset };
  });
  const out = new Uint8Array(end);
  const outView = new DataView(out.buffer);
  out.set(profile.subarray(0, 128));
  outView.setUint32(0, end);
  outView.setUint32(128, keep.length);
  placed.forEach(({ signature, data, offset }, i) => {
    const entry = 132 + 12 * i;
    for (let k = 0; k < 4; k++) out[entry + k] = signature.charCodeAt(k);
    outView.setUint32(entry + 4, offset);
    outView.setUint32(entry + 8, data.length);
    out.set(data, offset);
  });
  return out;
}

/** Recipes of the derived files, by the name tests ask for. */
const DERIVED: Readonly<Record<string, () => Promise<Uint8Array<ArrayBuffer>>>> = {
  /** Baseline JPEG with a restart marker every MCU row (jpegtran -restart 1B). */
  "jpegtran-restart-baseline.jpg": async () => jpegtran(["-copy", "none", "-restart", "1B"], await smallAero()),
  /** Progressive JPEG with restart markers (jpegtran -progressive -restart 1). */
  "jpegtran-restart-progressive.jpg": async () => jpegtran(["-copy", "none", "-progressive", "-restart", "1"], await smallAero()),
  /** A find of the fuzzer (test/node/fuzz-engine.ts): the animated opencv GIF with bit 7 of byte 183 flipped. */
  "fuzz-gif-lzw-hang.gif": async () => {
    const bytes = readCorpus("gif-animated-opencv-houghlines.gif");
    bytes[183]! ^= 0x80;
    return bytes;
  },
  /**
   * libvips' built-in CMYK profile ("Chemical proof", ArgyllCMS), as sharp embeds it in a CMYK
   * JPEG, reduced to desc, cprt, wtpt and A2B0 (the whole profile is 940 KB: too big for one
   * JPEG APP2 segment).
   */
  "cmyk-chemical-proof-a2b0.icc": async () => {
    const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: "#808080" } })
      .toColourspace("cmyk")
      .jpeg()
      .withIccProfile("cmyk")
      .toBuffer();
    const { icc } = await sharp(jpeg).metadata();
    if (icc === undefined) throw new Error("sharp wrote a CMYK JPEG without its CMYK profile");
    return iccWithTags(icc, ["desc", "cprt", "wtpt", "A2B0"]);
  },
};

/** Names of the files derived at test time. */
export const derivedNames: readonly string[] = Object.keys(DERIVED);

const made = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();

/** A derived file (made once per process); throws for an unknown name or a missing corpus source. */
export async function readDerived(name: string): Promise<Uint8Array<ArrayBuffer>> {
  const recipe = DERIVED[name];
  if (recipe === undefined) throw new Error(`no derived test file ${name}; known: ${derivedNames.join(", ")}`);
  let bytes = made.get(name);
  if (bytes === undefined) {
    bytes = recipe();
    made.set(name, bytes);
    bytes.catch(() => made.delete(name));
  }
  return (await bytes).slice();
}

/** A test image by name: our own file in test/fixtures, else a derived file, else a corpus file (which throws when absent). */
export async function readTestImage(name: string): Promise<Uint8Array<ArrayBuffer>> {
  const own = join(FIXTURES_DIR, name);
  if (existsSync(own)) return new Uint8Array(readFileSync(own));
  return DERIVED[name] !== undefined ? readDerived(name) : readCorpus(name);
}

// ---------------------------------------------------------------------------------------------
// The CORPUS service binding of the workerd tests (vitest.config.ts).

/**
 * Answers GET /<name> with a corpus file (or a derived one), GET /<name>?head=N with its first N
 * bytes. A missing file is a 404 whose text names the path looked at (the test helper throws it).
 */
export async function serveCorpus(url: string): Promise<{ status: 200 | 404; body: Uint8Array<ArrayBuffer> | string }> {
  const { pathname, searchParams } = new URL(url);
  const name = decodeURIComponent(pathname.slice(1));
  try {
    const bytes = DERIVED[name] !== undefined ? await readDerived(name) : readCorpus(name);
    const head = searchParams.get("head");
    return { status: 200, body: head === null ? bytes : bytes.slice(0, Number(head)) };
  } catch (error) {
    return { status: 404, body: error instanceof Error ? error.message : String(error) };
  }
}
