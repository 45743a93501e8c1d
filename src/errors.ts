import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Stable problem codes; each becomes the `type` URI of an RFC 9457 problem document. */
export type ProblemCode =
  | "bad-request"
  | "invalid-parameter"
  | "unknown-parameter"
  | "invalid-metadata"
  | "unauthorized"
  | "forbidden"
  | "not-found"
  | "method-not-allowed"
  | "payload-too-large"
  | "too-many-files"
  | "unsupported-media-type"
  | "unsupported-format"
  | "invalid-image"
  | "image-too-large"
  | "output-too-large"
  | "duplicate"
  | "conflict"
  | "signature-required"
  | "signature-invalid"
  | "signature-expired"
  | "rate-limited"
  | "rendition-limit"
  | "uri-too-long"
  | "headers-too-large"
  | "storage-failure"
  | "internal-error";

export const PROBLEM_TYPE_BASE = "https://edge-images.dev/problems/";

export interface ProblemExtras {
  /** The offending parameter, header or form field, when there is one. */
  readonly parameter?: string;
  readonly expected?: string;
  readonly received?: string;
  readonly [key: string]: unknown;
}

/**
 * The one error type of the service. Anything thrown with it becomes a problem+json
 * response with its status; anything else becomes a generic 500 that reveals nothing.
 */
export class ProblemError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: ProblemCode;
  readonly title: string;
  readonly extras: ProblemExtras;
  /** Response headers the problem needs (e.g. Retry-After on a 429). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: ContentfulStatusCode,
    code: ProblemCode,
    detail: string,
    extras: ProblemExtras = {},
    options?: { cause?: unknown; title?: string; headers?: Record<string, string> },
  ) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ProblemError";
    this.status = status;
    this.code = code;
    this.title = options?.title ?? titleFor(code);
    this.extras = extras;
    this.headers = options?.headers ?? {};
  }

  get detail(): string {
    return this.message;
  }
}

/** sharp-style message: "Expected X for NAME but received Y". */
export function invalidParameter(parameter: string, expected: string, received: string): ProblemError {
  return new ProblemError(400, "invalid-parameter", `Expected ${expected} for ${parameter} but received ${received}`, {
    parameter,
    expected,
    received,
  });
}

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  [key: string]: unknown;
}

export function problemDocument(error: ProblemError, instance?: string): ProblemDocument {
  return {
    ...error.extras,
    type: PROBLEM_TYPE_BASE + error.code,
    title: error.title,
    status: error.status,
    detail: error.detail,
    ...(instance === undefined ? {} : { instance }),
  };
}

export function problemResponse(error: ProblemError, instance?: string, headers?: HeadersInit): Response {
  const response = new Response(JSON.stringify(problemDocument(error, instance)), {
    status: error.status,
    headers,
  });
  for (const [name, value] of Object.entries(error.headers)) response.headers.set(name, value);
  response.headers.set("content-type", "application/problem+json");
  response.headers.set("x-content-type-options", "nosniff");
  response.headers.set("cache-control", "no-store");
  return response;
}

/** Any thrown value as a ProblemError; unknown errors become an opaque 500. */
export function toProblem(error: unknown): ProblemError {
  if (error instanceof ProblemError) return error;
  return new ProblemError(500, "internal-error", "The server could not complete the request.", {}, { cause: error });
}

function titleFor(code: ProblemCode): string {
  const text = code.replace(/-/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
