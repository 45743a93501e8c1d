import { applyColourTransform, sourceColourTransform } from "../../images/icc";
import type { Step } from "../types";

/**
 * Embedded colour profile -> sRGB, right after decoding. Outputs carry no profile and browsers
 * take untagged images as sRGB, so an Adobe RGB or Display P3 source is converted here (see
 * src/images/icc.ts for what is converted and what is left alone: LUT-based RGB profiles; CMYK
 * JPEGs are converted through their CMYK profile by the decode step).
 * The decoded pixels are converted in place; alpha is untouched. When the decode is deferred
 * to the resize step (streamed), the conversion goes with it and is applied to each row. Without a profile, or with an
 * sRGB one, this is a scan of the file's headers and nothing else.
 */
export const colour: Step = {
  name: "colour",
  async run(state) {
    const transform = await sourceColourTransform(state.source.bytes, state.source.format);
    if (transform === undefined) return;
    if (state.pendingDecode !== undefined) {
      state.pendingDecode.colour = transform;
      return;
    }
    applyColourTransform(state.image.data, transform);
  },
};
