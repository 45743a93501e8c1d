import type { OutputFormat } from "../images/format";

/** Cloudflare Image Transformations fit modes. */
export type Fit = "scale-down" | "contain" | "cover" | "crop" | "pad" | "squeeze";

export type WatermarkPosition =
  | "top-left" | "top" | "top-right"
  | "left" | "center" | "right"
  | "bottom-left" | "bottom" | "bottom-right"
  | "tile";

/** Where cover/crop/pad keep the image: a focal point in 0..1 (named gravities map to points), or content-aware. */
export type Gravity = { readonly mode: "point"; readonly x: number; readonly y: number } | { readonly mode: "auto" };

export interface Rgba {
  readonly r: number;
  readonly g: number;
  readonly b: number;
  readonly a: number; // 0..255
}

export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface WatermarkOptions {
  readonly imageId: string;
  readonly position: WatermarkPosition;
  readonly scale: number; // fraction of the output width, 0.001..1 in thousandths
  readonly opacity: number; // 0..1 in hundredths
  readonly padding: number; // output px from the edge, 0..1000; not multiplied by dpr
}

/**
 * The canonical, validated, fully defaulted transform request. Produced only by the
 * parser in ./params.ts; its canonical string is the cache key.
 */
export interface TransformOptions {
  /** Target size in device pixels (dpr already folded in); undefined = follow the other side / source. */
  readonly width?: number;
  readonly height?: number;
  readonly fit: Fit;
  readonly gravity: Gravity;
  /** Source-pixel rectangle (after EXIF orientation), applied before rotate/flip/resize. */
  readonly crop?: Rect;
  readonly rotate: 0 | 90 | 180 | 270;
  readonly flip: "none" | "h" | "v" | "hv";
  /** "auto" is resolved against Accept before encoding; undefined = keep the source format (GIF becomes PNG). */
  readonly format?: OutputFormat | "auto";
  /** 1..100; undefined = per-format default. */
  readonly quality?: number;
  readonly blur: number; // radius in px, 0 = off
  readonly sharpen: number; // amount, 0 = off
  readonly background: Rgba; // pad colour and alpha flattening for JPEG
  readonly watermark?: WatermarkOptions;
}
