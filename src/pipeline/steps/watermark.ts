import { decode, resize as resample } from "../../codecs";
import { applyColourTransform, sourceColourTransform } from "../../images/icc";
import type { RgbaImage } from "../../codecs/types";
import { invalidParameter } from "../../errors";
import type { WatermarkOptions, WatermarkPosition } from "../../transform/options";
import { drawOver } from "../ops/composite";
import type { PipelineContext, Step } from "../types";
import { fullView, materialize, turnView } from "../view";
import { orientationTurn } from "./orient";

/**
 * Where copies of a `w` x `h` watermark go on a `width` x `height` image: one position
 * `padding` px in from the named edges (centred on the others), or for `tile` a grid from
 * (padding, padding) with `padding` px gaps that covers the whole image.
 */
export function watermarkPlacements(
  width: number,
  height: number,
  w: number,
  h: number,
  position: WatermarkPosition,
  padding: number,
): Array<readonly [x: number, y: number]> {
  if (position === "tile") {
    const placements: Array<readonly [number, number]> = [];
    for (let y = padding; y < height; y += h + padding) {
      for (let x = padding; x < width; x += w + padding) placements.push([x, y]);
    }
    return placements;
  }
  const horizontal = position.endsWith("left") ? "left" : position.endsWith("right") ? "right" : "centre";
  const vertical = position.startsWith("top") ? "top" : position.startsWith("bottom") ? "bottom" : "centre";
  const x = horizontal === "left" ? padding : horizontal === "right" ? width - w - padding : Math.round((width - w) / 2);
  const y = vertical === "top" ? padding : vertical === "bottom" ? height - h - padding : Math.round((height - h) / 2);
  return [[x, y]];
}

type LoadWatermark = NonNullable<PipelineContext["loadWatermark"]>;

/**
 * The watermark image, upright, `scale` x the output width wide (aspect kept), or less when
 * that would make it taller than the output (a tall logo must not outgrow the image).
 */
async function prepareWatermark(options: WatermarkOptions, output: RgbaImage, load: LoadWatermark): Promise<RgbaImage> {
  const source = await load(options.imageId);
  if (source === null) throw invalidParameter("wm", "the id of an existing image", JSON.stringify(options.imageId));
  const decoded = await decode(source.bytes, source.format);
  // Watermarks get the same colour management as the image they go on.
  const transform = await sourceColourTransform(source.bytes, source.format);
  if (transform !== undefined) applyColourTransform(decoded.data, transform);
  const upright = materialize(decoded, turnView(fullView(decoded.width, decoded.height), orientationTurn(source.orientation)));
  let width = Math.max(1, Math.round(options.scale * output.width));
  let height = Math.max(1, Math.round((upright.height * width) / upright.width));
  if (height > output.height) {
    height = output.height;
    width = Math.max(1, Math.round((upright.width * height) / upright.height));
  }
  return resample(upright, width, height);
}

/** Draws the watermark over the output-sized image (source-over, premultiplied, with opacity). */
export const watermark: Step = {
  name: "watermark",
  async run(state) {
    const options = state.options.watermark;
    if (options === undefined || options.opacity <= 0) return;
    const load = state.ctx.loadWatermark;
    if (load === undefined) throw new Error("watermark requested but the pipeline has no loadWatermark");
    const mark = await prepareWatermark(options, state.image, load);
    let image = state.image;
    for (const [x, y] of watermarkPlacements(image.width, image.height, mark.width, mark.height, options.position, options.padding)) {
      image = drawOver(image, mark, x, y, options.opacity);
    }
    state.image = image;
  },
};
