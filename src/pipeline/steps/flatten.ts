import { flattenOnto } from "../ops/composite";
import type { Step } from "../types";

/** JPEG has no alpha: composite translucent pixels onto the background colour (white by default). */
export const flatten: Step = {
  name: "flatten",
  run(state) {
    if (state.format !== "jpeg" || !state.image.hasAlpha) return;
    state.image = flattenOnto(state.image, state.options.background);
  },
};
