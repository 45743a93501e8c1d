import type { Limits } from "../config";
import type { Db } from "../db/client";
import { insertImageOrExisting } from "../db/images";
import type { ImageRow } from "../db/schema";
import { ProblemError } from "../errors";
import { newImageId } from "../ids";
import { CONTENT_TYPES } from "../images/format";
import { integrityCheck, type IntegrityCheck } from "../images/integrity";
import { PROBE_WINDOW_BYTES, probeImage, type ImageProbe } from "../images/probe";
import { originalKey, type OriginalObjectMetadata } from "../storage/objects";
import { makePlaceholder } from "../processing/placeholder";
import { putStream } from "../storage/put-stream";
import { renderLimitsFrom } from "../transform/render";
import type { Metadata } from "./metadata";

export interface IngestDeps {
  readonly db: Db;
  readonly bucket: R2Bucket;
  readonly limits: Limits;
  readonly now?: () => number;
  /** Called once per file after its header was probed, before anything is stored (per-file abuse limits). */
  readonly beforeStore?: () => Promise<void>;
  /**
   * Runs work after the response (ctx.waitUntil). When given, the placeholder is made there,
   * so uploads are not slowed by a decode; the image's `placeholder` is null until it is done.
   */
  readonly background?: (task: Promise<unknown>) => void;
}

export interface IncomingFile {
  readonly filename?: string;
  readonly body: ReadableStream<Uint8Array>;
  readonly metadata: Metadata;
}

export interface IngestResult {
  readonly row: ImageRow;
  readonly duplicate: boolean;
}

/**
 * Stores one uploaded file: probes its header before anything is written, streams it into
 * R2 while hashing, then records it in D1. The one code path for every way an image
 * arrives. On failure nothing is left behind, and the body is cancelled.
 */
export async function ingestImage(deps: IngestDeps, tenantId: string, file: IncomingFile): Promise<IngestResult> {
  const reader = file.body.getReader();
  let key: string | undefined;
  try {
    const head = await readHead(reader, PROBE_WINDOW_BYTES);
    const probe = probeImage(head);
    checkInputLimits(probe, deps.limits);
    await deps.beforeStore?.();

    const id = newImageId(tenantId);
    key = originalKey(tenantId, id);
    const objectMetadata: OriginalObjectMetadata = {
      format: probe.format,
      width: String(probe.width),
      height: String(probe.height),
      orientation: String(probe.orientation),
    };
    const stored = await putStream(deps.bucket, key, checkedChunks(head, reader, integrityCheck(probe.format)), {
      maxBytes: deps.limits.maxFileBytes,
      httpMetadata: { contentType: CONTENT_TYPES[probe.format] },
      customMetadata: { ...objectMetadata },
    });

    const now = deps.now?.() ?? Date.now();
    const upright = probe.orientation >= 5;
    const result = await insertImageOrExisting(deps.db, {
      id,
      tenantId,
      objectKey: key,
      filename: sanitizeFilename(file.filename),
      format: probe.format,
      width: upright ? probe.height : probe.width,
      height: upright ? probe.width : probe.height,
      orientation: probe.orientation,
      frames: probe.frames,
      hasAlpha: probe.hasAlpha,
      bytes: stored.bytes,
      sha256: stored.sha256,
      metadata: file.metadata,
      createdAt: now,
      updatedAt: now,
    });
    if (!result.inserted) {
      // Same bytes already stored for this tenant: keep the first copy only.
      await deps.bucket.delete(key);
      return { row: result.row, duplicate: true };
    }
    const placeholder = makePlaceholder(deps.db, deps.bucket, renderLimitsFrom(deps.limits), result.row);
    if (deps.background) {
      deps.background(placeholder);
      return { row: result.row, duplicate: false };
    }
    return { row: { ...result.row, placeholder: await placeholder }, duplicate: false };
  } catch (error) {
    await reader.cancel().catch(() => undefined);
    if (key !== undefined) await deps.bucket.delete(key).catch(() => undefined);
    throw error;
  } finally {
    reader.releaseLock();
  }
}

/** The decompression-bomb guard: refuse on the header, before any pixel is decoded or byte stored. */
export function checkInputLimits(probe: ImageProbe, limits: Limits): void {
  const pixels = probe.width * probe.height;
  if (probe.width > limits.maxInputSide || probe.height > limits.maxInputSide || pixels > limits.maxInputPixels) {
    throw new ProblemError(
      422,
      "image-too-large",
      `The image is ${probe.width}x${probe.height} (${pixels} pixels); the limit is ${limits.maxInputSide} px per side and ${limits.maxInputPixels} pixels.`,
      { width: probe.width, height: probe.height, maxSide: limits.maxInputSide, maxPixels: limits.maxInputPixels },
    );
  }
}

async function readHead(reader: ReadableStreamDefaultReader<Uint8Array>, window: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  while (length < window) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    length += value.byteLength;
  }
  if (chunks.length === 1 && chunks[0]) return chunks[0];
  const head = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    head.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return head;
}

/**
 * The whole file (head, then the rest), checked for completeness as it passes. An incomplete
 * file throws after its last chunk, inside putStream's loop, so nothing is committed to R2.
 */
async function* checkedChunks(
  head: Uint8Array,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  check: IntegrityCheck,
): AsyncGenerator<Uint8Array> {
  check.push(head);
  if (head.byteLength > 0) yield head;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    check.push(value);
    yield value;
  }
  check.finish();
}

/** Keeps the base name only, without control characters, at most 255 characters. */
export function sanitizeFilename(name: string | undefined): string | null {
  if (name === undefined) return null;
  const base = name.split(/[\\/]/).pop() ?? "";
  // eslint-disable-next-line no-control-regex
  const clean = base.replace(/[\u0000-\u001f\u007f]/g, "").trim().slice(0, 255);
  return clean === "" ? null : clean;
}
