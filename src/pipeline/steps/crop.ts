import { invalidParameter } from "../../errors";
import type { Rect } from "../../transform/options";
import type { Step } from "../types";
import { cropView } from "../view";

/** Throws a 400 naming `crop` unless `rect` lies inside a width x height image. */
export function validateCrop(width: number, height: number, rect: Rect): void {
  const { x, y, width: w, height: h } = rect;
  const inside =
    Number.isInteger(x) && Number.isInteger(y) && Number.isInteger(w) && Number.isInteger(h) &&
    x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= width && y + h <= height;
  if (!inside) {
    throw invalidParameter("crop", `a rectangle inside the ${width}x${height} image`, `${x},${y},${w},${h}`);
  }
}

/** The requested rectangle of the upright (oriented) image, before rotate/flip and resize. */
export const crop: Step = {
  name: "crop",
  run(state) {
    const rect = state.options.crop;
    if (rect === undefined) return;
    validateCrop(state.view.rect.width, state.view.rect.height, rect);
    state.view = cropView(state.view, rect);
  },
};
