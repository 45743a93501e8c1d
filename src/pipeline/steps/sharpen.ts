import { sharpenAmount, unsharpLuma } from "../ops/sharpen";
import type { Step } from "../types";

/** Unsharp mask on luminance after resizing; `sharpen` 0..10 (0 = off). */
export const sharpen: Step = {
  name: "sharpen",
  run(state) {
    if (state.options.sharpen <= 0) return;
    state.image = unsharpLuma(state.image, sharpenAmount(state.options.sharpen));
  },
};
