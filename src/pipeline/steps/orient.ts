import type { Step } from "../types";
import { EXIF_ORIENTATION, IDENTITY, type Turn, turnView } from "../view";

/** The turn that shows stored pixels upright; EXIF 0 and values outside 1..8 count as 1. */
export function orientationTurn(orientation: number): Turn {
  return EXIF_ORIENTATION[orientation] ?? IDENTITY;
}

/** EXIF orientation, always first: crop, w/h and gravity all refer to the upright image. */
export const orient: Step = {
  name: "orient",
  run(state) {
    state.view = turnView(state.view, orientationTurn(state.source.orientation));
  },
};
