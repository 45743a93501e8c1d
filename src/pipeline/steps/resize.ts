import { resize as resample } from "../../codecs";
import { openNativeSession } from "../../codecs/native";
import type { RgbaImage } from "../../codecs/types";
import { ProblemError } from "../../errors";
import { computeOutputGeometry, cropsInput, type OutputGeometry } from "../geometry";
import { drawOver, solid } from "../ops/composite";
import { findFocus } from "../ops/focus";
import type { OutputLimits, PipelineState, Step } from "../types";
import { cropView, fullView, materialize, scaledStoredRegion, scaledView, swapsAxes, turnView, viewIndex } from "../view";

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
      // On a reduced decode, look at the same part of it (sizes scaled; a focal point is relative).
      const { window } = scaledView(state.view, state.shrink, state.image.width, state.image.height);
      const s = state.shrink;
      const focus = findFocus(state.image, window, Math.min(window.rect.width, Math.round(geometry.region.width / s)), Math.min(window.rect.height, Math.round(geometry.region.height / s)));
      geometry = computeOutputGeometry(viewWidth, viewHeight, options, focus);
    }

    let image: RgbaImage;
    if (state.pendingDecode !== undefined) {
      image = await decodeResampled(state, geometry);
    } else if ((ctx.codecPath ?? "native") === "native") {
      image = resampleNative(state, geometry);
    } else {
      const region = materialize(state.image, cropView(state.view, geometry.region));
      // Let the decoded image go before resampling allocates the next buffer.
      state.image = region;
      state.view = fullView(region.width, region.height);
      image = await resample(region, geometry.width, geometry.height, "jsquash");
    }
    if (geometry.canvasWidth !== geometry.width || geometry.canvasHeight !== geometry.height) {
      const canvas = solid(geometry.canvasWidth, geometry.canvasHeight, options.background);
      image = drawOver(canvas, image, geometry.offsetX, geometry.offsetY);
    }
    state.image = image;
    state.view = fullView(image.width, image.height);
    state.shrink = 1;
  },
};

/**
 * Native path: the kept region of the (possibly shrink-on-load reduced) image, read through the
 * pending orient/crop/flip/rotate, resampled in one pass by our WASM resampler, in the memory
 * the decoder wrote it to when it came from there. Only the output-sized result reaches JS;
 * the session (decoded pixels and all) is released before the next step allocates.
 */
function resampleNative(state: PipelineState, geometry: OutputGeometry): RgbaImage {
  const { window, region } = scaledView(cropView(state.view, geometry.region), state.shrink, state.image.width, state.image.height);
  const { base, stepU, stepV } = viewIndex(window);
  const session = state.native ?? openNativeSession();
  try {
    return session.resize(state.image, {
      base,
      stepU,
      stepV,
      windowWidth: window.rect.width,
      windowHeight: window.rect.height,
      x: region.x,
      y: region.y,
      width: region.width,
      height: region.height,
      outWidth: geometry.width,
      outHeight: geometry.height,
    });
  } finally {
    session.release();
    state.native = undefined;
  }
}

/**
 * Native path with the decode deferred to here: the decoder streams its rows straight into the
 * resampler, in the stored frame (rows arrive top to bottom), and the output-sized result is
 * then turned upright (a resample is symmetric under flips and transposes, so turning after
 * it gives the same pixels as before it).
 */
async function decodeResampled(state: PipelineState, geometry: OutputGeometry): Promise<RgbaImage> {
  const pending = state.pendingDecode;
  const session = state.native;
  if (pending === undefined || session === undefined) throw new Error("no deferred decode to run");
  const view = cropView(state.view, geometry.region);
  const { window, region } = scaledStoredRegion(view, state.shrink, state.image.width, state.image.height);
  const swap = swapsAxes(view.turn);
  const [outWidth, outHeight] = swap ? [geometry.height, geometry.width] : [geometry.width, geometry.height];
  try {
    const request = {
      windowX: window.x,
      windowY: window.y,
      windowWidth: window.width,
      windowHeight: window.height,
      x: region.x,
      y: region.y,
      width: region.width,
      height: region.height,
      outWidth,
      outHeight,
    };
    const stored = pending.kind === "jpeg"
      ? session.decodeJpegResized(pending.shift, request, pending.colour)
      : await session.decodePngResized(pending.layout, request, pending.colour);
    return materialize(stored, turnView(fullView(outWidth, outHeight), view.turn));
  } finally {
    session.release();
    state.native = undefined;
    state.pendingDecode = undefined;
  }
}
