// Size and quality of the bench's outputs, both sides against the same reference: sharp's
// exact-size Lanczos3 resize of the fully decoded source (no shrink-on-load: the source is
// decoded to full-size sRGB pixels first, EXIF orientation applied, then resized to the
// output's exact width and height). Each output is decoded by sharp too, so one decoder
// (libvips) reads both sides. The metrics are test/node/image-compare.ts's (imported, not
// copied): luma SSIM (8x8 windows, stride 4) and RGB PSNR.
import sharp from "sharp";
import { decodeRgba, psnr, sharpFromRaw, ssim, webpChunks } from "../test/node/image-compare.ts";

/**
 * One source photo: decoded once (lazily), and one reference per output size asked for.
 * `release()` drops the decoded pixels (a 50 MP source holds 200 MB).
 */
export function qualityReference(sourceBytes) {
  let decoded;
  const references = new Map();
  async function referenceAt(width, height) {
    const key = `${width}x${height}`;
    let reference = references.get(key);
    if (reference === undefined) {
      decoded ??= await decodeRgba(sharp(sourceBytes, { limitInputPixels: false }).rotate());
      reference = await decodeRgba(sharpFromRaw(decoded).resize(width, height, { fit: "fill", kernel: "lanczos3" }));
      references.set(key, reference);
    }
    return reference;
  }
  return {
    /** SSIM and PSNR of an encoded output against the reference of its own size. */
    async measure(outputBytes) {
      const output = await decodeRgba(new Uint8Array(outputBytes));
      const reference = await referenceAt(output.width, output.height);
      return { width: output.width, height: output.height, ssim: ssim(reference, output), psnr: psnr(reference, output) };
    },
    release() {
      decoded = undefined;
      references.clear();
    },
  };
}

/**
 * The frame header of a JPEG (ITU-T T.81 B.2.2): SOF marker and each component's sampling
 * factors. Read here rather than from sharp's metadata, which reports every subsampled file
 * (4:2:2 included) as "4:2:0".
 */
function jpegFrame(bytes) {
  let p = 2; // after SOI
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) return undefined;
    const marker = bytes[p + 1];
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    const length = (bytes[p + 2] << 8) | bytes[p + 3];
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const count = bytes[p + 9];
      const factors = [];
      for (let i = 0; i < count; i++) {
        const hv = bytes[p + 11 + i * 3];
        factors.push({ h: hv >> 4, v: hv & 15 });
      }
      return { marker, factors };
    }
    if (marker === 0xda) return undefined; // scan before any frame header
    p += 2 + length;
  }
  return undefined;
}

function samplingName(factors) {
  if (factors.length === 1) return "grey";
  const [y, ...chroma] = factors;
  if (!chroma.every((c) => c.h === 1 && c.v === 1)) return factors.map((f) => `${f.h}x${f.v}`).join(",");
  if (y.h === 1 && y.v === 1) return "4:4:4";
  if (y.h === 2 && y.v === 1) return "4:2:2";
  if (y.h === 2 && y.v === 2) return "4:2:0";
  if (y.h === 1 && y.v === 2) return "4:4:0";
  return `${y.h}x${y.v},1x1,1x1`;
}

/** How an output is coded, read from the file: "baseline 4:2:0", "progressive 4:4:4", "lossy", "lossless". */
export async function codingOf(bytes) {
  const data = new Uint8Array(bytes);
  const meta = await sharp(data).metadata();
  if (meta.format === "jpeg") {
    const frame = jpegFrame(data);
    if (frame === undefined) return "jpeg (no frame header)";
    const mode = frame.marker === 0xc2 ? "progressive" : frame.marker === 0xc0 || frame.marker === 0xc1 ? "baseline" : `SOF${frame.marker - 0xc0}`;
    return `${mode} ${samplingName(frame.factors)}`;
  }
  if (meta.format === "webp") {
    const chunks = webpChunks(data);
    return chunks.includes("VP8L") ? "lossless" : chunks.includes("ALPH") ? "lossy + alpha" : "lossy";
  }
  return meta.format ?? "?";
}
