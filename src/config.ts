import { ProblemError } from "./errors";

/** Limits and settings read from wrangler.toml [vars]; every one has a safe default. */
export interface Limits {
  readonly maxFileBytes: number;
  readonly maxFilesPerRequest: number;
  readonly maxInputPixels: number;
  readonly maxInputSide: number;
  readonly maxMetadataBytes: number;
  /** Whole request body of a bulk upload (Cloudflare's plan limit is 100 MB on Free and Pro). */
  readonly maxRequestBytes: number;
  /** Transform output caps (px per side, px in all). */
  readonly maxOutputSide: number;
  readonly maxOutputPixels: number;
  /** Largest source the synchronous transform path decodes. */
  readonly maxTransformSourcePixels: number;
  /** Wall-clock budget of one transform, checked between pipeline steps. */
  readonly transformBudgetMs: number;
  /** Uploads needing more renditions (files × variants) than this are processed asynchronously. */
  readonly autoAsyncRenditions: number;
  /** Queue retry backoff base in seconds (0 = retry at once, for tests). */
  readonly retryBaseSeconds: number;
  /** Local tests only: ingest and webhooks may use http and loopback addresses. */
  readonly allowInsecureOutbound: boolean;
  /** Distinct renditions of one image per UTC day through unsigned, non-preset URLs. */
  readonly maxRenditionsPerImagePerDay: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxFileBytes: 50 * 1024 * 1024,
  maxFilesPerRequest: 100,
  maxInputPixels: 100_000_000,
  maxInputSide: 20_000,
  maxMetadataBytes: 8 * 1024,
  maxRequestBytes: 100 * 1024 * 1024,
  maxOutputSide: 8192,
  maxOutputPixels: 50_000_000,
  maxTransformSourcePixels: 50_000_000,
  transformBudgetMs: 30_000,
  autoAsyncRenditions: 12,
  retryBaseSeconds: 2,
  allowInsecureOutbound: false,
  maxRenditionsPerImagePerDay: 50,
};

type LimitVars = Partial<
  Record<
    | "MAX_FILE_BYTES"
    | "MAX_FILES_PER_REQUEST"
    | "MAX_INPUT_PIXELS"
    | "MAX_INPUT_SIDE"
    | "MAX_METADATA_BYTES"
    | "MAX_REQUEST_BYTES"
    | "MAX_OUTPUT_SIDE"
    | "MAX_OUTPUT_PIXELS"
    | "MAX_TRANSFORM_SOURCE_PIXELS"
    | "TRANSFORM_BUDGET_MS"
    | "AUTO_ASYNC_RENDITIONS"
    | "RETRY_BASE_SECONDS"
    | "ALLOW_INSECURE_OUTBOUND"
    | "MAX_RENDITIONS_PER_IMAGE_PER_DAY",
    string
  >
>;

const cache = new WeakMap<object, Limits>();

export function limitsFrom(vars: LimitVars): Limits {
  const cached = cache.get(vars);
  if (cached) return cached;
  const limits: Limits = {
    maxFileBytes: positiveInt(vars.MAX_FILE_BYTES, "MAX_FILE_BYTES", DEFAULT_LIMITS.maxFileBytes),
    maxFilesPerRequest: positiveInt(vars.MAX_FILES_PER_REQUEST, "MAX_FILES_PER_REQUEST", DEFAULT_LIMITS.maxFilesPerRequest),
    maxInputPixels: positiveInt(vars.MAX_INPUT_PIXELS, "MAX_INPUT_PIXELS", DEFAULT_LIMITS.maxInputPixels),
    maxInputSide: positiveInt(vars.MAX_INPUT_SIDE, "MAX_INPUT_SIDE", DEFAULT_LIMITS.maxInputSide),
    maxMetadataBytes: positiveInt(vars.MAX_METADATA_BYTES, "MAX_METADATA_BYTES", DEFAULT_LIMITS.maxMetadataBytes),
    maxRequestBytes: positiveInt(vars.MAX_REQUEST_BYTES, "MAX_REQUEST_BYTES", DEFAULT_LIMITS.maxRequestBytes),
    maxOutputSide: positiveInt(vars.MAX_OUTPUT_SIDE, "MAX_OUTPUT_SIDE", DEFAULT_LIMITS.maxOutputSide),
    maxOutputPixels: positiveInt(vars.MAX_OUTPUT_PIXELS, "MAX_OUTPUT_PIXELS", DEFAULT_LIMITS.maxOutputPixels),
    maxTransformSourcePixels: positiveInt(vars.MAX_TRANSFORM_SOURCE_PIXELS, "MAX_TRANSFORM_SOURCE_PIXELS", DEFAULT_LIMITS.maxTransformSourcePixels),
    transformBudgetMs: positiveInt(vars.TRANSFORM_BUDGET_MS, "TRANSFORM_BUDGET_MS", DEFAULT_LIMITS.transformBudgetMs),
    autoAsyncRenditions: positiveInt(vars.AUTO_ASYNC_RENDITIONS, "AUTO_ASYNC_RENDITIONS", DEFAULT_LIMITS.autoAsyncRenditions),
    retryBaseSeconds: vars.RETRY_BASE_SECONDS === "0" ? 0 : positiveInt(vars.RETRY_BASE_SECONDS, "RETRY_BASE_SECONDS", DEFAULT_LIMITS.retryBaseSeconds),
    allowInsecureOutbound: vars.ALLOW_INSECURE_OUTBOUND === "true",
    maxRenditionsPerImagePerDay: positiveInt(
      vars.MAX_RENDITIONS_PER_IMAGE_PER_DAY,
      "MAX_RENDITIONS_PER_IMAGE_PER_DAY",
      DEFAULT_LIMITS.maxRenditionsPerImagePerDay,
    ),
  };
  cache.set(vars, limits);
  return limits;
}

function positiveInt(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) {
    // A misconfiguration is the operator's error, not the client's: fail loudly as a 500.
    throw new ProblemError(500, "internal-error", `Configuration variable ${name} must be a positive integer`);
  }
  return value;
}
