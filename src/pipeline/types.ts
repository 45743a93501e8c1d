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
}

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
  view: View;
  format: OutputFormat;
  output: Uint8Array;
}

/** One processing step: decides for itself whether it applies, then updates the state. */
export interface Step {
  readonly name: StepName;
  readonly run: (state: PipelineState) => void | Promise<void>;
}
