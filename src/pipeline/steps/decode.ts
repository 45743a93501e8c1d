import { decode as decodePixels } from "../../codecs";
import type { DecodeHint } from "../../codecs/types";
import { computeOutputGeometry } from "../geometry";
import type { PipelineState, Step } from "../types";
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

/** Stored bytes -> RGBA pixels. */
export const decode: Step = {
  name: "decode",
  async run(state) {
    const hint = preflight(state);
    const image = await decodePixels(state.source.bytes, state.source.format, hint);
    state.image = image;
    state.view = fullView(image.width, image.height);
  },
};
