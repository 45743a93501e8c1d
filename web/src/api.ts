// The public API, as the web app uses it: Bearer key, JSON in and out, problem+json errors.
// Nothing here knows more than README.md documents.

export type StoredFormat = "jpeg" | "png" | "webp" | "avif" | "gif";

export interface ImageJson {
  readonly id: string;
  readonly url: string;
  /** As displayed (after EXIF orientation). */
  readonly width: number;
  readonly height: number;
  readonly format: StoredFormat;
  readonly bytes: number;
  readonly sha256: string;
  readonly filename: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  readonly orientation: number;
  readonly hasAlpha: boolean;
  readonly frames: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly duplicate?: boolean;
  /** Base64 ThumbHash, when the server computed one. */
  readonly placeholder?: string | null;
}

export interface VariantJson {
  readonly name: string;
  readonly params: string;
  readonly url: string;
  readonly state: "pending" | "ready" | "failed";
  readonly format: string | null;
  readonly width: number | null;
  readonly height: number | null;
  readonly bytes: number | null;
  readonly error: string | null;
}

export interface ImageDetailJson extends ImageJson {
  readonly variants: readonly VariantJson[];
}

export type JobState = "queued" | "running" | "succeeded" | "failed" | "partial";

export interface JobJson {
  readonly id: string;
  readonly state: JobState;
  readonly total: number;
  readonly counts: Readonly<Record<"queued" | "running" | "succeeded" | "failed", number>>;
  readonly variants: Readonly<Record<string, string>>;
  readonly items?: ReadonlyArray<{ readonly imageId: string | null; readonly state: string; readonly error: string | null }>;
}

export interface TenantJson {
  readonly id: string;
  readonly name: string;
  readonly requireSignedUrls: boolean;
}

export interface PresetJson {
  readonly name: string;
  readonly params: string;
  readonly public: boolean;
}

export interface UploadErrorJson {
  readonly index: number;
  readonly filename: string | null;
  readonly status: number;
  readonly type: string;
  readonly detail: string;
}

export interface UploadResultJson {
  readonly images: readonly ImageJson[];
  readonly errors: readonly UploadErrorJson[];
  readonly job?: JobJson;
}

export const isFinished = (state: JobState): boolean => state === "succeeded" || state === "failed" || state === "partial";

/** An API error: the problem document's detail (or a network failure), with the HTTP status (0 for network). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = "about:blank",
    readonly body: unknown = undefined,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json | undefined };

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** The most useful sentence of a problem document (the first per-file error's detail for uploads). */
export function problemMessage(body: unknown, status: number): string {
  if (isRecord(body)) {
    const errors = body["errors"];
    if (Array.isArray(errors) && errors.length === 1 && isRecord(errors[0]) && typeof errors[0]["detail"] === "string") return errors[0]["detail"];
    if (typeof body["detail"] === "string") return body["detail"];
    if (typeof body["title"] === "string") return body["title"];
  }
  return status === 0 ? "The server could not be reached." : `The server answered ${status}.`;
}

export class Api {
  constructor(readonly key: string) {}

  private async request<T>(method: string, path: string, body?: Json): Promise<T> {
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers: { authorization: `Bearer ${this.key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch {
      throw new ApiError(0, "The server could not be reached.");
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const type = isRecord(parsed) && typeof parsed["type"] === "string" ? parsed["type"] : "about:blank";
      throw new ApiError(response.status, problemMessage(parsed, response.status), type, parsed);
    }
    return parsed as T;
  }

  tenant(): Promise<TenantJson> {
    return this.request("GET", "/v1/tenant");
  }

  listImages(query: { limit: number; cursor?: string | null; filenamePrefix?: string; metadata?: ReadonlyArray<readonly [string, string]> }): Promise<{
    images: ImageJson[];
    nextCursor: string | null;
  }> {
    const params = new URLSearchParams({ limit: String(query.limit) });
    if (query.cursor) params.set("cursor", query.cursor);
    if (query.filenamePrefix) params.set("filename_prefix", query.filenamePrefix);
    for (const [key, value] of query.metadata ?? []) params.append(`metadata.${key}`, value);
    return this.request("GET", `/v1/images?${params}`);
  }

  image(id: string): Promise<ImageDetailJson> {
    return this.request("GET", `/v1/images/${encodeURIComponent(id)}`);
  }

  /** JSON merge patch of the metadata: a string sets a key, null removes it. */
  patchMetadata(id: string, patch: Readonly<Record<string, string | null>>): Promise<ImageJson> {
    return this.request("PATCH", `/v1/images/${encodeURIComponent(id)}`, { metadata: patch });
  }

  deleteImage(id: string): Promise<void> {
    return this.request("DELETE", `/v1/images/${encodeURIComponent(id)}`);
  }

  job(id: string): Promise<JobJson> {
    return this.request("GET", `/v1/jobs/${encodeURIComponent(id)}`);
  }

  createVariantJob(imageId: string, variants: Readonly<Record<string, string>>): Promise<JobJson> {
    return this.request("POST", "/v1/jobs", { imageIds: [imageId], variants });
  }

  putPreset(name: string, params: string): Promise<PresetJson> {
    return this.request("PUT", `/v1/presets/${encodeURIComponent(name)}`, { params });
  }

  /** Polls a job until it finishes (or the signal aborts), reporting each state. */
  async waitForJob(id: string, onUpdate: (job: JobJson) => void, signal?: AbortSignal, intervalMs = 700): Promise<JobJson> {
    for (;;) {
      const job = await this.job(id);
      onUpdate(job);
      if (isFinished(job.state)) return job;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, intervalMs);
        signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(new DOMException("aborted", "AbortError"));
        });
      });
    }
  }

  /**
   * Uploads one file as multipart/form-data through XMLHttpRequest, for its upload progress
   * events (fetch has none for request bodies). Parts before the file apply to it: metadata,
   * variants and mode.
   */
  uploadFile(
    file: File,
    options: { metadata: Readonly<Record<string, string>>; variants: Readonly<Record<string, string>>; mode: "auto" | "sync" | "async" },
    onProgress: (sent: number, total: number) => void,
  ): { promise: Promise<{ status: number; body: UploadResultJson }>; abort: () => void } {
    const xhr = new XMLHttpRequest();
    const form = new FormData();
    if (Object.keys(options.metadata).length > 0) form.append("metadata", JSON.stringify(options.metadata));
    if (Object.keys(options.variants).length > 0) form.append("variants", JSON.stringify(options.variants));
    if (options.mode !== "auto") form.append("mode", options.mode);
    form.append("file", file, file.name);
    const promise = new Promise<{ status: number; body: UploadResultJson }>((resolve, reject) => {
      xhr.open("POST", "/v1/images");
      xhr.setRequestHeader("authorization", `Bearer ${this.key}`);
      xhr.responseType = "text";
      xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
      xhr.onerror = () => reject(new ApiError(0, "The upload failed: the server could not be reached."));
      xhr.onabort = () => reject(new ApiError(0, "The upload was cancelled."));
      xhr.onload = () => {
        let body: unknown = undefined;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = undefined;
        }
        if (xhr.status === 201 || xhr.status === 202 || xhr.status === 207) {
          const result = body as UploadResultJson;
          if (result.images.length > 0) {
            resolve({ status: xhr.status, body: result });
            return;
          }
        }
        const type = isRecord(body) && typeof body["type"] === "string" ? body["type"] : "about:blank";
        reject(new ApiError(xhr.status, problemMessage(body, xhr.status), type, body));
      };
      xhr.send(form);
    });
    return { promise, abort: () => xhr.abort() };
  }
}
