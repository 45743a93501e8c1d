import type { ImageFormat, OutputFormat } from "../images/format";

/** Decoded pixels: RGBA, 8 bits per channel, row-major, no padding (stride = width * 4). */
export interface RgbaImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8ClampedArray;
  /** True when some pixel may have alpha < 255. False is a promise: every alpha is 255. */
  readonly hasAlpha: boolean;
}

/**
 * What the caller will do with the pixels next. A decoder that can decode at a reduced scale
 * (JPEG DCT scaling, a future WASM decoder of ours) may return an image no smaller than this;
 * the current decoders ignore it and return full size.
 */
export interface DecodeHint {
  readonly targetWidth?: number;
  readonly targetHeight?: number;
}

/**
 * Decoders that allocate from a header's size before reading pixels (GIF, jpeg-js) refuse
 * more than this; uploads are capped lower (MAX_INPUT_PIXELS) by the header probe anyway.
 */
export const MAX_DECODE_PIXELS = 100_000_000;

export type Decoder = (bytes: Uint8Array, hint?: DecodeHint) => Promise<RgbaImage>;
export type Encoder = (image: RgbaImage, quality: number) => Promise<Uint8Array>;
export type Resizer = (image: RgbaImage, width: number, height: number) => Promise<RgbaImage>;

export type { ImageFormat, OutputFormat };
