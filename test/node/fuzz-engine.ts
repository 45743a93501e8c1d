// A time-bounded HTTP fuzzer against a running `wrangler dev`: random and mutated transform
// query strings (fast-check), random multipart bodies and headers, and mutated real images
// (bit flips, truncation, splices, header field changes) uploaded with PUT and POST and then
// transformed. Every answer must be < 500 and either problem+json, JSON, an empty 204/304, or
// an image with a raster content type that sharp decodes.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import sharp from "sharp";
import { crc32 } from "../../src/images/crc32";
import { corpusFiles, readCorpusFile } from "./corpus";
import { mulberry32 } from "../mulberry32";
import { reloadAt, reloadsBetween, type Reload } from "./wrangler-dev";

export interface FuzzOptions {
  readonly baseUrl: string;
  readonly adminKey: string;
  readonly seconds: number;
  readonly concurrency?: number;
  readonly seed?: number;
  /** Where reproducers of failures go (one file each). */
  readonly outDir?: string;
  /** The reloads `wrangler dev` reported (wrangler-dev.ts readReloads), read when the run ends. */
  readonly reloads?: () => Reload[];
}

export type Category = "query" | "multipart" | "headers" | "mutated-put" | "mutated-post";

export interface Failure {
  readonly category: Category;
  readonly kind: "5xx" | "bad-content-type" | "missing-nosniff" | "undecodable-rendition" | "connection";
  readonly request: string;
  readonly status?: number;
  readonly detail: string;
  readonly contentType?: string;
  readonly file?: string;
}

export interface CategoryStats {
  inputs: number;
  requests: number;
  s2xx: number;
  s3xx: number;
  s4xx: number;
  s429: number;
  s5xx: number;
  images: number;
  imagesDecoded: number;
  failures: number;
}

export interface FuzzReport {
  readonly seed: number;
  readonly seconds: number;
  readonly stats: Record<Category, CategoryStats>;
  readonly failures: Failure[];
  /** Originals accepted at upload that sharp cannot decode even leniently (served verbatim: not a failure). */
  readonly acceptedUndecodableOriginals: number;
  readonly undecodableSamples: string[];
  /** Reloads `wrangler dev` reported during the run ("Reloading local server..."). */
  readonly reloadsReported: number;
  /** 5xx and connection failures seen while one of those reloads was in progress: reported, not failures. */
  readonly duringReload: Failure[];
  readonly aliveAtEnd: boolean;
}

const RASTER = /^image\/(jpeg|png|gif|webp|avif)$/;
const CATEGORIES: Category[] = ["query", "multipart", "headers", "mutated-put", "mutated-post"];

// ---------------------------------------------------------------------------------------------
// A small seeded PRNG for the byte mutations (fast-check drives the structured inputs).

export class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed >>> 0 || 1);
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error("empty pick");
    return item;
  }
  bytes(n: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Image mutations.


const INTERESTING_16 = [0, 1, 2, 255, 256, 0x7fff, 0x8000, 0xfffe, 0xffff];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 20_001, 50_000, 65_536];

function setU16BE(b: Uint8Array<ArrayBuffer>, at: number, v: number): void {
  if (at + 1 >= b.length) return;
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}
function setU16LE(b: Uint8Array<ArrayBuffer>, at: number, v: number): void {
  if (at + 1 >= b.length) return;
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
}
function setU32BE(b: Uint8Array<ArrayBuffer>, at: number, v: number): void {
  if (at + 3 >= b.length) return;
  new DataView(b.buffer, b.byteOffset).setUint32(at, v >>> 0);
}

/** Changes a size or layout field of the format's header (SOF, IHDR, GIF screen/frame, VP8X/VP8/VP8L). */
function mutateHeaderField(b: Uint8Array<ArrayBuffer>, rng: Rng): string {
  const v16 = () => (rng.next() < 0.7 ? rng.pick(INTERESTING_16) : rng.int(0x10000));
  if (b[0] === 0xff && b[1] === 0xd8) {
    for (let i = 2; i + 9 < b.length; i++) {
      const m = b[i + 1] ?? 0;
      if (b[i] === 0xff && m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
        const field = rng.int(4);
        if (field === 0) setU16BE(b, i + 5, v16());
        else if (field === 1) setU16BE(b, i + 7, v16());
        else if (field === 2) b[i + 9] = rng.pick([0, 1, 2, 3, 4, 5, 255]);
        else b[i + 4] = rng.pick([0, 1, 7, 8, 12, 16, 255]);
        return `jpeg-sof-field${field}`;
      }
    }
    return "jpeg-no-sof";
  }
  if (b[0] === 0x89 && b[1] === 0x50) {
    const field = rng.int(5);
    if (field === 0) setU32BE(b, 16, rng.pick(INTERESTING_32));
    else if (field === 1) setU32BE(b, 20, rng.pick(INTERESTING_32));
    else if (field === 2) b[24] = rng.pick([0, 1, 2, 3, 4, 8, 16, 32, 255]);
    else if (field === 3) b[25] = rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 255]);
    else b[28] = rng.pick([0, 1, 2]);
    // Fix the IHDR CRC half the time, so decoders that check it get past it.
    if (rng.next() < 0.5 && b.length > 33) setU32BE(b, 29, crc32(b.subarray(12, 29)));
    return `png-ihdr-field${field}`;
  }
  if (b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) {
    const field = rng.int(3);
    if (field === 0) setU16LE(b, 6, v16());
    else if (field === 1) setU16LE(b, 8, v16());
    else {
      const desc = b.indexOf(0x2c, 13);
      if (desc > 0) setU16LE(b, desc + 5 + 2 * rng.int(2), v16());
    }
    return `gif-field${field}`;
  }
  if (b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) {
    const chunk = String.fromCharCode(b[12] ?? 0, b[13] ?? 0, b[14] ?? 0, b[15] ?? 0);
    if (chunk === "VP8X") {
      const at = 24 + 3 * rng.int(2);
      const v = rng.pick([0, 1, 0xffffff, 20_000, 65_535, rng.int(0x1000000)]);
      b[at] = v & 0xff;
      b[at + 1] = (v >>> 8) & 0xff;
      b[at + 2] = (v >>> 16) & 0xff;
      return "webp-vp8x-canvas";
    }
    if (chunk === "VP8 ") {
      setU16LE(b, 26 + 2 * rng.int(2), v16());
      return "webp-vp8-size";
    }
    if (chunk === "VP8L") {
      b[21 + rng.int(4)] = rng.int(256);
      return "webp-vp8l-size";
    }
    return "webp-other";
  }
  if (String.fromCharCode(b[4] ?? 0, b[5] ?? 0, b[6] ?? 0, b[7] ?? 0) === "ftyp") {
    // AVIF: the ispe box carries the size.
    const at = indexOfAscii(b, "ispe");
    if (at > 0) setU32BE(b, at + 8 + 4 * rng.int(2), rng.pick(INTERESTING_32));
    return "avif-ispe";
  }
  return "unknown-format";
}

function indexOfAscii(b: Uint8Array<ArrayBuffer>, text: string): number {
  const codes = [...text].map((ch) => ch.charCodeAt(0));
  outer: for (let i = 0; i + codes.length <= b.length; i++) {
    for (let j = 0; j < codes.length; j++) if (b[i + j] !== codes[j]) continue outer;
    return i;
  }
  return -1;
}

export function mutateImage(source: Uint8Array<ArrayBuffer>, other: Uint8Array<ArrayBuffer>, rng: Rng): { bytes: Uint8Array<ArrayBuffer>; how: string } {
  const b = new Uint8Array(source);
  const strategy = rng.int(7);
  switch (strategy) {
    case 0: {
      const flips = 1 + rng.int(16);
      const region = rng.next() < 0.6 ? Math.min(b.length, 512) : b.length;
      for (let i = 0; i < flips; i++) {
        const at = rng.int(region);
        b[at] = (b[at] ?? 0) ^ (1 << rng.int(8));
      }
      return { bytes: b, how: `bitflip-${flips}-in-${region}` };
    }
    case 1: {
      const cut = rng.next() < 0.5 ? rng.int(Math.min(b.length, 1024)) : rng.int(b.length);
      return { bytes: b.slice(0, cut), how: `truncate-${cut}` };
    }
    case 2:
      return { bytes: b, how: mutateHeaderField(b, rng) };
    case 3: {
      // Header field change, and the file cut short as well.
      const how = mutateHeaderField(b, rng);
      const cut = Math.max(1, b.length - 1 - rng.int(Math.max(1, b.length >> 1)));
      return { bytes: b.slice(0, cut), how: `${how}+truncate-${cut}` };
    }
    case 4: {
      // Splice a run of another file's bytes into this one.
      const len = 1 + rng.int(Math.min(2048, other.length));
      const from = rng.int(Math.max(1, other.length - len));
      const at = rng.int(b.length);
      const out = new Uint8Array(b.length + len);
      out.set(b.subarray(0, at));
      out.set(other.subarray(from, from + len), at);
      out.set(b.subarray(at), at + len);
      return { bytes: out, how: `splice-${len}@${at}` };
    }
    case 5: {
      // Overwrite a run with random bytes or with one repeated byte.
      const len = 1 + rng.int(64);
      const at = rng.int(b.length);
      const fill = rng.next() < 0.5 ? rng.bytes(len) : new Uint8Array(len).fill(rng.pick([0, 0xff]));
      b.set(fill.subarray(0, Math.max(0, b.length - at)), at);
      return { bytes: b, how: `overwrite-${len}@${at}` };
    }
    default: {
      // Valid image with junk after it (accepted as a trailer), or junk before it (refused).
      const junk = rng.bytes(1 + rng.int(256));
      const before = rng.next() < 0.5;
      const out = new Uint8Array(b.length + junk.length);
      out.set(before ? junk : b);
      out.set(before ? b : junk, before ? junk.length : b.length);
      return { bytes: out, how: before ? "prefix-junk" : "suffix-junk" };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Query strings.

const PARAM_NAMES = ["w", "h", "dpr", "fit", "g", "crop", "rot", "flip", "fmt", "q", "blur", "sharpen", "bg", "wm", "wm_pos", "wm_scale", "wm_op", "wm_pad", "p", "sig", "exp"];

const numberText = fc.oneof(
  fc.integer({ min: -10, max: 10_000 }).map(String),
  fc.double({ noNaN: false }).map(String),
  fc.constantFrom("0", "1", "-1", "1e3", "0x10", "NaN", "Infinity", "", " 100", "100px", "1.5", "99999999999999999999", "00100", "+5", "8192", "8193"),
);
const enumText = fc.constantFrom(
  "scale-down", "contain", "cover", "crop", "pad", "squeeze", "center", "top", "bottom-right", "auto", "0.5x0.5", "1.1x0", "h", "v", "hv",
  "jpeg", "png", "webp", "avif", "gif", "svg", "90", "180", "270", "45", "tile", "thumb", "small", "large", "ff0000", "#fff", "zzzzzz", "ff000080",
);
const cropText = fc.tuple(numberText, numberText, numberText, numberText).map((parts) => parts.join(","));
const junkText = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 20 }), fc.constantFrom("%", "%zz", "%c3", "%00", "%ff%fe", "&&", "==", "\u0000", "a".repeat(300)));
const valueText = fc.oneof({ weight: 3, arbitrary: numberText }, { weight: 3, arbitrary: enumText }, { weight: 1, arbitrary: cropText }, { weight: 2, arbitrary: junkText });
const nameText = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...PARAM_NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) });

/** A query string: encoded pairs, sometimes raw (broken percent escapes, repeated names). */
export const queryArbitrary = fc.tuple(fc.array(fc.tuple(nameText, valueText), { minLength: 1, maxLength: 7 }), fc.boolean()).map(([pairs, raw]) =>
  pairs.map(([name, value]) => (raw ? `${name}=${value.replace(/[#\s]/g, "")}` : `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)).join("&"),
);

/** Mostly valid transforms, to make the pipeline run. */
export const validQueryArbitrary = fc
  .record({
    w: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
    h: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
    fit: fc.option(fc.constantFrom("scale-down", "contain", "cover", "crop", "pad", "squeeze"), { nil: undefined }),
    g: fc.option(fc.constantFrom("center", "top", "left", "bottom-right", "auto", "0.2x0.8"), { nil: undefined }),
    rot: fc.option(fc.constantFrom(90, 180, 270), { nil: undefined }),
    flip: fc.option(fc.constantFrom("h", "v", "hv"), { nil: undefined }),
    fmt: fc.option(fc.constantFrom("jpeg", "png", "webp", "auto"), { nil: undefined }),
    q: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
    blur: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
    sharpen: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
    bg: fc.option(fc.constantFrom("ff0000", "00000080"), { nil: undefined }),
  })
  .map((record) =>
    Object.entries(record)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => `${name}=${String(value)}`)
      .join("&"),
  );

// ---------------------------------------------------------------------------------------------
// Multipart bodies and headers.

const enc = new TextEncoder();

function concat(parts: Uint8Array<ArrayBuffer>[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function randomMultipart(rng: Rng, image: Uint8Array<ArrayBuffer>): { contentType: string; body: Uint8Array<ArrayBuffer>; how: string } {
  // A third of the bodies are well-formed around random content, so the fields and files are reached.
  const wellFormed = rng.next() < 0.35;
  const boundary = wellFormed ? "----WebKitFormBoundary7MA4YWxkTrZu0gW" : rng.pick(["b0undary", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "x".repeat(70), "x".repeat(71), "a b", "", "é", "--"]);
  const quote = rng.next() < 0.3;
  const contentType = wellFormed ? `multipart/form-data; boundary=${boundary}` : rng.pick([
    `multipart/form-data; boundary=${quote ? `"${boundary}"` : boundary}`,
    `multipart/form-data;boundary=${boundary};charset=utf-8`,
    "multipart/form-data",
    `multipart/mixed; boundary=${boundary}`,
    `MULTIPART/FORM-DATA; BOUNDARY=${boundary}`,
    `multipart/form-data; boundary=${boundary}; boundary=other`,
  ]);
  const eol = wellFormed || rng.next() < 0.85 ? "\r\n" : "\n";
  const parts: Uint8Array<ArrayBuffer>[] = [];
  const how: string[] = [];
  if (rng.next() < 0.2) parts.push(enc.encode(`preamble${eol}`));
  const count = rng.int(5);
  for (let i = 0; i < count; i++) {
    const name = rng.pick(["file", "file", "metadata", "file_metadata", "variants", "mode", "callback_url", "other", "", 'fi"le', "file\u0000"]);
    const headerLines: string[] = [];
    const disposition = rng.pick([
      `form-data; name="${name}"; filename="a${i}.jpg"`,
      `form-data; name="${name}"`,
      `form-data; name=${name}; filename*=UTF-8''%e2%82%ac%ff.png`,
      `form-data; filename="noname.png"`,
      `attachment; name="${name}"`,
      `form-data; name="${name}"; filename="${"x".repeat(rng.int(3000))}"`,
      `form-data; name="${name}"; filename="../../etc/passwd"`,
    ]);
    if (rng.next() < 0.95) headerLines.push(`Content-Disposition: ${disposition}`);
    if (rng.next() < 0.5) headerLines.push(`Content-Type: ${rng.pick(["image/jpeg", "text/html", "image/svg+xml", "application/octet-stream", ""])}`);
    if (!wellFormed && rng.next() < 0.05) headerLines.push(`X-Long: ${"y".repeat(17 * 1024)}`);
    if (!wellFormed && rng.next() < 0.1) headerLines.push("no colon here");
    let content: Uint8Array<ArrayBuffer>;
    const kind = rng.int(5);
    if (kind === 3 && wellFormed) content = new Uint8Array(0);
    else if (kind === 0 || name === "file") content = rng.next() < 0.6 ? image : image.slice(0, rng.int(image.length));
    else if (kind === 1) content = enc.encode(rng.pick(['{"a":"b"}', "{", "[]", "null", '{"k":' + '"v"'.repeat(2) + "}", JSON.stringify({ x: "y".repeat(9000) }), "sync", "async", '{"thumb":"w=100"}', "http://127.0.0.1/"]));
    else if (kind === 2) content = rng.bytes(rng.int(2048));
    else if (kind === 3) content = enc.encode(`--${boundary}${eol}`);
    else content = new Uint8Array(0);
    parts.push(enc.encode(`--${boundary}${eol}${headerLines.join(eol)}${eol}${eol}`), content, enc.encode(eol));
    how.push(`${name || "(empty)"}:${content.length}`);
  }
  const ending = wellFormed ? 0 : rng.int(4);
  if (ending === 0) parts.push(enc.encode(`--${boundary}--${eol}`));
  else if (ending === 1) parts.push(enc.encode(`--${boundary}--`));
  else if (ending === 2) parts.push(rng.bytes(rng.int(64)));
  // ending 3: no closing boundary at all
  return { contentType, body: concat(parts), how: `${contentType.slice(0, 60)} parts=[${how.join(",")}] end=${ending}` };
}

const headerValue = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.json({ maxDepth: 2 }),
  fc.constantFrom('{"a":"b"}', '{"a":1}', "{", `{"${"k".repeat(70)}":"v"}`, JSON.stringify(Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`k${i}`, "v"])))),
);

// ---------------------------------------------------------------------------------------------
// The run.

interface Context {
  readonly opts: FuzzOptions;
  readonly rng: Rng;
  readonly stats: Record<Category, CategoryStats>;
  readonly failures: Failure[];
  undecodableOriginals: number;
  undecodableSamples: string[];
  duringReload: Failure[];
  /** 5xx and connection failures, judged when the run ends against the reloads wrangler dev reported. */
  suspects: Array<{ failure: Failure; at: number; payload: Uint8Array<ArrayBuffer> | undefined; contentType: string | undefined }>;
  tenant: { key: string };
  seeds: string[];
  seedBytes: Uint8Array<ArrayBuffer>;
}

function emptyStats(): CategoryStats {
  return { inputs: 0, requests: 0, s2xx: 0, s3xx: 0, s4xx: 0, s429: 0, s5xx: 0, images: 0, imagesDecoded: 0, failures: 0 };
}

async function createTenant(baseUrl: string, adminKey: string): Promise<{ key: string }> {
  const response = await fetch(`${baseUrl}/v1/tenants`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify({ name: `fuzz-${Date.now()}` }),
  });
  if (response.status !== 201) throw new Error(`tenant: ${response.status} ${await response.text()}`);
  return { key: ((await response.json()) as { key: { key: string } }).key.key };
}

/** Uploads the seed JPEG with random trailing bytes (a new image id each time: the rendition cap is per image). */
async function freshSeed(ctx: Context): Promise<string> {
  const bytes = concat([ctx.seedBytes, ctx.rng.bytes(16)]);
  const response = await fetch(`${ctx.opts.baseUrl}/v1/images`, { method: "PUT", headers: { authorization: `Bearer ${ctx.tenant.key}` }, body: bytes });
  if (response.status === 429) {
    await response.body?.cancel();
    ctx.tenant = await createTenant(ctx.opts.baseUrl, ctx.opts.adminKey);
    return freshSeed(ctx);
  }
  if (response.status !== 201) throw new Error(`seed upload: ${response.status} ${await response.text()}`);
  const [id] = uploadedIds(await response.json());
  if (!id) throw new Error("seed upload returned no id");
  return id;
}

function recordFailure(ctx: Context, failure: Failure, payload?: Uint8Array<ArrayBuffer>, contentType?: string): void {
  if (failure.kind === "5xx" || failure.kind === "connection") {
    ctx.suspects.push({ failure, at: Date.now(), payload, contentType });
    return;
  }
  keepFailure(ctx, failure, payload, contentType);
}

/**
 * wrangler dev rebuilds and restarts the worker when its sources or static assets change (other
 * work in the checkout), and requests in flight then fail ("Your worker restarted mid-request").
 * A 5xx or connection failure is excused only when wrangler dev itself reported a reload in
 * progress at that moment; every other one is a failure.
 */
function settleSuspects(ctx: Context, reloads: readonly Reload[]): void {
  for (const { failure, at, payload, contentType } of ctx.suspects) {
    if (reloadAt(reloads, at)) {
      ctx.duringReload.push(failure);
      if (failure.kind === "5xx") ctx.stats[failure.category].s5xx--;
    } else {
      keepFailure(ctx, failure, payload, contentType);
    }
  }
  ctx.suspects = [];
}

function keepFailure(ctx: Context, failure: Failure, payload?: Uint8Array<ArrayBuffer>, contentType?: string): void {
  ctx.stats[failure.category].failures++;
  let file: string | undefined;
  if (ctx.opts.outDir && ctx.failures.length < 200) {
    mkdirSync(ctx.opts.outDir, { recursive: true });
    file = join(ctx.opts.outDir, `failure-${ctx.failures.length}-${failure.category}.json`);
    writeFileSync(file, JSON.stringify({ ...failure, contentType, payloadBase64: payload ? Buffer.from(payload).toString("base64") : undefined }, null, 2));
  }
  ctx.failures.push({ ...failure, ...(file ? { file } : {}) });
}

/** Sends one request and checks the answer; returns the response body when it is JSON. */
async function send(
  ctx: Context,
  category: Category,
  url: string,
  init: RequestInit,
  describe: string,
  payload?: Uint8Array<ArrayBuffer>,
  contentType?: string,
): Promise<{ status: number; json?: unknown } | undefined> {
  const stats = ctx.stats[category];
  stats.requests++;
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(90_000) });
  } catch (error) {
    const message = String((error as Error).cause ?? error);
    // Node refuses some header values before sending: not the server's doing.
    if (error instanceof TypeError && /header|ByteString|invalid/i.test(String(error.message)) && !/fetch failed/.test(error.message)) return undefined;
    recordFailure(ctx, { category, kind: "connection", request: describe, detail: message }, payload, contentType);
    return undefined;
  }
  const status = response.status;
  const type = response.headers.get("content-type") ?? "";
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (status >= 500) {
    stats.s5xx++;
    recordFailure(ctx, { category, kind: "5xx", request: describe, status, detail: new TextDecoder().decode(bytes.slice(0, 500)) }, payload, contentType);
    return { status };
  }
  if (response.headers.get("x-content-type-options") !== "nosniff") {
    recordFailure(ctx, { category, kind: "missing-nosniff", request: describe, status, detail: type });
  }
  if (status === 429) stats.s429++;
  if (status >= 400) stats.s4xx++;
  else if (status >= 300) stats.s3xx++;
  else stats.s2xx++;

  if (status >= 400) {
    if (type !== "application/problem+json") recordFailure(ctx, { category, kind: "bad-content-type", request: describe, status, detail: type }, payload);
    return { status, json: safeJson(bytes) };
  }
  if (status === 204 || status === 304 || init.method === "HEAD") return { status };
  if (type === "application/json") return { status, json: safeJson(bytes) };
  if (RASTER.test(type)) {
    stats.images++;
    const rendition = new URL(url).search !== "";
    try {
      // Renditions are our encoder's output: they must decode strictly. Originals are the
      // uploader's bytes served verbatim: they must decode leniently.
      await sharp(bytes, { failOn: rendition ? "error" : "none", limitInputPixels: false, animated: false }).raw().toBuffer();
      stats.imagesDecoded++;
    } catch (error) {
      if (rendition) recordFailure(ctx, { category, kind: "undecodable-rendition", request: describe, status, detail: String(error) }, payload);
      else {
        ctx.undecodableOriginals++;
        if (ctx.undecodableSamples.length < 8) ctx.undecodableSamples.push(`${describe} :: ${String(error).slice(0, 120)}`);
      }
    }
    return { status };
  }
  recordFailure(ctx, { category, kind: "bad-content-type", request: describe, status, detail: type }, payload);
  return { status };
}

function safeJson(bytes: Uint8Array<ArrayBuffer>): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}

async function fuzzQuery(ctx: Context): Promise<void> {
  ctx.stats.query.inputs++;
  const valid = ctx.rng.next() < 0.4;
  const [query] = fc.sample(valid ? validQueryArbitrary : queryArbitrary, { numRuns: 1, seed: ctx.rng.int(2 ** 31) });
  const id = ctx.rng.pick(ctx.seeds);
  let q = query ?? "";
  if (ctx.rng.next() < 0.1) q += `&wm=${ctx.rng.pick(ctx.seeds)}`;
  const url = `${ctx.opts.baseUrl}/i/${id}?${q}`;
  const accept = ctx.rng.pick(["image/avif,image/webp,*/*", "image/webp", "*/*", "text/html"]);
  const result = await send(ctx, "query", url, { headers: { accept } }, `GET ${url} accept=${accept}`);
  if (result?.status === 429) {
    // The rendition cap of this seed or the tenant's render rate: move on to a fresh image.
    if (ctx.rng.next() < 0.5) ctx.tenant = await createTenant(ctx.opts.baseUrl, ctx.opts.adminKey);
    ctx.seeds = [await freshSeed(ctx), await freshSeed(ctx)];
  }
}

async function fuzzMultipart(ctx: Context, images: readonly Uint8Array<ArrayBuffer>[]): Promise<void> {
  ctx.stats.multipart.inputs++;
  const { contentType, body, how } = randomMultipart(ctx.rng, ctx.rng.pick(images));
  const result = await send(
    ctx,
    "multipart",
    `${ctx.opts.baseUrl}/v1/images`,
    { method: "POST", headers: { authorization: `Bearer ${ctx.tenant.key}`, "content-type": contentType }, body },
    `POST /v1/images ${how}`,
    body,
    contentType,
  );
  await deleteUploaded(ctx, result?.json);
}

async function fuzzHeaders(ctx: Context, images: readonly Uint8Array<ArrayBuffer>[]): Promise<void> {
  ctx.stats.headers.inputs++;
  const [meta, disposition, variants, other] = fc.sample(fc.tuple(headerValue, headerValue, headerValue, headerValue), { numRuns: 1, seed: ctx.rng.int(2 ** 31) })[0] ?? [];
  const headers: Record<string, string> = { authorization: `Bearer ${ctx.tenant.key}` };
  if (ctx.rng.next() < 0.7) headers["x-metadata"] = String(meta);
  if (ctx.rng.next() < 0.5) headers["content-disposition"] = `attachment; ${ctx.rng.next() < 0.5 ? "filename*=UTF-8''" : "filename="}${String(disposition)}`;
  if (ctx.rng.next() < 0.3) headers["x-variants"] = String(variants);
  if (ctx.rng.next() < 0.3) headers["content-type"] = String(other);
  if (ctx.rng.next() < 0.2) headers["if-none-match"] = String(other);
  if (ctx.rng.next() < 0.1) headers["x-big"] = "z".repeat(8000 + ctx.rng.int(9000));
  const target = ctx.rng.int(4);
  if (target === 0) {
    const body = ctx.rng.pick(images);
    const query = ctx.rng.next() < 0.5 ? `?filename=${encodeURIComponent(String(disposition))}&mode=${ctx.rng.pick(["sync", "async", "x"])}` : "";
    const result = await send(ctx, "headers", `${ctx.opts.baseUrl}/v1/images${query}`, { method: "PUT", headers, body }, `PUT /v1/images${query} ${JSON.stringify(headers).slice(0, 300)}`);
    await deleteUploaded(ctx, result?.json);
  } else if (target === 1) {
    await send(ctx, "headers", `${ctx.opts.baseUrl}/i/${ctx.rng.pick(ctx.seeds)}?w=50`, { headers }, `GET /i w=50 ${JSON.stringify(headers).slice(0, 300)}`);
  } else if (target === 2) {
    const body = enc.encode(String(meta));
    await send(ctx, "headers", `${ctx.opts.baseUrl}/v1/images/${ctx.rng.pick(ctx.seeds)}`, { method: "PATCH", headers: { ...headers, "content-type": "application/json" }, body }, `PATCH metadata ${String(meta).slice(0, 200)}`);
  } else {
    const path = ctx.rng.pick(["/v1/images", "/v1/keys", "/v1/jobs", "/v1/sign", "/v1/tenant", "/v1/presets/x"]);
    const method = ctx.rng.pick(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
    const body = method === "GET" || method === "OPTIONS" ? undefined : enc.encode(String(meta));
    await send(ctx, "headers", ctx.opts.baseUrl + path, { method, headers: { ...headers, "content-type": "application/json" }, ...(body ? { body } : {}) }, `${method} ${path} ${String(meta).slice(0, 200)}`);
  }
}

const TRANSFORMS = ["w=64", "w=200&fmt=webp", "w=120&h=80&fit=cover&fmt=png", "rot=90&w=100&fmt=jpeg&q=40", "w=50&blur=3&fmt=auto", "h=40&fit=pad&bg=ff000080&fmt=png"];

async function fuzzMutated(ctx: Context, images: readonly Uint8Array<ArrayBuffer>[], names: readonly string[], via: "put" | "post"): Promise<void> {
  const category: Category = via === "put" ? "mutated-put" : "mutated-post";
  ctx.stats[category].inputs++;
  const index = ctx.rng.int(images.length);
  const source = images[index] ?? new Uint8Array(0);
  const { bytes, how } = mutateImage(source, ctx.rng.pick(images), ctx.rng);
  const describe = `${via.toUpperCase()} mutated ${names[index]} ${how} (${bytes.length} bytes)`;
  let result;
  if (via === "put") {
    result = await send(ctx, category, `${ctx.opts.baseUrl}/v1/images`, { method: "PUT", headers: { authorization: `Bearer ${ctx.tenant.key}` }, body: bytes }, describe, bytes);
  } else {
    const form = new FormData();
    form.append("file", new Blob([bytes]), "m.bin");
    result = await send(ctx, category, `${ctx.opts.baseUrl}/v1/images`, { method: "POST", headers: { authorization: `Bearer ${ctx.tenant.key}` }, body: form }, describe, bytes);
  }
  if (result?.status === 429) ctx.tenant = await createTenant(ctx.opts.baseUrl, ctx.opts.adminKey);
  const ids = uploadedIds(result?.json);
  for (const id of ids) {
    await send(ctx, category, `${ctx.opts.baseUrl}/i/${id}`, {}, `${describe} -> GET original`, bytes);
    const picks = [ctx.rng.pick(TRANSFORMS), ctx.rng.pick(TRANSFORMS)];
    for (const params of new Set(picks)) {
      await send(ctx, category, `${ctx.opts.baseUrl}/i/${id}?${params}`, { headers: { accept: "image/avif,image/webp" } }, `${describe} -> GET ?${params}`, bytes);
    }
  }
  await deleteUploaded(ctx, result?.json);
}

function uploadedIds(json: unknown): string[] {
  if (typeof json !== "object" || json === null) return [];
  const record = json as { id?: unknown; images?: unknown };
  if (typeof record.id === "string") return [record.id];
  if (Array.isArray(record.images)) return record.images.flatMap((image: unknown) => (typeof image === "object" && image && typeof (image as { id?: unknown }).id === "string" ? [(image as { id: string }).id] : []));
  return [];
}

async function deleteUploaded(ctx: Context, json: unknown): Promise<void> {
  for (const id of uploadedIds(json)) {
    if (ctx.seeds.includes(id)) continue;
    const response = await fetch(`${ctx.opts.baseUrl}/v1/images/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${ctx.tenant.key}` } }).catch(() => undefined);
    await response?.body?.cancel();
  }
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const rng = new Rng(seed);
  const { dir, names: all } = corpusFiles((name) => /\.(jpe?g|png|gif|webp|avif)$/.test(name));
  // Small files keep each input fast; every format is represented.
  const chosen = all.filter((name) => readCorpusFile(dir, name).length <= 150_000);
  const images = chosen.map((name) => readCorpusFile(dir, name));
  const seedName = chosen.find((name) => name.includes("photo-small-aero1")) ?? chosen.find((name) => name.endsWith(".jpg")) ?? "";
  const ctx: Context = {
    opts,
    rng,
    stats: Object.fromEntries(CATEGORIES.map((c) => [c, emptyStats()])) as Record<Category, CategoryStats>,
    failures: [],
    undecodableOriginals: 0,
    undecodableSamples: [],
    duringReload: [],
    suspects: [],
    tenant: await createTenant(opts.baseUrl, opts.adminKey),
    seeds: [],
    seedBytes: readCorpusFile(dir, seedName),
  };
  ctx.seeds = [await freshSeed(ctx), await freshSeed(ctx)];

  const started = Date.now();
  const deadline = Date.now() + opts.seconds * 1000;
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const pick = rng.int(10);
      if (pick < 3) await fuzzQuery(ctx);
      else if (pick < 5) await fuzzMultipart(ctx, images);
      else if (pick < 6) await fuzzHeaders(ctx, images);
      else if (pick < 8) await fuzzMutated(ctx, images, chosen, "put");
      else await fuzzMutated(ctx, images, chosen, "post");
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));

  let aliveAtEnd = false;
  try {
    const response = await fetch(`${opts.baseUrl}/i/${ctx.seeds[0]}?w=10`, { signal: AbortSignal.timeout(30_000) });
    aliveAtEnd = response.status === 200 || response.status === 429;
    await response.body?.cancel();
  } catch {
    aliveAtEnd = false;
  }
  const reloads = opts.reloads?.() ?? [];
  settleSuspects(ctx, reloads);
  const reloadsReported = reloadsBetween(reloads, started, Date.now()).length;
  return { seed, seconds: opts.seconds, stats: ctx.stats, failures: ctx.failures, acceptedUndecodableOriginals: ctx.undecodableOriginals, undecodableSamples: ctx.undecodableSamples, reloadsReported, duringReload: ctx.duringReload, aliveAtEnd };
}

export function formatReport(report: FuzzReport): string {
  const header = ["category", "inputs", "requests", "2xx", "3xx", "4xx", "(429)", "5xx", "images", "decoded", "failures"];
  const rows = CATEGORIES.map((c) => {
    const s = report.stats[c];
    return [c, s.inputs, s.requests, s.s2xx, s.s3xx, s.s4xx, s.s429, s.s5xx, s.images, s.imagesDecoded, s.failures].map(String);
  });
  const total = ["total", ...header.slice(1).map((_, i) => String(rows.reduce((n, row) => n + Number(row[i + 1]), 0)))];
  const table = [header, ...rows, total];
  const widths = header.map((_, i) => Math.max(...table.map((row) => (row[i] ?? "").length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ");
  const kinds = new Map<string, number>();
  for (const failure of report.failures) kinds.set(failure.kind, (kinds.get(failure.kind) ?? 0) + 1);
  return [
    `fuzz: ${report.seconds} s, seed ${report.seed}`,
    ...table.map(line),
    `failures by kind: ${kinds.size === 0 ? "none" : [...kinds].map(([k, n]) => `${k}=${n}`).join(", ")}`,
    `accepted originals sharp cannot decode even leniently (served verbatim, not failures): ${report.acceptedUndecodableOriginals}`,
    ...report.undecodableSamples.map((sample) => `  e.g. ${sample.slice(0, 260)}`),
    `wrangler dev reloads reported during the run: ${report.reloadsReported}; 5xx or connection failures while one was in progress (not failures): ${report.duringReload.length}${report.duringReload.length ? ` (${[...new Set(report.duringReload.map((f) => f.detail.slice(0, 60)))].join(" | ")})` : ""}`,
    `wrangler dev alive and answering at the end: ${report.aliveAtEnd ? "yes" : "NO"}`,
    ...report.failures.slice(0, 20).map((f) => `  ${f.kind} ${f.status ?? ""} ${f.request.slice(0, 200)} :: ${f.detail.slice(0, 200)}${f.file ? ` (${f.file})` : ""}`),
  ].join("\n");
}
