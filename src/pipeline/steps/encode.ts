import { DEFAULT_QUALITY, encode as encodePixels } from "../../codecs";
import type { Step } from "../types";

/** Writes the output file from raw pixels: no metadata (EXIF, XMP, GPS, ICC) survives. */
export const encode: Step = {
  name: "encode",
  async run(state) {
    const quality = state.options.quality ?? DEFAULT_QUALITY[state.format];
    state.output = await encodePixels(state.image, state.format, quality, state.ctx.codecPath ?? "native");
  },
};
