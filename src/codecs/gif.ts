/**
 * GIF, first frame only. omggif (pure JS) parses the container (screen, frames, palettes), but
 * its LZW decoder can loop forever on corrupt data (a bit-flipped GIF hung the isolate in our
 * fuzzer), so the frame's LZW stream is decoded here with a loop bounded by the input size.
 * The frame is drawn on a transparent canvas the size of the logical screen, as browsers show
 * the first frame; the transparent palette index becomes alpha 0. Loaded with a dynamic
 * import by ./index, so isolates that never see a GIF do not load it.
 */
import { GifReader } from "omggif";
import { MAX_DECODE_PIXELS, type RgbaImage } from "./types";
import { hasTranslucentPixel } from "./util";

export function decodeGif(bytes: Uint8Array): RgbaImage {
  const reader = new GifReader(bytes);
  if (reader.numFrames() < 1) throw new Error("GIF has no image");
  const { width, height } = reader;
  if (width < 1 || height < 1) throw new Error("GIF has an empty logical screen");
  // The screen size is all a hostile 35-byte GIF needs to claim 65535x65535 (17 GB of RGBA).
  if (width * height > MAX_DECODE_PIXELS) throw new Error(`GIF screen ${width}x${height} is too large to decode`);
  const frame = reader.frameInfo(0);
  if (frame.x + frame.width > width || frame.y + frame.height > height) {
    throw new Error("GIF frame lies outside the logical screen");
  }
  if (frame.palette_offset === null) throw new Error("GIF frame has no palette");
  const indexes = decodeLzw(bytes, frame.data_offset, frame.width * frame.height);
  const data = new Uint8ClampedArray(width * height * 4);
  const rows = frame.interlaced ? interlacedRows(frame.height) : undefined;
  const transparent = frame.transparent_index ?? -1;
  const paletteSize = frame.palette_size ?? 0;
  for (let i = 0, row = 0; row < frame.height; row++) {
    const y = frame.y + (rows ? (rows[row] ?? 0) : row);
    for (let col = 0; col < frame.width; col++, i++) {
      const index = indexes[i] ?? 0;
      if (index === transparent || index >= paletteSize) continue;
      const p = frame.palette_offset + index * 3;
      const o = (y * width + frame.x + col) * 4;
      data[o] = bytes[p] ?? 0;
      data[o + 1] = bytes[p + 1] ?? 0;
      data[o + 2] = bytes[p + 2] ?? 0;
      data[o + 3] = 255;
    }
  }
  return { width, height, data, hasAlpha: hasTranslucentPixel(data) };
}

/** Target row of each stored row of an interlaced frame (passes: every 8th from 0, 8th from 4, 4th from 2, 2nd from 1). */
function interlacedRows(height: number): Uint32Array {
  const rows = new Uint32Array(height);
  let stored = 0;
  for (const [start, step] of [
    [0, 8],
    [4, 8],
    [2, 4],
    [1, 2],
  ] as const) {
    for (let y = start; y < height; y += step) rows[stored++] = y;
  }
  return rows;
}

/**
 * GIF LZW (T. Welch, "A Technique for High-Performance Data Compression", IEEE Computer 17(6),
 * 1984, with the variable code width, clear and end codes of GIF89a's Appendix F): the minimum
 * code size byte at `offset`, then sub-blocks. Every code consumes input
 * bits and each string walk follows prefixes that point strictly backwards, so the loop ends
 * when the input does. Missing pixels (a short or corrupt stream) stay index 0.
 */
function decodeLzw(bytes: Uint8Array, offset: number, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels);
  const minCodeSize = bytes[offset] ?? 0;
  if (minCodeSize < 1 || minCodeSize > 11) throw new Error("GIF has an invalid LZW code size");
  const clear = 1 << minCodeSize;
  const end = clear + 1;
  const prefix = new Int16Array(4096).fill(-1);
  const suffix = new Uint8Array(4096);
  for (let i = 0; i < clear; i++) suffix[i] = i;
  const stack = new Uint8Array(4097);

  let codeSize = minCodeSize + 1;
  let next = end + 1;
  let previous = -1;
  let written = 0;
  let bits = 0;
  let bitCount = 0;
  let pos = offset + 1;
  let blockLeft = 0;

  while (written < pixels) {
    while (bitCount < codeSize) {
      if (blockLeft === 0) {
        blockLeft = bytes[pos++] ?? 0;
        if (blockLeft === 0 || pos >= bytes.length) return out; // end of data
      }
      bits |= (bytes[pos++] ?? 0) << bitCount;
      bitCount += 8;
      blockLeft--;
    }
    const code = bits & ((1 << codeSize) - 1);
    bits >>>= codeSize;
    bitCount -= codeSize;

    if (code === clear) {
      codeSize = minCodeSize + 1;
      next = end + 1;
      previous = -1;
      continue;
    }
    if (code === end) break;
    if (code > next || (code === next && previous === -1)) {
      return out; // corrupt: a code that does not exist yet
    }

    // The string of `code` (or, for the code being defined, of `previous` plus its first byte).
    let depth = 0;
    let walk = code === next ? previous : code;
    while (walk >= 0 && depth < stack.length) {
      stack[depth++] = suffix[walk] ?? 0;
      walk = walk >= clear ? (prefix[walk] ?? -1) : -1;
    }
    const first = stack[depth - 1] ?? 0;
    for (let i = depth - 1; i >= 0 && written < pixels; i--) out[written++] = stack[i] ?? 0;
    if (code === next && written < pixels) out[written++] = first;

    if (previous !== -1 && next < 4096) {
      prefix[next] = previous;
      suffix[next] = first;
      next++;
      if (next === 1 << codeSize && codeSize < 12) codeSize++;
    }
    previous = code;
  }
  return out;
}
