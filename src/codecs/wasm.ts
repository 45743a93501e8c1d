/**
 * The WASM codecs, instantiated lazily from modules imported as modules.
 *
 * Workers refuse to compile WebAssembly from bytes at run time, so every `.wasm` file is an
 * import (wrangler and the vitest pool both turn `import x from "….wasm"` into a compiled
 * `WebAssembly.Module`, compiled once per isolate), and we only ever call
 * `new WebAssembly.Instance(module, imports)`. The `?module` suffix on the two wasm-bindgen
 * modules only steers TypeScript past the `.wasm.d.ts` files shipped beside them; both tools
 * accept it. We bypass the @jsquash wrappers' `init()`: they pick a build by feature
 * detection (the WebP encoder's SIMD check would then need the matching module) and import
 * it dynamically. The Emscripten factories are called directly; PNG and resize get bindings
 * of our own (below).
 *
 * This module holds the instances and exports only functions, never from the main module
 * (a non-handler named export there stops workerd from starting).
 *
 * Concurrency: an instance is shared by every request in the isolate. Each call into it
 * (decode, encode, resize) is synchronous from copying the input in to copying the result
 * out, so two requests can never interleave inside one instance. Keep it that way: no
 * `await` between handing memory to a codec and reading its result.
 *
 * Memory: WASM memory grows to the largest image an instance has handled and never shrinks,
 * and every Emscripten codec starts at 16 MiB, so six warm codecs alone would hold ~100 MiB
 * of a 128 MB isolate. Instantiating from the compiled module costs ~1 ms, so we keep a
 * budget instead: after each call, an instance above WASM_RETAIN_BYTES is dropped, and then
 * the least recently used instances are dropped until all of them together fit in the same
 * budget (the garbage collector frees a dropped instance's memory once no call uses it).
 * `wasmMemory()` reports what each live instance holds.
 *
 * Errors: a codec that throws or traps may leave its heap or stack pointer inconsistent (an
 * exception thrown through WASM frames skips their epilogues), so any error drops the
 * instance too. For the two wasm-bindgen modules (PNG, resize) we therefore use our own small
 * bindings instead of their glue, which keeps a single instance per isolate for good.
 */
import avifDecWasm from "@jsquash/avif/codec/dec/avif_dec.wasm";
import avifDecFactory from "@jsquash/avif/codec/dec/avif_dec.js";
import avifEncWasm from "@jsquash/avif/codec/enc/avif_enc.wasm";
import avifEncFactory from "@jsquash/avif/codec/enc/avif_enc.js";
import jpegDecWasm from "@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm";
import jpegDecFactory from "@jsquash/jpeg/codec/dec/mozjpeg_dec.js";
import jpegEncWasm from "@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm";
import jpegEncFactory from "@jsquash/jpeg/codec/enc/mozjpeg_enc.js";
import pngWasm from "@jsquash/png/codec/pkg/squoosh_png_bg.wasm?module";
import resizeWasm from "@jsquash/resize/lib/resize/pkg/squoosh_resize_bg.wasm?module";
import webpDecWasm from "@jsquash/webp/codec/dec/webp_dec.wasm";
import webpDecFactory from "@jsquash/webp/codec/dec/webp_dec.js";
import webpEncWasm from "@jsquash/webp/codec/enc/webp_enc_simd.wasm";
import webpEncFactory from "@jsquash/webp/codec/enc/webp_enc_simd.js";

/** What the C++ decoders hand back: an `ImageData` (or our stand-in for it). */
export interface WasmImageData {
  readonly data: Uint8ClampedArray;
  readonly width: number;
  readonly height: number;
}

/** mozjpeg's jpeg_compress options as the squoosh binding reads them. */
export interface MozJpegOptions {
  quality: number;
  baseline: boolean;
  arithmetic: boolean;
  progressive: boolean;
  optimize_coding: boolean;
  smoothing: number;
  color_space: number;
  quant_table: number;
  trellis_multipass: boolean;
  trellis_opt_zero: boolean;
  trellis_opt_table: boolean;
  trellis_loops: number;
  auto_subsample: boolean;
  chroma_subsample: number;
  separate_chroma_quality: boolean;
  chroma_quality: number;
}

/** libwebp's WebPConfig fields as the squoosh binding reads them. */
export interface WebpOptions {
  quality: number;
  target_size: number;
  target_PSNR: number;
  method: number;
  sns_strength: number;
  filter_strength: number;
  filter_sharpness: number;
  filter_type: number;
  partitions: number;
  segments: number;
  pass: number;
  show_compressed: number;
  preprocessing: number;
  autofilter: number;
  partition_limit: number;
  alpha_compression: number;
  alpha_filtering: number;
  alpha_quality: number;
  lossless: number;
  exact: number;
  image_hint: number;
  emulate_jpeg_size: number;
  thread_level: number;
  low_memory: number;
  near_lossless: number;
  use_delta_palette: number;
  use_sharp_yuv: number;
}

/** libavif encoder settings as the squoosh binding reads them. */
export interface AvifOptions {
  quality: number;
  qualityAlpha: number;
  denoiseLevel: number;
  tileColsLog2: number;
  tileRowsLog2: number;
  speed: number;
  subsample: number;
  chromaDeltaQ: boolean;
  sharpness: number;
  tune: number;
  enableSharpYUV: boolean;
  bitDepth: 8 | 10 | 12;
  lossless: boolean;
}

export interface JpegDecoderModule {
  decode(data: Uint8Array, preserveOrientation: boolean): WasmImageData | null;
}
export interface JpegEncoderModule {
  encode(data: Uint8ClampedArray, width: number, height: number, options: MozJpegOptions): Uint8Array;
}
export interface WebpDecoderModule {
  decode(data: Uint8Array): WasmImageData | null;
}
export interface WebpEncoderModule {
  encode(data: Uint8ClampedArray, width: number, height: number, options: WebpOptions): Uint8Array | null;
}
export interface AvifDecoderModule {
  decode(data: Uint8Array, bitDepth: 8): WasmImageData | null;
}
export interface AvifEncoderModule {
  encode(data: Uint8Array, width: number, height: number, options: AvifOptions): Uint8Array | null;
}
export interface PngModule {
  decode(data: Uint8Array): WasmImageData;
  encode(data: Uint8Array, width: number, height: number, bitDepth: 8): Uint8Array;
}
export interface ResizeModule {
  /** `method`: 0 triangle, 1 catrom, 2 mitchell, 3 lanczos3. `linearRgb`: resample in linear light. */
  resize(
    data: Uint8Array,
    width: number,
    height: number,
    outWidth: number,
    outHeight: number,
    method: number,
    premultiply: boolean,
    linearRgb: boolean,
  ): Uint8ClampedArray;
}

interface EmscriptenOptions {
  noInitialRun: boolean;
  instantiateWasm: (imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance) => void) => WebAssembly.Exports;
}
type EmscriptenFactory<M> = (options: EmscriptenOptions) => Promise<M>;

/** Budget for the linear memory of live codec instances, together (see above). */
export const WASM_RETAIN_BYTES = 48 * 1024 * 1024;

/** A codec instantiated on first use, that can be dropped and rebuilt. */
export interface LazyInstance<M> {
  (): Promise<M>;
  readonly label: string;
  /** Bytes of linear memory the live instance holds (0 when there is none). */
  memoryBytes(): number;
  /** Drops the instance; the next call builds a fresh one. */
  reset(): void;
}

const instances: Array<LazyInstance<unknown>> = [];
/** Instances by recency of use, least recent first. */
let recency: Array<LazyInstance<unknown>> = [];

function lazy<M>(label: string, create: () => Promise<{ api: M; memory: WebAssembly.Memory | undefined }>): LazyInstance<M> {
  let instance: Promise<M> | undefined;
  let memory: WebAssembly.Memory | undefined;
  const get = (): Promise<M> => {
    if (instance === undefined) {
      ensureImageData();
      const created = create().then((built) => {
        memory = built.memory;
        return built.api;
      });
      instance = created;
      // A failed instantiation is retried by the next caller rather than cached forever.
      created.catch(() => {
        if (instance === created) instance = undefined;
      });
    }
    return instance;
  };
  const handle: LazyInstance<M> = Object.assign(get, {
    label,
    memoryBytes: () => (instance === undefined || memory === undefined ? 0 : memory.buffer.byteLength),
    reset: () => {
      instance = undefined;
      memory = undefined;
    },
  });
  instances.push(handle);
  return handle;
}

/** Marks `used` as the most recent and drops instances until the budget holds. */
function enforceBudget(used: LazyInstance<unknown>): void {
  recency = recency.filter((instance) => instance !== used);
  recency.push(used);
  if (used.memoryBytes() > WASM_RETAIN_BYTES) used.reset();
  let total = 0;
  for (const instance of instances) total += instance.memoryBytes();
  for (const instance of recency) {
    if (total <= WASM_RETAIN_BYTES) break;
    if (instance === used) continue;
    total -= instance.memoryBytes();
    instance.reset();
  }
}

function memoryOf(exports: WebAssembly.Exports): WebAssembly.Memory | undefined {
  for (const value of Object.values(exports)) {
    if (value instanceof WebAssembly.Memory) return value;
  }
  return undefined;
}

/** The Emscripten decoders return `new ImageData(...)` (through embind); Workers have none. */
function ensureImageData(): void {
  const scope = globalThis as { ImageData?: unknown };
  if (typeof scope.ImageData === "function") return;
  scope.ImageData = class ImageData implements WasmImageData {
    constructor(
      readonly data: Uint8ClampedArray,
      readonly width: number,
      readonly height: number,
    ) {}
  };
}

function emscripten<M>(label: string, factory: unknown, module: WebAssembly.Module): LazyInstance<M> {
  return lazy(label, async () => {
    let memory: WebAssembly.Memory | undefined;
    const api = await (factory as EmscriptenFactory<M>)({
      noInitialRun: true,
      instantiateWasm: (imports, done) => {
        const wasm = new WebAssembly.Instance(module, imports);
        memory = memoryOf(wasm.exports);
        done(wasm);
        return wasm.exports;
      },
    });
    return { api, memory };
  });
}

/**
 * Runs `use` (synchronous: no await while the codec holds our data) on the instance. After an
 * error or a WASM trap the instance is dropped; after any call the memory budget is enforced.
 */
export async function withInstance<M, R>(instance: LazyInstance<M>, use: (codec: M) => R): Promise<R> {
  const codec = await instance();
  try {
    return use(codec);
  } catch (error) {
    instance.reset();
    throw error;
  } finally {
    enforceBudget(instance);
  }
}

/** The wasm-bindgen plumbing both Rust modules export. */
interface BindgenExports {
  readonly memory: WebAssembly.Memory;
  __wbindgen_add_to_stack_pointer(delta: number): number;
  __wbindgen_malloc(size: number, align: number): number;
  __wbindgen_free(ptr: number, size: number, align: number): void;
}

/**
 * wasm-bindgen's calling convention for a function taking bytes and returning bytes: copy the
 * input in (the callee owns and frees it), call with a return slot on the shadow stack, copy the
 * result out and free it.
 */
function bytesThroughBindgen(
  wasm: BindgenExports,
  input: Uint8Array | Uint8ClampedArray,
  call: (retptr: number, ptr: number, len: number) => void,
): Uint8Array {
  const retptr = wasm.__wbindgen_add_to_stack_pointer(-16);
  try {
    const ptr = wasm.__wbindgen_malloc(input.length, 1) >>> 0;
    new Uint8Array(wasm.memory.buffer).set(input, ptr);
    call(retptr, ptr, input.length);
    const words = new Int32Array(wasm.memory.buffer);
    const outPtr = words[retptr / 4]! >>> 0;
    const outLen = words[retptr / 4 + 1]! >>> 0;
    const out = new Uint8Array(wasm.memory.buffer, outPtr, outLen).slice();
    wasm.__wbindgen_free(outPtr, outLen, 1);
    return out;
  } finally {
    wasm.__wbindgen_add_to_stack_pointer(16);
  }
}

/** wasm-bindgen exports of squoosh's resize crate. */
interface ResizeExports extends BindgenExports {
  resize(
    retptr: number,
    ptr: number,
    len: number,
    width: number,
    height: number,
    outWidth: number,
    outHeight: number,
    method: number,
    premultiply: boolean,
    linearRgb: boolean,
  ): void;
}

/**
 * Our own binding for the resize module (its wasm-bindgen glue keeps one instance per isolate
 * for good; this one can be dropped). Same calls as the glue's `resize`: copy in, run, copy out.
 */
function resizeBinding(module: WebAssembly.Module): LazyInstance<ResizeModule> {
  return lazy("resize", async () => {
    const wasm = new WebAssembly.Instance(module, { wbg: {} }).exports as unknown as ResizeExports;
    const api: ResizeModule = {
      resize(data, width, height, outWidth, outHeight, method, premultiply, linearRgb) {
        const out = bytesThroughBindgen(wasm, data, (retptr, ptr, len) =>
          wasm.resize(retptr, ptr, len, width, height, outWidth, outHeight, method, premultiply, linearRgb),
        );
        return new Uint8ClampedArray(out.buffer, out.byteOffset, out.byteLength);
      },
    };
    return { api, memory: wasm.memory };
  });
}

/** wasm-bindgen exports of squoosh's PNG crate (the 8-bit paths we use). */
interface PngExports extends BindgenExports {
  decode(ptr: number, len: number): number;
  encode(retptr: number, ptr: number, len: number, width: number, height: number, bitDepth: number): void;
}

/**
 * Our own binding for the PNG module, equivalent to its wasm-bindgen glue for `decode` and
 * `encode`: a table of JS objects the module refers to by index, and the six imports it needs
 * (matched by name prefix, since their suffixes are build hashes).
 */
function pngBinding(module: WebAssembly.Module): LazyInstance<PngModule> {
  return lazy("png", async () => {
    // Slots 128..131 are undefined, null, true, false, as in wasm-bindgen's glue.
    const heap: unknown[] = new Array(128).fill(undefined);
    heap.push(undefined, null, true, false);
    let nextFree = heap.length;
    const add = (value: unknown): number => {
      if (nextFree === heap.length) heap.push(heap.length + 1);
      const index = nextFree;
      nextFree = heap[index] as number;
      heap[index] = value;
      return index;
    };
    const take = (index: number): unknown => {
      const value = heap[index];
      if (index >= 132) {
        heap[index] = nextFree;
        nextFree = index;
      }
      return value;
    };
    let wasm: PngExports | undefined;
    const exports = (): PngExports => {
      if (wasm === undefined) throw new Error("PNG module not instantiated");
      return wasm;
    };
    const implementations: Record<string, (...args: number[]) => unknown> = {
      __wbindgen_memory: () => add(exports().memory),
      __wbg_buffer_: (index) => add((heap[index!] as WebAssembly.Memory).buffer),
      __wbg_newwithbyteoffsetandlength_: (buffer, offset, length) =>
        add(new Uint16Array(heap[buffer!] as ArrayBuffer, offset! >>> 0, length! >>> 0)),
      __wbindgen_object_drop_ref: (index) => {
        take(index!);
      },
      __wbg_newwithownedu8clampedarrayandsh_: (ptr, len, width, height) => {
        const data = new Uint8ClampedArray(exports().memory.buffer, ptr! >>> 0, len! >>> 0).slice();
        exports().__wbindgen_free(ptr! >>> 0, len! >>> 0, 1);
        const image: WasmImageData = { data, width: width! >>> 0, height: height! >>> 0 };
        return add(image);
      },
      __wbindgen_throw: (ptr, len) => {
        throw new Error(new TextDecoder().decode(new Uint8Array(exports().memory.buffer, ptr! >>> 0, len! >>> 0)));
      },
    };
    const wbg: Record<string, (...args: number[]) => unknown> = {};
    for (const { module: from, name } of WebAssembly.Module.imports(module)) {
      const prefix = Object.keys(implementations).find((key) => name === key || (key.endsWith("_") && name.startsWith(key)));
      if (from !== "wbg" || prefix === undefined) throw new Error(`PNG module imports unknown ${from}.${name}`);
      wbg[name] = implementations[prefix]!;
    }
    wasm = new WebAssembly.Instance(module, { wbg }).exports as unknown as PngExports;
    const png = wasm;
    const api: PngModule = {
      decode(data) {
        const ptr = png.__wbindgen_malloc(data.length, 1) >>> 0;
        new Uint8Array(png.memory.buffer).set(data, ptr);
        // The module takes ownership of the input buffer and frees it.
        return take(png.decode(ptr, data.length)) as WasmImageData;
      },
      encode(data, width, height, bitDepth) {
        return bytesThroughBindgen(png, data, (retptr, ptr, len) => png.encode(retptr, ptr, len, width, height, bitDepth));
      },
    };
    return { api, memory: png.memory };
  });
}

export const jpegDecoder = emscripten<JpegDecoderModule>("jpeg-decode", jpegDecFactory, jpegDecWasm);
export const jpegEncoder = emscripten<JpegEncoderModule>("jpeg-encode", jpegEncFactory, jpegEncWasm);
export const webpDecoder = emscripten<WebpDecoderModule>("webp-decode", webpDecFactory, webpDecWasm);
export const webpEncoder = emscripten<WebpEncoderModule>("webp-encode", webpEncFactory, webpEncWasm);
export const avifDecoder = emscripten<AvifDecoderModule>("avif-decode", avifDecFactory, avifDecWasm);
export const avifEncoder = emscripten<AvifEncoderModule>("avif-encode", avifEncFactory, avifEncWasm);
export const pngCodec = pngBinding(pngWasm);
export const resizer = resizeBinding(resizeWasm);

/** Bytes of linear memory held by each live codec instance in this isolate. */
export function wasmMemory(): Record<string, number> {
  const held: Record<string, number> = {};
  for (const instance of instances) {
    const bytes = instance.memoryBytes();
    if (bytes > 0) held[instance.label] = bytes;
  }
  return held;
}

/** Total of `wasmMemory()`. */
export function wasmMemoryBytes(): number {
  return Object.values(wasmMemory()).reduce((sum, bytes) => sum + bytes, 0);
}
