import { hasTranslucentPixel } from "../../codecs";
import type { ImageFormat, OutputFormat } from "../../images/format";
import type { Step } from "../types";

/**
 * `fmt=auto` against the Accept header: AVIF when accepted, else WebP, else PNG for images
 * with transparency and JPEG for the rest. A media range with q=0 counts as refused; `*` /
 * `image/*` wildcards do not count (browsers that send only those may not decode AVIF).
 */
export function negotiateFormat(acceptHeader: string | undefined, hasAlpha: boolean): OutputFormat {
  const accepted = acceptedTypes(acceptHeader ?? "");
  if (accepted.has("image/avif")) return "avif";
  if (accepted.has("image/webp")) return "webp";
  return hasAlpha ? "png" : "jpeg";
}

function acceptedTypes(header: string): Set<string> {
  const types = new Set<string>();
  for (const range of header.split(",")) {
    const [type, ...params] = range.split(";").map((part) => part.trim().toLowerCase());
    if (type === undefined || type === "") continue;
    const q = params.find((p) => p.startsWith("q="));
    if (q !== undefined && !(Number(q.slice(2)) > 0)) continue;
    types.add(type);
  }
  return types;
}

/** Without `fmt`, keep the stored format; GIF (we do not write it) becomes PNG. */
export function keepFormat(format: ImageFormat): OutputFormat {
  return format === "gif" ? "png" : format;
}

/** Decides the output format, just before flattening (which depends on it). */
export const format: Step = {
  name: "format",
  run(state) {
    const requested = state.options.format;
    if (requested === undefined) {
      state.format = keepFormat(state.source.format);
    } else if (requested === "auto") {
      // hasAlpha may be stale after a crop removed every translucent pixel: look.
      const hasAlpha = state.image.hasAlpha && hasTranslucentPixel(state.image.data);
      state.format = negotiateFormat(state.ctx.acceptHeader, hasAlpha);
    } else {
      state.format = requested;
    }
  },
};
