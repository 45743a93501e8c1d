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

/** How an output is coded, read from the file: "baseline 4:2:0", "progressive 4:4:4", "lossy", "lossless". */
export async function codingOf(bytes) {
  const data = new Uint8Array(bytes);
  const meta = await sharp(data).metadata();
  if (meta.format === "jpeg") return `${meta.isProgressive ? "progressive" : "baseline"} ${meta.chromaSubsampling ?? "?"}`;
  if (meta.format === "webp") {
    const chunks = webpChunks(data);
    return chunks.includes("VP8L") ? "lossless" : chunks.includes("ALPH") ? "lossy + alpha" : "lossy";
  }
  return meta.format ?? "?";
}
