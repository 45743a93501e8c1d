/**
 * Our own JPEG decoder (wasm/jpeg/jpeg.c, built by wasm/jpeg/build.sh into the committed
 * wasm/jpeg/jpeg.wasm): baseline and progressive Huffman JPEG, 1/3/4 components (grey, YCbCr,
 * RGB, Adobe CMYK/YCCK), restart markers, any 1..4 sampling factors with power-of-two ratios,
 * and shrink-on-load: the IDCT runs at 8x8, 4x4, 2x2 or 1x1 (scale 1/1, 1/2, 1/4, 1/8), so a
 * 24 MP photo served at 800 px is decoded straight to ~1/4 or 1/8 of its size. Output is RGBA8.
 * EXIF orientation is not applied here.
 *
 * What it does not handle (arithmetic coding, lossless/hierarchical, 12-bit, 2-component,
 * DNL-defined height, odd sampling ratios, 4 components without an Adobe marker) is reported by
 * `probeNativeJpeg(...).supported === false`, from the headers alone: the caller then uses the
 * @jsquash (mozjpeg) path.
 *
 * Instance and memory: each decode takes an instance of the module from the pool in ./native
 * (the same module also holds our resampler; the pipeline uses ./native's sessions directly),
 * copies the file in, and decodes into an RGBA buffer inside WASM memory; the returned `data`
 * is a VIEW of that memory, valid until `release()`, which returns the instance to the pool
 * (kept only while its memory is at most POOL_RETAIN_BYTES; WASM memory never shrinks, so a
 * larger one is dropped for the garbage collector). Peak WASM memory of a decode is: file size
 * + output RGBA + a few MCU rows (baseline), plus, for progressive or multi-scan files, the
 * coefficients the chosen scale keeps (2 bytes x (8/s)^2 per block, plus 8 bytes per block
 * below 1/1).
 *
 * For Node (tests, benchmarks), `createNativeJpeg(module)` builds the same API over a module
 * compiled by the caller; the default functions use the imported module.
 */
import { createNativePool, nativeMemoryBytes, nativePool, type NativeJpegProbe, type NativePool, type ScaleShift } from "./native";

export type { NativeJpegColor, NativeJpegProbe, ScaleShift } from "./native";

export interface NativeJpegImage {
  readonly width: number;
  readonly height: number;
  /** RGBA8, a view into WASM memory: valid until `release()`. */
  readonly data: Uint8ClampedArray;
  /** False when corrupt or truncated entropy data was tolerated (`allowCorrupt`). */
  readonly complete: boolean;
  /** Returns the decoder's memory to the pool; `data` must not be used afterwards. */
  release(): void;
}

export interface NativeJpegDecodeOptions {
  /**
   * Decode truncated or corrupt scan data as far as it goes (missing parts grey or blurred,
   * like browsers) instead of failing with 422. Default false.
   */
  readonly allowCorrupt?: boolean;
  /** CMYK/YCCK only: ink amounts C, M, Y, K in the R, G, B, A bytes (see NativeDecodeOptions). */
  readonly rawCmyk?: boolean;
}

export interface NativeJpeg {
  probe(bytes: Uint8Array): NativeJpegProbe;
  decode(bytes: Uint8Array, scaleShift: ScaleShift, options?: NativeJpegDecodeOptions): NativeJpegImage;
  memoryBytes(): number;
}

/** The decoder over a pool of instances of `module` (see ./native). */
export function createNativeJpeg(module: WebAssembly.Module): NativeJpeg {
  return overPool(createNativePool(module));
}

function overPool(pool: NativePool): NativeJpeg {
  return {
    probe(bytes: Uint8Array): NativeJpegProbe {
      const session = pool.open();
      try {
        return session.probeJpeg(bytes);
      } finally {
        session.release();
      }
    },

    decode(bytes: Uint8Array, scaleShift: ScaleShift, options: NativeJpegDecodeOptions = {}): NativeJpegImage {
      if (!Number.isInteger(scaleShift) || scaleShift < 0 || scaleShift > 3) throw new RangeError(`scaleShift ${scaleShift}`);
      const session = pool.open();
      try {
        session.probeJpeg(bytes);
        const image = session.decodeJpeg(scaleShift, options);
        return { width: image.width, height: image.height, data: image.data, complete: image.complete, release: () => session.release() };
      } catch (error) {
        session.release();
        throw error;
      }
    },

    memoryBytes(): number {
      return pool.memoryBytes();
    },
  };
}

/**
 * The power-of-two shrink-on-load to decode at: the largest reduction (up to 1/8) whose output,
 * ceil(src / 2^s), is still at least the target on both axes (as libvips does). A target of 0
 * leaves that axis unconstrained.
 */
export function chooseScaleShift(srcW: number, srcH: number, targetW: number, targetH: number): ScaleShift {
  let best: ScaleShift = 0;
  for (const s of [1, 2, 3] as const) {
    const w = Math.ceil(srcW / 2 ** s);
    const h = Math.ceil(srcH / 2 ** s);
    if (w >= targetW && h >= targetH && w >= 1 && h >= 1) best = s;
  }
  return best;
}

let shared: NativeJpeg | undefined;
const native = (): NativeJpeg => (shared ??= overPool(nativePool()));

/** Header-only: dimensions and whether the native decoder handles the file (else use @jsquash). */
export function probeNativeJpeg(bytes: Uint8Array): NativeJpegProbe {
  return native().probe(bytes);
}

/**
 * Decodes at 1/2^scaleShift (output ceil(W / 2^s) x ceil(H / 2^s)) to RGBA. Throws ProblemError
 * 422 invalid-image for corrupt or truncated data, 413 when it does not fit in memory, 415 for
 * variants the probe reports as unsupported. The result's `data` is a view valid until the next
 * call into this module.
 */
export function decodeNativeJpeg(bytes: Uint8Array, scaleShift: ScaleShift, options?: NativeJpegDecodeOptions): NativeJpegImage {
  return native().decode(bytes, scaleShift, options);
}

/** Current WASM memory of the shared instance (0 before first use), for benchmarks. */
export function nativeJpegMemoryBytes(): number {
  return nativeMemoryBytes();
}
