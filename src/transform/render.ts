import type { Limits } from "../config";
import { ProblemError } from "../errors";
import { hex, tenantOfImage } from "../ids";
import { CONTENT_TYPES, type ImageFormat, type OutputFormat } from "../images/format";
import { DEFAULT_MAX_FULL_DECODE_PIXELS, runPipeline, type SourceImage } from "../pipeline";
import { DERIVED_CACHE_KEY_META } from "../storage/cache";
import { imagePrefix, originalKey } from "../storage/objects";
import type { AcceptClass } from "./negotiate";
import type { TransformOptions } from "./options";
import type { TransformLimits } from "./params";

export interface RenderLimits extends TransformLimits {
  /** Largest source (in pixels) the synchronous path decodes; larger ones get a 422. */
  readonly maxSourcePixels: number;
  /** Wall-clock budget of one render, checked between pipeline steps. */
  readonly budgetMs: number;
}

export function renderLimitsFrom(limits: Limits): RenderLimits {
  return {
    maxSide: limits.maxOutputSide,
    maxPixels: limits.maxOutputPixels,
    maxSourcePixels: limits.maxTransformSourcePixels,
    budgetMs: limits.transformBudgetMs,
  };
}

export interface RenderRequest {
  readonly imageId: string;
  readonly options: TransformOptions;
  /** canonicalString(options): names the rendition. */
  readonly canonical: string;
  /** Only for fmt=auto; otherwise the output format does not depend on the client. */
  readonly accept?: AcceptClass;
}

export interface Rendition {
  readonly body: ReadableStream<Uint8Array> | Uint8Array;
  readonly format: OutputFormat;
  readonly width: number;
  readonly height: number;
  readonly contentType: string;
  readonly bytes: number;
  readonly etag: string;
  /** Whether this request ran the pipeline (false: the stored rendition in R2 was reused). */
  readonly rendered: boolean;
  readonly timings?: ReadonlyArray<readonly [string, number]>;
}

/** R2 key of a rendition: derived objects live beside their original, so deleting the prefix removes them. */
export function renditionKey(imageId: string, renditionId: string): string {
  return `${imagePrefix(tenantOfImage(imageId), imageId)}t/${renditionId}`;
}

/** A short stable id for (image, canonical params, accept class): the R2 name and ETag of a rendition. */
export async function renditionId(request: Pick<RenderRequest, "canonical" | "accept">): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${request.canonical}|${request.accept ?? ""}`));
  return hex(digest).slice(0, 32);
}

export interface RenderHooks {
  /**
   * Called when the pipeline is about to run (no stored rendition, the original exists), with
   * the rendition id: abuse limits throw here, so cache and R2 hits never count.
   */
  readonly beforeRender?: (renditionId: string) => Promise<void>;
}

/**
 * Produces one rendition: reuses the stored one in R2 when another location or an earlier
 * cache made it, else decodes the original, runs the pipeline and stores the result. The
 * same function serves URL transforms and (later) stored variants and queue jobs.
 */
export async function renderTransform(
  bucket: R2Bucket,
  limits: RenderLimits,
  request: RenderRequest,
  cacheKeyPath: string,
  hooks: RenderHooks = {},
): Promise<Rendition> {
  const id = await renditionId(request);
  const key = renditionKey(request.imageId, id);
  const etag = `"${request.imageId}-${id}"`;

  const stored = await bucket.get(key);
  if (stored) {
    return {
      body: stored.body,
      format: outputFormat(stored.customMetadata?.["format"]),
      width: Number(stored.customMetadata?.["width"] ?? 0),
      height: Number(stored.customMetadata?.["height"] ?? 0),
      contentType: stored.httpMetadata?.contentType ?? "application/octet-stream",
      bytes: stored.size,
      etag,
      rendered: false,
    };
  }

  const tenantId = tenantOfImage(request.imageId);
  const source = await loadSource(bucket, originalKey(tenantId, request.imageId), limits);
  if (!source) throw new ProblemError(404, "not-found", "No image with this id.");
  await hooks.beforeRender?.(id);

  const timings: Array<readonly [string, number]> = [];
  const result = await runPipeline(source, request.options, {
    acceptHeader: acceptHeaderFor(request.accept),
    limits,
    signal: AbortSignal.timeout(limits.budgetMs),
    trace: (step, ms) => timings.push([step, ms]),
    loadWatermark: async (watermarkId) => {
      // Only the same tenant's images can be watermarks.
      if (tenantOfImage(watermarkId) !== tenantId) return null;
      return loadSource(bucket, originalKey(tenantId, watermarkId), limits);
    },
  }).catch((error: unknown) => {
    if (error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError")) {
      throw new ProblemError(422, "image-too-large", `Transforming this image took longer than the budget of ${limits.budgetMs} ms.`);
    }
    throw error;
  });

  const contentType = CONTENT_TYPES[result.format];
  await bucket.put(key, result.bytes, {
    httpMetadata: { contentType },
    customMetadata: { [DERIVED_CACHE_KEY_META]: cacheKeyPath, format: result.format, width: String(result.width), height: String(result.height) },
  });
  return {
    body: result.bytes,
    format: result.format,
    width: result.width,
    height: result.height,
    contentType,
    bytes: result.bytes.byteLength,
    etag,
    rendered: true,
    timings,
  };
}

export async function loadSource(bucket: R2Bucket, key: string, limits: RenderLimits): Promise<SourceImage | null> {
  const object = await bucket.get(key);
  if (!object) return null;
  // Check the size recorded at upload before reading a byte of the body.
  const width = Number(object.customMetadata?.["width"] ?? 0);
  const height = Number(object.customMetadata?.["height"] ?? 0);
  if (width * height > limits.maxSourcePixels) {
    await object.body.cancel();
    throw new ProblemError(
      422,
      "image-too-large",
      `The source image is ${width}x${height}; transforms handle up to ${limits.maxSourcePixels} pixels. The original is still served without parameters.`,
      { width, height, maxSourcePixels: limits.maxSourcePixels },
    );
  }
  // Only JPEG shrinks on load: every other format decodes at full size, which must fit the
  // isolate (the decode step checks JPEGs from their headers, and everything again).
  const format = object.customMetadata?.["format"];
  if (format !== "jpeg" && width * height > DEFAULT_MAX_FULL_DECODE_PIXELS) {
    await object.body.cancel();
    throw new ProblemError(
      422,
      "image-too-large",
      `The source image is ${width}x${height} ${String(format).toUpperCase()}; transforms decode at most ${DEFAULT_MAX_FULL_DECODE_PIXELS} pixels of formats that cannot shrink on load. The original is still served without parameters.`,
      { width, height, maxDecodePixels: DEFAULT_MAX_FULL_DECODE_PIXELS },
    );
  }
  return {
    bytes: new Uint8Array(await object.arrayBuffer()),
    format: storedFormat(object.customMetadata?.["format"]),
    orientation: Number(object.customMetadata?.["orientation"] ?? 1),
    width,
    height,
  };
}

const OUTPUT_FORMATS: readonly OutputFormat[] = ["jpeg", "png", "webp", "avif"];

function outputFormat(value: string | undefined): OutputFormat {
  return OUTPUT_FORMATS.find((candidate) => candidate === value) ?? "jpeg";
}

const STORED_FORMATS: readonly ImageFormat[] = ["jpeg", "png", "webp", "avif", "gif"];

function storedFormat(value: string | undefined): ImageFormat {
  const format = STORED_FORMATS.find((candidate) => candidate === value);
  if (!format) throw new Error(`stored original has no valid format metadata: ${String(value)}`);
  return format;
}

function acceptHeaderFor(accept: AcceptClass | undefined): string {
  if (accept === "avif") return "image/avif,image/webp";
  if (accept === "webp") return "image/webp";
  return "";
}
