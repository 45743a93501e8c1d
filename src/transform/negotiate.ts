import type { OutputFormat } from "../images/format";

/** What a client can display, as far as fmt=auto cares: part of the cache key of auto responses. */
export type AcceptClass = "avif" | "webp" | "legacy";

export function acceptClass(accept: string | null | undefined): AcceptClass {
  const types = new Set<string>();
  for (const range of (accept ?? "").toLowerCase().split(",")) {
    const [type, ...params] = range.trim().split(";");
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    if (type && !(q !== undefined && Number(q.slice(2)) === 0)) types.add(type.trim());
  }
  if (types.has("image/avif")) return "avif";
  if (types.has("image/webp")) return "webp";
  return "legacy";
}

/** fmt=auto: AVIF or WebP when accepted, else PNG for images with alpha and JPEG for the rest. */
export function autoFormat(accept: AcceptClass, hasAlpha: boolean): OutputFormat {
  if (accept === "avif") return "avif";
  if (accept === "webp") return "webp";
  return hasAlpha ? "png" : "jpeg";
}
