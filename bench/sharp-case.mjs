// One sharp case in a fresh Node process, so its memory high-water belongs to this case alone.
//   node bench/sharp-case.mjs <file> <webp800|webp2048|jpeg200> <runs>
// Prints one JSON line: per-run total ms, full-decode ms, RSS before any work and peak RSS.
import { readFileSync, writeFileSync } from "node:fs";
import sharp from "sharp";

const [file, op, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 5);

// Single-threaded: one libvips worker thread, no operation cache.
sharp.concurrency(1);
sharp.cache(false);

// Same requests as the worker's: w=800&fmt=webp&q=80 and w=200&fmt=jpeg (quality 80, progressive
// like our mozjpeg output). fit scale-down = withoutEnlargement. rotate() = EXIF orientation.
// sharp shrinks on load (JPEG DCT scaling) inside this one call.
const OPS = {
  webp800: (input) => sharp(input).rotate().resize({ width: 800, withoutEnlargement: true }).webp({ quality: 80 }).toBuffer({ resolveWithObject: true }),
  webp2048: (input) => sharp(input).rotate().resize({ width: 2048, withoutEnlargement: true }).webp({ quality: 80 }).toBuffer({ resolveWithObject: true }),
  jpeg200: (input) => sharp(input).rotate().resize({ width: 200, withoutEnlargement: true }).jpeg({ quality: 80, progressive: true }).toBuffer({ resolveWithObject: true }),
};
const run = OPS[op];
if (run === undefined) throw new Error(`unknown op ${op}`);

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
    output: { format: output.info.format, width: output.info.width, height: output.info.height, bytes: output.info.size },
  }),
);
