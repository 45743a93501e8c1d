import { blurRadiusToSigma, gaussianBlur } from "../ops/blur";
import type { Step } from "../types";

/** Gaussian blur of the output-sized image; `blur` is a radius in output px (0 = off). */
export const blur: Step = {
  name: "blur",
  run(state) {
    if (state.options.blur <= 0) return;
    state.image = gaussianBlur(state.image, blurRadiusToSigma(state.options.blur));
  },
};
