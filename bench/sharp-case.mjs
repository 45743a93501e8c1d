// One sharp case in a fresh Node process, so its memory high-water belongs to this case alone.
//   node bench/sharp-case.mjs <file> <transform query, e.g. w=200&fmt=jpeg&q=79> <runs>
// Prints one JSON line: per-run total ms, full-decode ms, RSS before any work and peak RSS, the
// settings used, and the output (base64) for bench/run.mjs's size and quality columns.
import { readFileSync, writeFileSync } from "node:fs";
import sharp from "sharp";

const [file, query, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 5);

// Single-threaded: one libvips worker thread, no operation cache.
sharp.concurrency(1);
sharp.cache(false);

const params = new URLSearchParams(query);
const width = Number(params.get("w"));
const format = params.get("fmt");
const quality = Number(params.get("q"));
if (!(width > 0) || !(quality >= 1 && quality <= 100) || (format !== "jpeg" && format !== "webp")) {
  throw new Error(`sharp-case: query needs w, fmt=jpeg|webp and q (got ${query})`);
}

/**
 * The same encoder settings as ours, so sizes and quality compare like with like.
 * JPEG: baseline with optimised Huffman tables (our encoder's output for these sizes, and
 * mozjpeg's on the @jsquash path: outputs up to 0.5 MP are baseline, src/codecs/jpeg.ts).
 * Chroma sampling follows our rule (wasm/jpeg/encode.c choose_sampling, = mozjpeg's
 * auto_subsample): 4:2:0 below q80, 4:2:2 from 80 to 89, 4:4:4 from 90. sharp offers only
 * 4:2:0 and 4:4:4, so for q80-89 it can only give 4:2:0 (run.mjs reads the sampling of both
 * outputs and flags the row); the bench's default JPEG op uses q79, 4:2:0 on both sides.
 * WebP: lossy, libwebp's default preset with method 4 and no sharp YUV, no auto filter,
 * alpha quality 100: src/codecs/webp.ts's WEBP_OPTIONS.
 */
const chroma = quality >= 90 ? "4:4:4" : "4:2:0";
const settings =
  format === "jpeg"
    ? { quality, progressive: false, optimiseCoding: true, chromaSubsampling: chroma, mozjpeg: false }
    : { quality, effort: 4, preset: "default", smartSubsample: false, smartDeblock: false, alphaQuality: 100, lossless: false, nearLossless: false };

// fit scale-down = withoutEnlargement. rotate() = EXIF orientation. sharp shrinks on load (JPEG
// DCT scaling) inside this one call.
const run = (input) => {
  const resized = sharp(input).rotate().resize({ width, withoutEnlargement: true });
  return (format === "jpeg" ? resized.jpeg(settings) : resized.webp(settings)).toBuffer({ resolveWithObject: true });
};

function status(field) {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) * 1024 : NaN;
}

const input = readFileSync(file);
const rssBefore = status("VmRSS");
writeFileSync("/proc/self/clear_refs", "5"); // reset VmHWM to the current RSS
const totals = [];
let output;
for (let i = 0; i < runs; i++) {
  const started = performance.now();
  output = await run(input);
  totals.push(performance.now() - started);
}
const rssPeak = status("VmHWM");

// Approximate decode cost: the whole image to raw pixels, without shrink-on-load (after the
// memory reading, so its full-size buffer does not count above).
const decodes = [];
for (let i = 0; i < runs; i++) {
  const started = performance.now();
  await sharp(input).raw().toBuffer();
  decodes.push(performance.now() - started);
}

console.log(
  JSON.stringify({
    totals,
    decodes,
    rssBefore,
    rssPeak,
    cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
    settings,
    output: { format: output.info.format, width: output.info.width, height: output.info.height, bytes: output.info.size, base64: output.data.toString("base64") },
  }),
);
