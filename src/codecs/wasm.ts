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

/*
 * The two wasm-bindgen modules (@jsquash/png, @jsquash/resize), called without their JS glue.
 * Interface facts we rely on, all of them the ABI these modules were built to: wasm-bindgen's
 * JS-value table convention (the JSIDX_* constants of the wasm-bindgen crate's `JsValue`) and
 * its conventions for slices and return values; the exports and imports listed are what
 * `WebAssembly.Module.exports/imports` report for the two files. The code below is ours.
 *
 * - Both export `memory`, `__wbindgen_malloc(size, align)`, `__wbindgen_free(ptr, size, align)`
 *   and `__wbindgen_add_to_stack_pointer(delta)`, which moves the shadow stack pointer by `delta`
 *   bytes and returns the new pointer. Byte buffers are allocated and freed with align 1.
 * - A `&[u8]`/`Vec<u8>` argument is an (address, length) pair of a buffer the caller allocated
 *   with `__wbindgen_malloc` and filled; the callee owns it from then on and frees it.
 * - A `Vec<u8>` result comes back through a return area: the caller reserves 16 bytes on the
 *   shadow stack and passes their address as an extra first argument; after the call the
 *   vector's address and length are the little-endian u32 words at offsets 0 and 4. The caller
 *   then owns the vector (frees it with `__wbindgen_free(address, length, 1)`) and gives the
 *   16 bytes back by moving the stack pointer up again.
 * - A JS value crosses as a u32 index into a table kept by the JS side. Indices 128, 129, 130
 *   and 131 always mean undefined, null, true and false; every other value gets an index from
 *   132 up. The module gives an index back with the import `__wbindgen_object_drop_ref(index)`;
 *   an index it returns is owned by the caller, who removes it from the table.
 * - resize: `resize(retArea, address, length, width, height, outWidth, outHeight, method,
 *   premultiply, linearRgb)` returns RGBA bytes; no imports.
 * - png: `decode(address, length)` returns the table index of an image object;
 *   `encode(retArea, address, length, width, height, bitDepth)` returns PNG bytes. Imports, all
 *   in module "wbg" (some names end in `_` and a 16-hex-digit build hash):
 *   `__wbindgen_memory()` -> index of the memory; `__wbg_buffer(memoryIndex)` -> index of its
 *   ArrayBuffer; `__wbg_newwithbyteoffsetandlength(bufferIndex, offset, length)` -> index of a
 *   Uint16Array on it (the 16-bit decode, which we do not call); `__wbindgen_object_drop_ref`;
 *   `__wbg_newwithownedu8clampedarrayandsh(address, length, width, height)` -> index of an image
 *   whose pixel buffer the JS side now owns and frees; `__wbindgen_throw(address, length)`, a
 *   UTF-8 error message to throw.
 */

/** First table index handed out for a value; the ones below are fixed or not ours. */
const FIRST_HELD_INDEX = 132;
/** Bytes reserved on the shadow stack for a returned (address, length) pair. */
const RETURN_AREA_BYTES = 16;

/**
 * The JS side of the value table (see above): values the module refers to by number. Indices
 * given back are handed out again before new ones.
 */
export class JsValueTable {
  private readonly values = new Map<number, unknown>([
    [128, undefined],
    [129, null],
    [130, true],
    [131, false],
  ]);
  private readonly released: number[] = [];
  private unused = FIRST_HELD_INDEX;

  /** Puts `value` in the table and returns the index the module will know it by. */
  hold(value: unknown): number {
    const index = this.released.pop() ?? this.unused++;
    this.values.set(index, value);
    return index;
  }

  /** The value at `index` (undefined for an index never handed out). */
  get(index: number): unknown {
    return this.values.get(index);
  }

  /** Takes the value at `index` out of the table; the four fixed values stay. */
  release(index: number): unknown {
    const value = this.values.get(index);
    if (index >= FIRST_HELD_INDEX && this.values.delete(index)) this.released.push(index);
    return value;
  }

  /** How many values are held, the four fixed ones not counted. */
  get held(): number {
    return this.values.size - (FIRST_HELD_INDEX - 128);
  }
}

/** The allocator and stack exports both Rust modules have. */
interface BindgenExports {
  readonly memory: WebAssembly.Memory;
  __wbindgen_add_to_stack_pointer(delta: number): number;
  __wbindgen_malloc(size: number, align: number): number;
  __wbindgen_free(ptr: number, size: number, align: number): void;
}

/** Moves bytes in and out of a wasm-bindgen module's memory, by the conventions above. */
class BindgenBytes {
  constructor(private readonly wasm: BindgenExports) {}

  /** Copies `bytes` into a new allocation and returns its address (the callee will free it). */
  copyIn(bytes: Uint8Array | Uint8ClampedArray): number {
    const address = this.wasm.__wbindgen_malloc(bytes.length, 1) >>> 0;
    new Uint8Array(this.wasm.memory.buffer, address, bytes.length).set(bytes);
    return address;
  }

  /** Copies out the `length` bytes at `address`, an allocation now ours, and frees it. */
  takeOut(address: number, length: number): Uint8Array {
    const copy = new Uint8Array(this.wasm.memory.buffer, address, length).slice();
    this.wasm.__wbindgen_free(address, length, 1);
    return copy;
  }

  /** Runs `call` with a fresh return area and takes the byte vector it leaves there. */
  returned(call: (returnArea: number) => void): Uint8Array {
    const returnArea = this.wasm.__wbindgen_add_to_stack_pointer(-RETURN_AREA_BYTES);
    try {
      call(returnArea);
      // Read after the call: the call may have grown (and so replaced) the memory's buffer.
      const pair = new DataView(this.wasm.memory.buffer, returnArea, 8);
      return this.takeOut(pair.getUint32(0, true), pair.getUint32(4, true));
    } finally {
      this.wasm.__wbindgen_add_to_stack_pointer(RETURN_AREA_BYTES);
    }
  }
}

/** Exports of squoosh's resize crate. */
interface ResizeExports extends BindgenExports {
  resize(
    returnArea: number,
    address: number,
    length: number,
    width: number,
    height: number,
    outWidth: number,
    outHeight: number,
    method: number,
    premultiply: boolean,
    linearRgb: boolean,
  ): void;
}

/** The resize module through our own binding (droppable, unlike its glue's single instance). */
function resizeBinding(module: WebAssembly.Module): LazyInstance<ResizeModule> {
  return lazy("resize", async () => {
    const wasm = new WebAssembly.Instance(module, {}).exports as unknown as ResizeExports;
    const io = new BindgenBytes(wasm);
    const api: ResizeModule = {
      resize(data, width, height, outWidth, outHeight, method, premultiply, linearRgb) {
        const address = io.copyIn(data);
        const pixels = io.returned((returnArea) =>
          wasm.resize(returnArea, address, data.length, width, height, outWidth, outHeight, method, premultiply, linearRgb),
        );
        return new Uint8ClampedArray(pixels.buffer, pixels.byteOffset, pixels.byteLength);
      },
    };
    return { api, memory: wasm.memory };
  });
}

/** Exports of squoosh's PNG crate (the 8-bit paths we use). */
interface PngExports extends BindgenExports {
  decode(address: number, length: number): number;
  encode(returnArea: number, address: number, length: number, width: number, height: number, bitDepth: number): void;
}

type PngImport = (...args: number[]) => unknown;

/** An import's name without the build hash some of them end in. */
function importRole(name: string): string {
  return name.replace(/_[0-9a-f]{16}$/, "");
}

/** The PNG module through our own binding: a value table and the six imports it needs. */
function pngBinding(module: WebAssembly.Module): LazyInstance<PngModule> {
  return lazy("png", async () => {
    const table = new JsValueTable();
    // The imports need the instance's exports, which exist only once it is built.
    let built: { wasm: PngExports; io: BindgenBytes } | undefined;
    const live = (): { wasm: PngExports; io: BindgenBytes } => {
      if (built === undefined) throw new Error("PNG module not instantiated");
      return built;
    };
    const roles = new Map<string, PngImport>([
      ["__wbindgen_memory", () => table.hold(live().wasm.memory)],
      ["__wbg_buffer", (memoryIndex: number) => table.hold((table.get(memoryIndex) as WebAssembly.Memory).buffer)],
      [
        "__wbg_newwithbyteoffsetandlength",
        (bufferIndex: number, offset: number, length: number) =>
          table.hold(new Uint16Array(table.get(bufferIndex) as ArrayBuffer, offset >>> 0, length >>> 0)),
      ],
      [
        "__wbindgen_object_drop_ref",
        (index: number) => {
          table.release(index);
        },
      ],
      [
        "__wbg_newwithownedu8clampedarrayandsh",
        (address: number, length: number, width: number, height: number) => {
          const pixels = live().io.takeOut(address >>> 0, length >>> 0);
          const image: WasmImageData = { data: new Uint8ClampedArray(pixels.buffer), width: width >>> 0, height: height >>> 0 };
          return table.hold(image);
        },
      ],
      [
        "__wbindgen_throw",
        (address: number, length: number) => {
          const message = new Uint8Array(live().wasm.memory.buffer, address >>> 0, length >>> 0);
          throw new Error(new TextDecoder().decode(message));
        },
      ],
    ]);
    const wbg: Record<string, PngImport> = {};
    for (const wanted of WebAssembly.Module.imports(module)) {
      const implementation = wanted.module === "wbg" ? roles.get(importRole(wanted.name)) : undefined;
      if (implementation === undefined) throw new Error(`PNG module imports unknown ${wanted.module}.${wanted.name}`);
      wbg[wanted.name] = implementation;
    }
    const wasm = new WebAssembly.Instance(module, { wbg }).exports as unknown as PngExports;
    const io = new BindgenBytes(wasm);
    built = { wasm, io };
    const api: PngModule = {
      decode(data) {
        const image = wasm.decode(io.copyIn(data), data.length);
        return table.release(image) as WasmImageData;
      },
      encode(data, width, height, bitDepth) {
        const address = io.copyIn(data);
        return io.returned((returnArea) => wasm.encode(returnArea, address, data.length, width, height, bitDepth));
      },
    };
    return { api, memory: wasm.memory };
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
