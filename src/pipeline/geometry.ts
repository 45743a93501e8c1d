/**
 * Resize maths, pure: from the size of the image reaching the resize step and the request,
 * which part of it to keep, what size to resample that part to, and (fit=pad) the canvas it
 * is placed on. Mirrors Cloudflare Image Transformations' `fit` modes:
 *
 * - scale-down (default): like contain, but never enlarges.
 * - contain: the largest size that fits inside w x h, aspect kept; may enlarge.
 * - cover: fills w x h exactly, enlarging if needed, cropping the overflow around the gravity.
 * - crop: cover without enlarging. An image already smaller than the box (in the axis that
 *   decides the scale) keeps its scale and is only cut down to at most w x h.
 * - pad: contain, then centred on a w x h canvas of the background colour.
 * - squeeze: exactly w x h, aspect ignored.
 *
 * With only one of w/h, the other follows the aspect ratio and there is nothing to crop or
 * pad: cover and pad behave as contain, crop as scale-down. With neither, nothing is resized.
 *
 * Gravity is Cloudflare's default "remainder" rule: a focal point (x, y) in 0..1 splits the
 * overflow so that x of it is cut on the left and 1 - x on the right (same for y). The focal
 * point then sits at the same relative position in the output as in the input, so
 * `top` (0.5, 0) never cuts the top and `right` never cuts the right.
 */
import type { Fit, Gravity, Rect } from "../transform/options";

export interface GeometryOptions {
  readonly width?: number;
  readonly height?: number;
  readonly fit: Fit;
  readonly gravity: Gravity;
}

export interface OutputGeometry {
  /** The part of the input that is kept (input pixels, integers). */
  readonly region: Rect;
  /** Size the region is resampled to. */
  readonly width: number;
  readonly height: number;
  /** Final output size: width x height, or the w x h canvas for fit=pad. */
  readonly canvasWidth: number;
  readonly canvasHeight: number;
  /** Top-left corner of the resampled region on the canvas (non-zero only for pad). */
  readonly offsetX: number;
  readonly offsetY: number;
}

export interface FocalPoint {
  readonly x: number;
  readonly y: number;
}

const CENTRE: FocalPoint = { x: 0.5, y: 0.5 };

/**
 * @param srcWidth, srcHeight the image as it reaches the resize step (after orientation, crop,
 *   flip and rotate).
 * @param focus the focal point to use for gravity `auto` (computed from the pixels by the
 *   caller); the centre when absent. Ignored for point gravities.
 */
export function computeOutputGeometry(
  srcWidth: number,
  srcHeight: number,
  options: GeometryOptions,
  focus?: FocalPoint,
): OutputGeometry {
  const { width: w, height: h, fit } = options;
  const point = options.gravity.mode === "point" ? options.gravity : (focus ?? CENTRE);

  if (w === undefined && h === undefined) return resampleAll(srcWidth, srcHeight, srcWidth, srcHeight);
  if (w === undefined || h === undefined) {
    // One side given: the other follows the aspect ratio; only "never enlarge" still matters.
    return fit === "scale-down" || fit === "crop"
      ? contain(srcWidth, srcHeight, w, h, false)
      : contain(srcWidth, srcHeight, w, h, true);
  }

  switch (fit) {
    case "scale-down":
      return contain(srcWidth, srcHeight, w, h, false);
    case "contain":
      return contain(srcWidth, srcHeight, w, h, true);
    case "pad": {
      const inner = contain(srcWidth, srcHeight, w, h, true);
      return {
        ...inner,
        canvasWidth: w,
        canvasHeight: h,
        offsetX: Math.floor((w - inner.width) / 2),
        offsetY: Math.floor((h - inner.height) / 2),
      };
    }
    case "squeeze":
      return resampleAll(srcWidth, srcHeight, w, h);
    case "cover":
      return cover(srcWidth, srcHeight, w, h, point, true);
    case "crop":
      return cover(srcWidth, srcHeight, w, h, point, false);
  }
}

/** True when the geometry cuts part of the input away (so gravity matters). */
export function cropsInput(geometry: OutputGeometry, srcWidth: number, srcHeight: number): boolean {
  return geometry.region.width < srcWidth || geometry.region.height < srcHeight;
}

function resampleAll(srcWidth: number, srcHeight: number, width: number, height: number): OutputGeometry {
  return {
    region: { x: 0, y: 0, width: srcWidth, height: srcHeight },
    width,
    height,
    canvasWidth: width,
    canvasHeight: height,
    offsetX: 0,
    offsetY: 0,
  };
}

/** Fit inside the box given by w and/or h (a missing side does not constrain). */
function contain(
  srcWidth: number,
  srcHeight: number,
  w: number | undefined,
  h: number | undefined,
  enlarge: boolean,
): OutputGeometry {
  const scaleX = w === undefined ? Infinity : w / srcWidth;
  const scaleY = h === undefined ? Infinity : h / srcHeight;
  if (!enlarge && Math.min(scaleX, scaleY) >= 1) return resampleAll(srcWidth, srcHeight, srcWidth, srcHeight);
  // The binding side gets the requested size exactly; the other is rounded from the aspect ratio.
  return scaleX <= scaleY
    ? resampleAll(srcWidth, srcHeight, w!, atLeastOne(Math.round((srcHeight * w!) / srcWidth)))
    : resampleAll(srcWidth, srcHeight, atLeastOne(Math.round((srcWidth * h!) / srcHeight)), h!);
}

function cover(
  srcWidth: number,
  srcHeight: number,
  w: number,
  h: number,
  point: FocalPoint,
  enlarge: boolean,
): OutputGeometry {
  const scaleX = w / srcWidth;
  const scaleY = h / srcHeight;
  let regionWidth: number;
  let regionHeight: number;
  let width: number;
  let height: number;
  if (!enlarge && Math.max(scaleX, scaleY) >= 1) {
    // fit=crop on an image that would have to grow: keep its scale, cut it to at most w x h.
    width = regionWidth = Math.min(w, srcWidth);
    height = regionHeight = Math.min(h, srcHeight);
  } else if (scaleX >= scaleY) {
    // Width decides the scale; the height overflows. Region height = h / scale in input px.
    width = w;
    height = h;
    regionWidth = srcWidth;
    regionHeight = clamp(Math.round((h * srcWidth) / w), 1, srcHeight);
  } else {
    width = w;
    height = h;
    regionHeight = srcHeight;
    regionWidth = clamp(Math.round((w * srcHeight) / h), 1, srcWidth);
  }
  const region: Rect = {
    x: Math.round(point.x * (srcWidth - regionWidth)),
    y: Math.round(point.y * (srcHeight - regionHeight)),
    width: regionWidth,
    height: regionHeight,
  };
  return { region, width, height, canvasWidth: width, canvasHeight: height, offsetX: 0, offsetY: 0 };
}

function atLeastOne(n: number): number {
  return n < 1 ? 1 : n;
}

function clamp(n: number, min: number, max: number): number {
  return n < min ? min : n > max ? max : n;
}
