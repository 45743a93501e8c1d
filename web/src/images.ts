// URLs, srcsets, snippets and placeholders for images of the public API.
import { thumbHashToDataURL } from "thumbhash";
import type { ImageJson } from "./api";

/** Widths offered in srcset; the server never enlarges past the original (fit=scale-down). */
export const SRCSET_WIDTHS = [160, 320, 480, 640, 960, 1280, 1920] as const;

export const imagePath = (id: string, params = ""): string => `/i/${id}${params ? `?${params}` : ""}`;

/** `/i/ID?w=320&fmt=auto 320w, ...`, stopping at the first width the original cannot fill. */
export function srcset(image: Pick<ImageJson, "id" | "width">, extra = "", origin = ""): string {
  const widths: number[] = SRCSET_WIDTHS.filter((width) => width < image.width);
  widths.push(Math.min(image.width, SRCSET_WIDTHS[SRCSET_WIDTHS.length - 1]!));
  return widths.map((width) => `${origin}${imagePath(image.id, `w=${width}${extra}&fmt=auto`)} ${width}w`).join(", ");
}

export const sizedSrc = (image: Pick<ImageJson, "id" | "width">, width: number, origin = ""): string =>
  `${origin}${imagePath(image.id, `w=${Math.min(width, image.width)}&fmt=auto`)}`;

const placeholderCache = new Map<string, string | null>();

/** The ThumbHash as a data: URL (cached), or null when there is none or it does not decode. */
export function placeholderUrl(image: Pick<ImageJson, "placeholder">): string | null {
  const hash = image.placeholder;
  if (!hash) return null;
  let url = placeholderCache.get(hash);
  if (url === undefined) {
    try {
      const binary = atob(hash.replace(/-/g, "+").replace(/_/g, "/"));
      url = thumbHashToDataURL(Uint8Array.from(binary, (char) => char.charCodeAt(0)));
    } catch {
      url = null;
    }
    placeholderCache.set(hash, url);
  }
  return url;
}

const escapeHtml = (text: string): string => text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A copy-paste <img> with srcset (fmt=auto: the server picks AVIF/WebP by Accept). */
export function imgSnippet(image: ImageJson, origin: string, sizes = "(max-width: 800px) 100vw, 800px"): string {
  const alt = escapeHtml(image.metadata["alt"] ?? image.filename ?? "");
  return [
    `<img src="${sizedSrc(image, 800, origin)}"`,
    `     srcset="${srcset(image, "", origin)}"`,
    `     sizes="${sizes}"`,
    `     width="${image.width}" height="${image.height}"`,
    `     alt="${alt}" loading="lazy" decoding="async">`,
  ].join("\n");
}

/** A <picture> with explicit AVIF and WebP sources, for caches that ignore Vary: Accept. */
export function pictureSnippet(image: ImageJson, origin: string, sizes = "(max-width: 800px) 100vw, 800px"): string {
  const alt = escapeHtml(image.metadata["alt"] ?? image.filename ?? "");
  const set = (fmt: string): string => srcset(image, "", origin).replace(/fmt=auto/g, `fmt=${fmt}`);
  const fallback = image.hasAlpha ? "png" : "jpeg";
  return [
    "<picture>",
    `  <source type="image/avif" srcset="${set("avif")}" sizes="${sizes}">`,
    `  <source type="image/webp" srcset="${set("webp")}" sizes="${sizes}">`,
    `  <img src="${sizedSrc(image, 800, origin).replace("fmt=auto", `fmt=${fallback}`)}"`,
    `       srcset="${set(fallback)}" sizes="${sizes}"`,
    `       width="${image.width}" height="${image.height}" alt="${alt}" loading="lazy" decoding="async">`,
    "</picture>",
  ].join("\n");
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
}

export const displayName = (image: Pick<ImageJson, "filename" | "id">): string => image.filename ?? image.id;
