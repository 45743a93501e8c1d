/**
 * The transform pipeline: stored image + validated options -> output file.
 *
 * After imgproxy's processing pipeline: the order is declared once, as data (`STEPS`), each
 * step decides for itself whether it applies, and the abort signal is checked between steps
 * (after yielding to the event loop, so a timeout signal can fire).
 *
 *   decode -> colour (embedded ICC profile -> sRGB) -> orient -> crop -> rotate (flip, then
 *   rotate) -> resize (fit, gravity, pad) -> blur -> sharpen -> watermark -> format (fmt=auto)
 *   -> flatten (JPEG) -> encode
 *
 * orient, crop and rotate only record lossless geometry; resize turns it and the kept
 * region into pixels in one pass (see ./view). Every error meant for the client is a
 * ProblemError: 400 invalid-parameter (crop outside the image, unknown watermark), 400
 * output-too-large, 422 invalid-image (the stored file does not decode).
 */
import type { RgbaImage } from "../codecs/types";
import type { TransformOptions } from "../transform/options";
import { blur } from "./steps/blur";
import { colour } from "./steps/colour";
import { crop } from "./steps/crop";
import { decode } from "./steps/decode";
import { encode } from "./steps/encode";
import { flatten } from "./steps/flatten";
import { format } from "./steps/format";
import { orient } from "./steps/orient";
import { resize } from "./steps/resize";
import { rotate } from "./steps/rotate";
import { sharpen } from "./steps/sharpen";
import { watermark } from "./steps/watermark";
import type { PipelineContext, PipelineResult, PipelineState, SourceImage, Step } from "./types";
import { fullView } from "./view";

export const STEPS: readonly Step[] = [
  decode,
  colour,
  orient,
  crop,
  rotate,
  resize,
  blur,
  sharpen,
  watermark,
  format,
  flatten,
  encode,
];

export async function runPipeline(
  source: SourceImage,
  options: TransformOptions,
  ctx: PipelineContext,
): Promise<PipelineResult> {
  const state: PipelineState = {
    source,
    options,
    ctx,
    image: NO_IMAGE,
    view: fullView(0, 0),
    shrink: 1,
    format: "png",
    output: new Uint8Array(0),
  };
  try {
    for (const step of STEPS) {
      if (ctx.signal !== undefined) {
        // Steps are CPU-bound and never give the event loop a turn on their own, so a timer
        // behind the signal (AbortSignal.timeout) could not fire until the pipeline ended.
        await nextTurn();
        ctx.signal.throwIfAborted();
      }
      const started = ctx.trace === undefined ? 0 : performance.now();
      await step.run(state);
      ctx.trace?.(step.name, performance.now() - started);
    }
  } finally {
    // Normally released by the resize step already; after an error or abort, here.
    state.native?.release();
    state.native = undefined;
  }
  return { bytes: state.output, format: state.format, width: state.image.width, height: state.image.height };
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Placeholder until the decode step runs. */
const NO_IMAGE: RgbaImage = { width: 0, height: 0, data: new Uint8ClampedArray(0), hasAlpha: false };

export { computeOutputGeometry } from "./geometry";
export type { FocalPoint, GeometryOptions, OutputGeometry } from "./geometry";
export { negotiateFormat } from "./steps/format";
export type { OutputLimits, PipelineContext, PipelineResult, SourceImage, StepName } from "./types";
export { DEFAULT_MAX_FULL_DECODE_PIXELS } from "./types";
