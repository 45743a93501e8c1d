/**
 * Benchmark worker. bench/run.mjs bundles it with bench/wrangler.toml and serves the bundle
 * with `wrangler dev`.
 *
 *   POST /run?op=<name>&query=<transform query, e.g. w=800&fmt=webp&q=80>&path=native|jsquash
 *        body: the image file
 *     -> JSON: per-step ms from the pipeline's `trace`, total ms, output size, and memory.
 *        With &out=1 the answer is the output image itself (for bench/run.mjs's quality check;
 *        that run is not timed).
 *   POST /echo -> reads the body and answers a small JSON: bench/run.mjs times this round trip
 *     (same body, no pipeline) beside the /run round trip, from Node's sub-millisecond clock.
 *   POST /reset -> drops the codec instances and collects garbage (see resetIsolate)
 *   GET /health -> "ok"
 *
 * The run uses the real pipeline, with options parsed from the query string a client would
 * send and the source metadata the upload path stores (probeImage).
 *
 * Memory is measured from outside src/: codecs drop instances right after a call to keep a
 * WASM budget (src/codecs/wasm.ts, WASM_RETAIN_BYTES), so the WASM memory left after the run
 * is not the peak. This worker wraps `WebAssembly.Instance` to see every linear memory the
 * codecs create, names each by the compiled module it came from (MODULE_LABELS: a module
 * missing there is reported as unknownModules), and after every pipeline step adds up:
 *   - WASM: each codec's newest memory when it was held at the step's start or created during
 *     the step (its size at the step's end; memory only grows, so that is its maximum);
 *   - JS: the large buffers the pipeline holds together during that step.
 * The peak is the largest step total. Garbage (dropped instances, replaced buffers) is not
 * counted there; `noGcBound` counts it too, as if no collection ran during the request.
 */
import avifDecWasm from "@jsquash/avif/codec/dec/avif_dec.wasm";
import avifEncWasm from "@jsquash/avif/codec/enc/avif_enc.wasm";
import jpegDecWasm from "@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm";
import jpegEncWasm from "@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm";
import pngWasm from "@jsquash/png/codec/pkg/squoosh_png_bg.wasm?module";
import resizeWasm from "@jsquash/resize/lib/resize/pkg/squoosh_resize_bg.wasm?module";
import webpDecWasm from "@jsquash/webp/codec/dec/webp_dec.wasm";
import webpEncWasm from "@jsquash/webp/codec/enc/webp_enc_simd.wasm";
import codecWasm from "../wasm/jpeg/jpeg.wasm";
import { wasmMemory } from "../src/codecs";
import { nativePool } from "../src/codecs/native";
import { avifDecoder, avifEncoder, jpegDecoder, jpegEncoder, pngCodec, resizer, webpDecoder, webpEncoder } from "../src/codecs/wasm";
import { ProblemError } from "../src/errors";
import { probeImage } from "../src/images/probe";
import { runPipeline, type StepName } from "../src/pipeline";
import { DEFAULT_LIMITS, parseTransform } from "../src/transform/params";

// ---------------------------------------------------------------------------------------------
// Watching WebAssembly memories

/** Our label per compiled module: the same names src/codecs/wasm.ts reports in wasmMemory(). */
const MODULE_LABELS = new Map<WebAssembly.Module, string>([
  [jpegDecWasm, "jpeg-decode"],
  [jpegEncWasm, "jpeg-encode"],
  [webpDecWasm, "webp-decode"],
  [webpEncWasm, "webp-encode"],
  [avifDecWasm, "avif-decode"],
  [avifEncWasm, "avif-encode"],
  [pngWasm, "png"],
  [resizeWasm, "resize"],
  [codecWasm, "native"],
]);

interface Tracked {
  readonly label: string;
  readonly memory: WeakRef<WebAssembly.Memory>;
}
/** Every memory a codec instance has exported in this isolate and not yet collected, oldest first. */
let tracked: Tracked[] = [];
/** Memories created during the current step (strong references until the step ends). */
let createdInStep: Array<{ label: string; memory: WebAssembly.Memory }> = [];
/** Memories created during the current run, for the no-GC bound. */
let createdInRun: WebAssembly.Memory[] = [];
let unknownModules = 0;

const OriginalInstance = WebAssembly.Instance;
WebAssembly.Instance = new Proxy(OriginalInstance, {
  construct(target, args, newTarget) {
    const instance: object = Reflect.construct(target, args, newTarget);
    const module: unknown = args[0];
    let label = module instanceof WebAssembly.Module ? MODULE_LABELS.get(module) : undefined;
    if (label === undefined) label = `unknown-${++unknownModules}`;
    if (instance instanceof OriginalInstance) {
      for (const value of Object.values(instance.exports)) {
        if (value instanceof WebAssembly.Memory) {
          tracked.push({ label, memory: new WeakRef(value) });
          createdInStep.push({ label, memory: value });
          createdInRun.push(value);
        }
      }
    }
    return instance;
  },
});

/** Newest live memory per label: the one a codec would be using. */
function newestByLabel(): Map<string, WebAssembly.Memory> {
  const newest = new Map<string, WebAssembly.Memory>();
  tracked = tracked.filter((entry) => entry.memory.deref() !== undefined);
  for (const entry of tracked) {
    const memory = entry.memory.deref();
    if (memory !== undefined) newest.set(entry.label, memory);
  }
  return newest;
}

// ---------------------------------------------------------------------------------------------
// The run

/** How the pipeline's steps are grouped in the report. */
const GROUP: Readonly<Record<StepName, "decode" | "resize" | "encode" | "other">> = {
  decode: "decode",
  colour: "decode",
  orient: "resize",
  crop: "resize",
  rotate: "resize",
  resize: "resize",
  blur: "resize",
  sharpen: "resize",
  watermark: "other",
  format: "encode",
  flatten: "encode",
  encode: "encode",
};

/**
 * Size of the intermediate copy src/codecs/resize.ts makes before Lanczos (integer box
 * shrink, leaving Lanczos at least 2x). Mirrors that file's rule; 0 when it makes none.
 */
function boxShrinkBytes(srcW: number, srcH: number, outW: number, outH: number): number {
  if (srcW === outW && srcH === outH) return 0;
  const fx = Math.max(1, Math.floor(srcW / outW / 2));
  const fy = Math.max(1, Math.floor(srcH / outH / 2));
  return fx > 1 || fy > 1 ? Math.ceil(srcW / fx) * Math.ceil(srcH / fy) * 4 : 0;
}

interface StepMemory {
  step: StepName;
  wasm: Record<string, number>;
  wasmTotal: number;
  js: number;
  total: number;
}

async function run(request: Request, op: string, query: string, codecPath: "native" | "jsquash", returnOutput: boolean): Promise<Response> {
  const bytes = new Uint8Array(await request.arrayBuffer());
  const probe = probeImage(bytes);
  const options = parseTransform(new URLSearchParams(query)).options;

  const ms: Record<string, number> = { decode: 0, resize: 0, encode: 0, other: 0 };
  const steps: Partial<Record<StepName, number>> = {};
  const stepWasm: Array<{ step: StepName; wasm: Record<string, number> }> = [];
  const retainedAtStart = wasmMemory();
  let heldAtStepStart = new Set(Object.keys(retainedAtStart));
  createdInStep = [];
  createdInRun = [];

  const started = performance.now();
  const result = await runPipeline(
    { bytes, format: probe.format, orientation: probe.orientation, width: probe.width, height: probe.height },
    options,
    {
      limits: DEFAULT_LIMITS,
      codecPath,
      trace: (step, stepMs) => {
        steps[step] = stepMs;
        ms[GROUP[step]] = (ms[GROUP[step]] ?? 0) + stepMs;
        // WASM in use during this step: codecs held at its start, and memories it created.
        const wasm: Record<string, number> = {};
        const newest = newestByLabel();
        for (const label of heldAtStepStart) {
          const memory = newest.get(label);
          if (memory !== undefined) wasm[label] = memory.buffer.byteLength;
        }
        for (const { label, memory } of createdInStep) wasm[label] = Math.max(wasm[label] ?? 0, memory.buffer.byteLength);
        stepWasm.push({ step, wasm });
        createdInStep = [];
        heldAtStepStart = new Set(Object.keys(wasmMemory()));
      },
    },
  );
  // workerd's clocks (performance.now, Date.now, process.hrtime) all advance in whole
  // milliseconds, so this and the trace's step times have 1 ms resolution; bench/run.mjs adds
  // a sub-millisecond round trip and the workerd process's CPU time, measured from outside.
  const totalMs = performance.now() - started;
  ms["total"] = totalMs;
  if (returnOutput) {
    return new Response(result.bytes, { headers: { "content-type": `image/${result.format}`, "x-width": String(result.width), "x-height": String(result.height) } });
  }

  // Large JS buffers held together during each step. Decoded size is the stored size (the
  // decoder does not rotate); orientation 2-8 make the resize step read it into an upright copy.
  const input = bytes.byteLength;
  const decoded = probe.width * probe.height * 4;
  const [srcW, srcH] = probe.orientation >= 5 && probe.orientation <= 8 ? [probe.height, probe.width] : [probe.width, probe.height];
  const uprightCopy = probe.orientation >= 2 && probe.orientation <= 8 ? decoded : 0;
  const shrunk = boxShrinkBytes(srcW, srcH, result.width, result.height);
  const resized = srcW === result.width && srcH === result.height ? 0 : result.width * result.height * 4;
  const output = result.bytes.byteLength;
  // Native path: JPEG and non-interlaced PNG rows stream from the decoder into the resampler in
  // our module's WASM memory (counted above as "native"); only output-sized RGBA reaches JS.
  // Other sources still decode to a JS buffer, which is then copied into "native".
  const streamed = codecPath === "native" && (probe.format === "jpeg" || (probe.format === "png" && !probe.progressive));
  const jsDecoded = streamed ? 0 : decoded;
  const jsByStep: Partial<Record<StepName, number>> =
    codecPath === "native"
      ? {
          decode: input + jsDecoded,
          colour: input + jsDecoded,
          orient: input + jsDecoded,
          crop: input + jsDecoded,
          rotate: input + jsDecoded,
          resize: input + jsDecoded + resized,
          format: input + (resized || jsDecoded),
          flatten: input + (resized || jsDecoded),
          encode: input + (resized || jsDecoded) + output,
        }
      : {
          decode: input + decoded,
          colour: input + decoded,
          orient: input + decoded,
          crop: input + decoded,
          rotate: input + decoded,
          resize: input + decoded + uprightCopy + shrunk + resized,
          format: input + (resized || decoded),
          flatten: input + (resized || decoded),
          encode: input + (resized || decoded) + output,
        };

  const perStep: StepMemory[] = stepWasm.map(({ step, wasm }) => {
    const wasmTotal = Object.values(wasm).reduce((a, b) => a + b, 0);
    const js = jsByStep[step] ?? input + (resized || decoded);
    return { step, wasm, wasmTotal, js, total: wasmTotal + js };
  });
  const peak = perStep.reduce((best, s) => (s.total > best.total ? s : best));

  // As if nothing were collected during the request: every memory held at the start or
  // created since, and every large buffer.
  const retainedBytes = Object.values(retainedAtStart).reduce((a, b) => a + b, 0);
  let createdBytes = 0;
  for (const memory of createdInRun) createdBytes += memory.buffer.byteLength;
  const noGcBound =
    codecPath === "native"
      ? retainedBytes + createdBytes + input + jsDecoded + resized + output
      : retainedBytes + createdBytes + input + decoded + uprightCopy + shrunk + resized + output;
  createdInRun = [];

  return Response.json({
    op,
    query,
    codecPath,
    input: { format: probe.format, width: probe.width, height: probe.height, orientation: probe.orientation, bytes: input },
    output: { format: result.format, width: result.width, height: result.height, bytes: output },
    ms,
    steps,
    memory: {
      peak: peak.total,
      peakStep: peak.step,
      peakWasm: peak.wasm,
      peakWasmTotal: peak.wasmTotal,
      peakJs: peak.js,
      js: { input, decoded, uprightCopy, shrunk, resized, output },
      perStep,
      retainedAtStart,
      retainedAtEnd: wasmMemory(),
      noGcBound,
      unknownModules,
    },
  });
}

/**
 * Drops every codec instance (LazyInstance.reset; a codec that cannot drop its instance keeps
 * it, and wasmMemory() then still reports it) and, when V8 runs with
 * --expose-gc (bench/run.mjs sets MINIFLARE_WORKERD_V8_FLAGS), collects garbage: the next run
 * then starts with WASM memory as in a fresh isolate (compiled code stays warm).
 */
function resetIsolate(): Response {
  for (const instance of [avifDecoder, avifEncoder, jpegDecoder, jpegEncoder, pngCodec, resizer, webpDecoder, webpEncoder]) instance.reset();
  nativePool().clear();
  const gc: unknown = Reflect.get(globalThis, "gc");
  if (typeof gc === "function") (gc as () => void)();
  return Response.json({ gc: typeof gc === "function", wasm: wasmMemory() });
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    if (url.pathname === "/reset" && request.method === "POST") return resetIsolate();
    if (url.pathname === "/echo" && request.method === "POST") {
      const body = await request.arrayBuffer();
      return Response.json({ bytes: body.byteLength });
    }
    if (url.pathname === "/run" && request.method === "POST") {
      const op = url.searchParams.get("op") ?? "";
      const query = url.searchParams.get("query");
      if (query === null || query === "") return Response.json({ error: "query (the transform's query string) is required" }, { status: 400 });
      try {
        const path = url.searchParams.get("path") === "jsquash" ? "jsquash" : "native";
        return await run(request, op, query, path, url.searchParams.get("out") === "1");
      } catch (error) {
        // A source the service refuses by design (e.g. over a decode limit: 422) is a result, not a failure.
        if (error instanceof ProblemError && error.status >= 400 && error.status < 500) {
          return Response.json({ error: `${error.status} ${error.code}: ${error.message}`, refused: true }, { status: error.status });
        }
        return Response.json({ error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }, { status: 500 });
      }
    }
    return new Response("not found", { status: 404 });
  },
} satisfies ExportedHandler;
