import { resize as resample } from "../../codecs";
import { ProblemError } from "../../errors";
import { computeOutputGeometry, cropsInput, type OutputGeometry } from "../geometry";
import { drawOver, solid } from "../ops/composite";
import { findFocus } from "../ops/focus";
import type { OutputLimits, Step } from "../types";
import { cropView, fullView, materialize } from "../view";

/** Throws 400 "output-too-large" when the output would exceed the caps; never shrinks silently. */
export function checkOutputLimits(geometry: OutputGeometry, limits: OutputLimits): void {
  const { canvasWidth: w, canvasHeight: h } = geometry;
  if (w > limits.maxSide || h > limits.maxSide) {
    throw new ProblemError(400, "output-too-large", `Expected at most ${limits.maxSide} px per side for the output but the request makes ${w}x${h}`, {
      parameter: "w,h",
      expected: `at most ${limits.maxSide} px per side`,
      received: `${w}x${h}`,
    });
  }
  if (w * h > limits.maxPixels) {
    throw new ProblemError(400, "output-too-large", `Expected at most ${limits.maxPixels} output pixels but the request makes ${w}x${h}`, {
      parameter: "w,h",
      expected: `at most ${limits.maxPixels} output pixels`,
      received: `${w}x${h}`,
    });
  }
}

/**
 * Fit (see ../geometry), then materialise: the kept region, together with the pending
 * orient/crop/flip/rotate, is read out in one pass, resampled (Lanczos3) when its size
 * changes, and for fit=pad drawn over a canvas of the background colour (the background lies
 * under the image, so transparent parts of it show the colour; use a transparent `bg` to keep
 * them transparent). Runs even without w/h: later steps need real pixels.
 */
export const resize: Step = {
  name: "resize",
  async run(state) {
    const { options, ctx } = state;
    const { width: viewWidth, height: viewHeight } = state.view.rect;
    let geometry = computeOutputGeometry(viewWidth, viewHeight, options);
    checkOutputLimits(geometry, ctx.limits);
    if (options.gravity.mode === "auto" && cropsInput(geometry, viewWidth, viewHeight)) {
      const focus = findFocus(state.image, state.view, geometry.region.width, geometry.region.height);
      geometry = computeOutputGeometry(viewWidth, viewHeight, options, focus);
    }

    const region = materialize(state.image, cropView(state.view, geometry.region));
    // Let the decoded image go before resampling allocates the next buffer.
    state.image = region;
    state.view = fullView(region.width, region.height);
    let image = await resample(region, geometry.width, geometry.height);
    if (geometry.canvasWidth !== geometry.width || geometry.canvasHeight !== geometry.height) {
      const canvas = solid(geometry.canvasWidth, geometry.canvasHeight, options.background);
      image = drawOver(canvas, image, geometry.offsetX, geometry.offsetY);
    }
    state.image = image;
    state.view = fullView(image.width, image.height);
  },
};
