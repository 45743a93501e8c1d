import { decode as decodePixels } from "../../codecs";
import { openNativeSession, type ScaleShift } from "../../codecs/native";
import { pngLayout } from "../../codecs/png-layout";
import { MAX_DECODE_PIXELS, type DecodeHint } from "../../codecs/types";
import { ProblemError } from "../../errors";
import { applyCmykTransform, jpegCmykTransform } from "../../images/icc";
import { computeOutputGeometry } from "../geometry";
import { DEFAULT_MAX_FULL_DECODE_PIXELS, type PendingDecode, type PipelineState, type Step } from "../types";
import { cropView, fullView, swapsAxes, turnView } from "../view";
import { validateCrop } from "./crop";
import { orientationTurn } from "./orient";
import { checkOutputLimits } from "./resize";
import { flipRotateTurn } from "./rotate";

/**
 * When the stored size is known, runs the geometry of orient -> crop -> rotate -> resize on
 * sizes alone, so a bad crop or an oversized output fails before the decode is paid for
 * (the steps check again on the decoded image). Returns the decode hint: the size the whole
 * stored image would need to have for the output, when nothing is cropped.
 */
export function preflight(state: PipelineState): DecodeHint | undefined {
  const { source, options, ctx } = state;
  const { width, height } = source;
  // Unknown (or unusable, e.g. 0 from missing metadata) stored size: the steps check after decoding.
  if (width === undefined || height === undefined || !(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    return undefined;
  }
  let view = turnView(fullView(width, height), orientationTurn(source.orientation));
  if (options.crop !== undefined) {
    validateCrop(view.rect.width, view.rect.height, options.crop);
    view = cropView(view, options.crop);
  }
  view = turnView(view, flipRotateTurn(options.flip, options.rotate));
  const geometry = computeOutputGeometry(view.rect.width, view.rect.height, options);
  checkOutputLimits(geometry, ctx.limits);
  if (options.crop !== undefined || geometry.region.width !== view.rect.width || geometry.region.height !== view.rect.height) {
    return undefined;
  }
  // Scale per axis of the upright image, mapped back to the stored axes.
  const scaleX = geometry.width / view.rect.width;
  const scaleY = geometry.height / view.rect.height;
  const [storedScaleX, storedScaleY] = swapsAxes(view.turn) ? [scaleY, scaleX] : [scaleX, scaleY];
  if (storedScaleX >= 1 && storedScaleY >= 1) return undefined;
  return {
    targetWidth: Math.ceil(width * Math.min(1, storedScaleX)),
    targetHeight: Math.ceil(height * Math.min(1, storedScaleY)),
  };
}

/**
 * The shrink-on-load for a `width` x `height` (stored, full-resolution) image: the largest
 * power-of-two reduction (up to 1/8) that still leaves the region the options keep at least
 * the size it is resampled to, on both stored axes (orientations and rotations that swap the
 * axes swap the target too). Also checks the crop and the output caps, like `preflight`.
 * For a crop the kept region maps to a fractional rectangle of the reduced image, so it must
 * hold the target exactly; for the whole image the decoder's rounding up counts, as in libvips.
 */
export function shrinkOnLoad(state: PipelineState, width: number, height: number): ScaleShift {
  const { source, options, ctx } = state;
  let view = turnView(fullView(width, height), orientationTurn(source.orientation));
  if (options.crop !== undefined) {
    validateCrop(view.rect.width, view.rect.height, options.crop);
    view = cropView(view, options.crop);
  }
  view = turnView(view, flipRotateTurn(options.flip, options.rotate));
  const geometry = computeOutputGeometry(view.rect.width, view.rect.height, options);
  checkOutputLimits(geometry, ctx.limits);
  const swap = swapsAxes(view.turn);
  const [regionW, regionH] = swap ? [geometry.region.height, geometry.region.width] : [geometry.region.width, geometry.region.height];
  const [targetW, targetH] = swap ? [geometry.height, geometry.width] : [geometry.width, geometry.height];
  const whole = regionW === width && regionH === height;
  for (const shift of [3, 2, 1] as const) {
    const k = 2 ** shift;
    const w = whole ? Math.ceil(regionW / k) : regionW / k;
    const h = whole ? Math.ceil(regionH / k) : regionH / k;
    if (w >= targetW && h >= targetH) return shift;
  }
  return 0;
}

/** Whether the decode may wait for the resize step and stream into it (see PipelineContext.streamDecode). */
function canStream(state: PipelineState): boolean {
  return state.ctx.streamDecode !== false && state.options.gravity.mode !== "auto";
}

/**
 * Leaves the decode to the resize step, which streams the decoder's rows straight into the
 * resampler (state.native holds the session): here only the sizes are known, so `image` is a
 * placeholder of the decoded size (stored `width` x `height` read at 1/`shrink`) without pixels.
 */
function deferDecode(state: PipelineState, pending: PendingDecode, width: number, height: number, shrink: number, hasAlpha: boolean): void {
  state.pendingDecode = pending;
  state.image = { width: Math.ceil(width / shrink), height: Math.ceil(height / shrink), data: new Uint8ClampedArray(0), hasAlpha };
  state.view = fullView(width, height);
  state.shrink = shrink;
}

function refuseLarge(state: PipelineState, width: number, height: number, why: string, max = state.ctx.maxFullDecodePixels ?? DEFAULT_MAX_FULL_DECODE_PIXELS): void {
  if (width * height <= max) return;
  throw new ProblemError(
    422,
    "image-too-large",
    `The source image is ${width}x${height} and ${why}; transforms decode at most ${max} pixels. The original is still served without parameters.`,
    { width, height, maxDecodePixels: max },
  );
}

/**
 * Stored bytes -> RGBA pixels. On the native path a JPEG our decoder supports (decided from
 * its header) or a non-interlaced PNG is not decoded here: the resize step streams its rows
 * straight into the resampler (`state.pendingDecode`; `image` is a placeholder of the decoded
 * size), so no decoded copy exists. Exceptions decode here: with `g=auto` (which looks at the
 * pixels) a JPEG is decoded at the shrink-on-load scale into the WASM memory the resize step
 * reads, and a CMYK/YCCK one as ink amounts, converted to sRGB in place through its CMYK
 * profile. Anything else decodes at full size with @jsquash, refused from its header (422)
 * when that size is beyond `maxFullDecodePixels`.
 */
export const decode: Step = {
  name: "decode",
  async run(state) {
    const { source } = state;
    const native = (state.ctx.codecPath ?? "native") === "native";
    // Crop and output caps against the stored size, before any decoder work.
    const hint = preflight(state);
    let width = source.width;
    let height = source.height;
    if (native && source.format === "jpeg") {
      const session = openNativeSession();
      state.native = session;
      const probe = session.probeJpeg(source.bytes);
      if (probe.supported) {
        const shift = shrinkOnLoad(state, probe.width, probe.height);
        const k = 2 ** shift;
        refuseLarge(state, Math.ceil(probe.width / k), Math.ceil(probe.height / k), "cannot be decoded smaller for this transform");
        const cmykFile = probe.color === "cmyk" || probe.color === "ycck";
        if (!cmykFile && canStream(state)) {
          deferDecode(state, { kind: "jpeg", shift }, probe.width, probe.height, k, false);
          return;
        }
        // CMYK/YCCK: decoded as ink amounts and converted here through the file's CMYK profile
        // when it embeds one, in WASM memory and at the reduced scale, before any resampling.
        const cmyk = cmykFile ? await jpegCmykTransform(source.bytes) : undefined;
        const image = session.decodeJpeg(shift, { rawCmyk: cmyk !== undefined });
        if (cmyk !== undefined) applyCmykTransform(image.data, cmyk);
        state.image = image;
        state.view = fullView(probe.width, probe.height);
        state.shrink = k;
        return;
      }
      // Our decoder does not handle this variant (say arithmetic coding): mozjpeg, full size.
      session.release();
      state.native = undefined;
      width = probe.width;
      height = probe.height;
    }
    if (native && source.format === "png" && canStream(state)) {
      const layout = pngLayout(source.bytes);
      if (!layout.interlaced) {
        // Rows stream into the resampler: memory follows the output, so only the pixel count
        // any decoder accepts bounds it (CPU time grows with it).
        refuseLarge(state, layout.width, layout.height, "is too large to transform", MAX_DECODE_PIXELS);
        state.native = openNativeSession();
        deferDecode(state, { kind: "png", layout }, layout.width, layout.height, 1, layout.hasAlpha);
        return;
      }
      width = layout.width;
      height = layout.height;
    }
    if (native && width !== undefined && height !== undefined) {
      refuseLarge(state, width, height, `its ${source.format.toUpperCase()} decoder cannot shrink on load`);
    }
    const image = await decodePixels(source.bytes, source.format, hint);
    if (native) refuseLarge(state, image.width, image.height, "was decoded at full size");
    state.image = image;
    state.view = fullView(image.width, image.height);
    state.shrink = 1;
  },
};
