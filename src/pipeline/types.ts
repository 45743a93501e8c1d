import type { NativeSession, ScaleShift } from "../codecs/native";
import type { PngLayout } from "../codecs/png-layout";
import type { ColourTransform } from "../images/icc";
import type { RgbaImage } from "../codecs/types";
import type { ImageFormat, OutputFormat } from "../images/format";
import type { TransformOptions } from "../transform/options";
import type { View } from "./view";

/** A stored image as the pipeline receives it. */
export interface SourceImage {
  readonly bytes: Uint8Array;
  readonly format: ImageFormat;
  /** EXIF orientation 1..8 (anything else counts as 1). */
  readonly orientation: number;
  /**
   * Stored size (before orientation) when known, e.g. from the upload probe. Lets the pipeline
   * refuse a bad crop or an oversized output before spending a decode on it.
   */
  readonly width?: number;
  readonly height?: number;
}

/** Output caps; `TransformLimits` from the parameter parser fits. */
export interface OutputLimits {
  /** Largest output width or height, in px. */
  readonly maxSide: number;
  /** Largest output area, in px. */
  readonly maxPixels: number;
}

export type StepName =
  | "decode"
  | "colour"
  | "orient"
  | "crop"
  | "rotate"
  | "resize"
  | "blur"
  | "sharpen"
  | "watermark"
  | "format"
  | "flatten"
  | "encode";

export interface PipelineContext {
  /** The request's Accept header, for `fmt=auto`. */
  readonly acceptHeader?: string;
  /** Fetches a watermark image by id; null when there is no such image. */
  readonly loadWatermark?: (imageId: string) => Promise<SourceImage | null>;
  readonly limits: OutputLimits;
  /**
   * Checked between steps, after a turn of the event loop: an aborted request stops at the
   * next step boundary (the running step, e.g. a 300 ms AVIF encode, is not interrupted).
   */
  readonly signal?: AbortSignal;
  /** Called after each step that ran, with its wall time in ms (for Server-Timing / logs). */
  readonly trace?: (step: StepName, ms: number) => void;
  /**
   * Which codecs decode and resample (default "native"):
   * - "native": our module (wasm/jpeg): JPEG shrink-on-load decode into WASM memory and the
   *   box + Lanczos3 resampler reading it in place; other formats (and JPEGs our decoder does
   *   not support) decode with @jsquash and are resampled by our resampler. A source whose
   *   decode cannot be reduced below `maxFullDecodePixels` is refused (422) from its header.
   *   Baseline JPEG outputs (up to PROGRESSIVE_MIN_PIXELS) come from our encoder too.
   * - "jsquash": the previous path (@jsquash decoders at full size, @jsquash/resize, mozjpeg
   *   for every JPEG output), without that guard: kept for before/after benchmarks.
   */
  readonly codecPath?: "native" | "jsquash";
  /**
   * Native path: decode a JPEG or a non-interlaced PNG while resampling it, row by row, so no
   * decoded copy of the image is kept (default true). Not for CMYK/YCCK files or `g=auto`
   * (which needs all the pixels to look at); false forces the decode-then-resize path (tests,
   * benchmarks).
   */
  readonly streamDecode?: boolean;
  /** Largest decoded image (px) the native path accepts; DEFAULT_MAX_FULL_DECODE_PIXELS when absent. */
  readonly maxFullDecodePixels?: number;
}

/**
 * Largest decoded size (px) the default path accepts. Without shrink-on-load the peak is about
 * two RGBA copies (the decoder's WASM memory, then ours) plus the file: 12 MP is ~96 MB, the
 * most that leaves room in a 128 MB isolate.
 */
export const DEFAULT_MAX_FULL_DECODE_PIXELS = 12_000_000;

export interface PipelineResult {
  readonly bytes: Uint8Array;
  readonly format: OutputFormat;
  readonly width: number;
  readonly height: number;
}

/**
 * What the steps share. `image` holds decoded pixels and `view` the lossless geometry
 * (orient, crop, flip, rotate) not yet applied to them: the resize step turns both into
 * pixels in one pass. Steps replace `image` rather than keep old ones, so each large buffer
 * becomes garbage as soon as the next exists.
 */
export interface PipelineState {
  readonly source: SourceImage;
  readonly options: TransformOptions;
  readonly ctx: PipelineContext;
  image: RgbaImage;
  /**
   * Always in full-resolution stored pixels (so crop, fit and gravity are computed exactly as
   * without shrink-on-load); `image` may be a reduced decode, see `shrink`.
   */
  view: View;
  /**
   * `image` was decoded at 1/shrink (1, 2, 4 or 8: JPEG shrink-on-load): its size is
   * ceil(view.sourceWidth / shrink) x ceil(view.sourceHeight / shrink). The resize step maps
   * the view onto it (see ./view `scaledView`). Only ever > 1 on the native path.
   */
  shrink: number;
  /**
   * The native session whose WASM memory holds `image` (native path, from decode until the
   * resize step has read it out; runPipeline releases it in any case).
   */
  native?: NativeSession;
  /**
   * Set by the decode step when the native session will decode while resampling (see
   * `streamDecode`): `image` is then a placeholder of the decoded size without pixels, and the
   * colour step hands its conversion over here instead of converting pixels.
   */
  pendingDecode?: PendingDecode;
  format: OutputFormat;
  output: Uint8Array;
}

/** A decode deferred to the resize step, which streams the decoder's rows into the resampler. */
export type PendingDecode =
  | {
      readonly kind: "jpeg";
      readonly shift: ScaleShift;
      /** Embedded profile -> sRGB, applied to the rows as they stream. */
      colour?: ColourTransform;
    }
  | {
      readonly kind: "png";
      readonly layout: PngLayout;
      colour?: ColourTransform;
    };

/** One processing step: decides for itself whether it applies, then updates the state. */
export interface Step {
  readonly name: StepName;
  readonly run: (state: PipelineState) => void | Promise<void>;
}
