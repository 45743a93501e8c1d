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
 * Instance and memory: one instance per isolate, created lazily from the imported
 * `WebAssembly.Module` (never compiled from bytes at run time). Each decode rewinds the
 * decoder's arena, copies the file in, and decodes into an RGBA buffer inside WASM memory;
 * the returned `data` is a VIEW of that memory, valid until the next call into this module
 * (or `release()`). Use it synchronously (no `await` between decoding and consuming it), or
 * copy it. Peak WASM memory of a decode is: file size + output RGBA + a few MCU rows (baseline),
 * plus, for progressive or multi-scan files, the coefficients the chosen scale keeps
 * (2 bytes x (8/s)^2 per block, plus 8 bytes per block below 1/1). WASM memory never shrinks:
 * `release()` drops the instance when it grew past RETAIN_BYTES, so the garbage collector can
 * free it, and the next decode instantiates a fresh one (~1 ms).
 *
 * For Node (tests, benchmarks), `createNativeJpeg(module)` builds the same API over a module
 * compiled by the caller; the default functions use the imported module.
 */
import jpegWasm from "../../wasm/jpeg/jpeg.wasm";
import { ProblemError } from "../errors";

/** Instances whose memory grew past this are dropped after use instead of kept warm. */
const RETAIN_BYTES = 48 * 1024 * 1024;

export type ScaleShift = 0 | 1 | 2 | 3;

export type NativeJpegColor = "gray" | "ycbcr" | "rgb" | "cmyk" | "ycck";

export interface NativeJpegProbe {
  readonly width: number;
  readonly height: number;
  readonly components: number;
  readonly progressive: boolean;
  readonly color: NativeJpegColor;
  /** False when the decoder cannot handle the file; `reason` says why (use the fallback). */
  readonly supported: boolean;
  readonly reason?: string;
}

export interface NativeJpegImage {
  readonly width: number;
  readonly height: number;
  /** RGBA8, a view into WASM memory: valid until the next call into this module. */
  readonly data: Uint8ClampedArray;
  /** False when corrupt or truncated entropy data was tolerated (`allowCorrupt`). */
  readonly complete: boolean;
  /** Frees the decoder's memory for reuse; `data` must not be used afterwards. */
  release(): void;
}

export interface NativeJpegDecodeOptions {
  /**
   * Decode truncated or corrupt scan data as far as it goes (missing parts grey or blurred,
   * like browsers) instead of failing with 422. Default false.
   */
  readonly allowCorrupt?: boolean;
}

export interface NativeJpeg {
  probe(bytes: Uint8Array): NativeJpegProbe;
  decode(bytes: Uint8Array, scaleShift: ScaleShift, options?: NativeJpegDecodeOptions): NativeJpegImage;
  memoryBytes(): number;
}

interface JpegExports {
  readonly memory: WebAssembly.Memory;
  alloc(n: number): number;
  reset(): void;
  jpeg_header(ptr: number, len: number): number;
  jpeg_width(): number;
  jpeg_height(): number;
  jpeg_components(): number;
  jpeg_progressive(): number;
  jpeg_color(): number;
  jpeg_unsupported_reason(): number;
  jpeg_decode(ptr: number, len: number, shift: number, flags: number): number;
  jpeg_status(): number;
  jpeg_out_width(): number;
  jpeg_out_height(): number;
}

// Status codes of jpeg.c.
const ST_OK = 0;
const ST_WARN_CORRUPT = 1;
const ER_NOT_JPEG = -1;
const ER_TRUNCATED = -2;
const ER_BAD_HEADER = -3;
const ER_UNSUPPORTED = -4;
const ER_NO_MEMORY = -5;
const ER_CORRUPT_DATA = -6;
const ER_TOO_LARGE = -7;
const FLAG_STRICT = 1;

const COLORS: readonly NativeJpegColor[] = ["gray", "ycbcr", "rgb", "cmyk", "ycck"];

const UNSUPPORTED_REASONS: Readonly<Record<number, string>> = {
  1: "arithmetic coding",
  2: "lossless or hierarchical JPEG",
  3: "sample precision other than 8 bits",
  4: "unsupported sampling factors",
  5: "unsupported number of components",
  6: "height defined by a DNL marker",
  7: "4 components without an Adobe marker",
  8: "no frame header",
};

const EXPORT_NAMES = [
  "alloc", "reset", "jpeg_header", "jpeg_width", "jpeg_height", "jpeg_components", "jpeg_progressive",
  "jpeg_color", "jpeg_unsupported_reason", "jpeg_decode", "jpeg_status", "jpeg_out_width", "jpeg_out_height",
] as const;

function exportsOf(instance: WebAssembly.Instance): JpegExports {
  const ex = instance.exports;
  if (!(ex["memory"] instanceof WebAssembly.Memory)) throw new Error("jpeg.wasm: no exported memory");
  for (const name of EXPORT_NAMES) {
    if (typeof ex[name] !== "function") throw new Error(`jpeg.wasm: missing export ${name}`);
  }
  return ex as unknown as JpegExports;
}

function invalid(detail: string): ProblemError {
  return new ProblemError(422, "invalid-image", detail);
}

function copyIn(e: JpegExports, bytes: Uint8Array): number {
  e.reset();
  const ptr = e.alloc(bytes.length);
  if (ptr === 0) throw new ProblemError(413, "image-too-large", "The image file is too large to decode.");
  new Uint8Array(e.memory.buffer, ptr, bytes.length).set(bytes);
  return ptr;
}

function statusError(status: number): ProblemError {
  switch (status) {
    case ER_NOT_JPEG:
      return invalid("The file is not a JPEG image.");
    case ER_TRUNCATED:
      return invalid("The JPEG file is truncated.");
    case ER_BAD_HEADER:
      return invalid("The JPEG file has malformed headers.");
    case ER_CORRUPT_DATA:
      return invalid("The JPEG image data is corrupt or truncated.");
    case ER_UNSUPPORTED:
      return new ProblemError(415, "unsupported-format", "This JPEG variant is not supported by the native decoder.");
    case ER_NO_MEMORY:
    case ER_TOO_LARGE:
      return new ProblemError(413, "image-too-large", "The JPEG image is too large to decode.");
    default:
      return invalid(`The JPEG file could not be decoded (status ${status}).`);
  }
}

/**
 * The decoder over a compiled module. Holds one instance (created on first use) and replaces it
 * after a decode that left it holding more than RETAIN_BYTES.
 */
export function createNativeJpeg(module: WebAssembly.Module): NativeJpeg {
  let current: JpegExports | undefined;
  let generation = 0;
  const get = (): JpegExports => (current ??= exportsOf(new WebAssembly.Instance(module, {})));

  return {
    probe(bytes: Uint8Array): NativeJpegProbe {
      const e = get();
      const ptr = copyIn(e, bytes);
      const status = e.jpeg_header(ptr, bytes.length);
      const width = e.jpeg_width();
      const height = e.jpeg_height();
      const reasonCode = e.jpeg_unsupported_reason();
      const probe = {
        width,
        height,
        components: e.jpeg_components(),
        progressive: e.jpeg_progressive() === 1,
        color: COLORS[e.jpeg_color()] ?? "ycbcr",
      };
      e.reset();
      generation++;
      if (status < 0 && reasonCode === 0) throw statusError(status);
      if (reasonCode !== 0) return { ...probe, supported: false, reason: UNSUPPORTED_REASONS[reasonCode] ?? "unsupported" };
      return { ...probe, supported: true };
    },

    decode(bytes: Uint8Array, scaleShift: ScaleShift, options: NativeJpegDecodeOptions = {}): NativeJpegImage {
      if (!Number.isInteger(scaleShift) || scaleShift < 0 || scaleShift > 3) throw new RangeError(`scaleShift ${scaleShift}`);
      const e = get();
      // Synchronous from here until the caller has consumed `data`: the instance is shared.
      const ptr = copyIn(e, bytes);
      const out = e.jpeg_decode(ptr, bytes.length, scaleShift, options.allowCorrupt === true ? 0 : FLAG_STRICT);
      const status = e.jpeg_status();
      if (out === 0 || (status !== ST_OK && status !== ST_WARN_CORRUPT)) {
        e.reset();
        throw statusError(status === ST_OK ? ER_CORRUPT_DATA : status);
      }
      const width = e.jpeg_out_width();
      const height = e.jpeg_out_height();
      const data = new Uint8ClampedArray(e.memory.buffer, out, width * height * 4);
      const mine = ++generation;
      const instance = e;
      return {
        width,
        height,
        data,
        complete: status === ST_OK,
        release(): void {
          if (mine !== generation || current !== instance) return;
          instance.reset();
          if (instance.memory.buffer.byteLength > RETAIN_BYTES) current = undefined;
        },
      };
    },

    memoryBytes(): number {
      return current === undefined ? 0 : current.memory.buffer.byteLength;
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
const native = (): NativeJpeg => (shared ??= createNativeJpeg(jpegWasm));

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
  return shared === undefined ? 0 : shared.memoryBytes();
}
