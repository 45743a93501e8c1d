import type { TransformOptions } from "../../transform/options";
import type { Step } from "../types";
import { compose, IDENTITY, MIRROR_X, MIRROR_Y, ROTATE_180, ROTATE_270, ROTATE_90, type Turn, turnView } from "../view";

const FLIPS: Readonly<Record<TransformOptions["flip"], Turn>> = {
  none: IDENTITY,
  h: MIRROR_X,
  v: MIRROR_Y,
  hv: ROTATE_180,
};

const ROTATIONS: Readonly<Record<TransformOptions["rotate"], Turn>> = {
  0: IDENTITY,
  90: ROTATE_90,
  180: ROTATE_180,
  270: ROTATE_270,
};

/** As Cloudflare: flip first, then rotate clockwise; w/h refer to the axes after rotation. */
export function flipRotateTurn(flip: TransformOptions["flip"], rotate: TransformOptions["rotate"]): Turn {
  return compose(ROTATIONS[rotate], FLIPS[flip]);
}

export const rotate: Step = {
  name: "rotate",
  run(state) {
    state.view = turnView(state.view, flipRotateTurn(state.options.flip, state.options.rotate));
  },
};
