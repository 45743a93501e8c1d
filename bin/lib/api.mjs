// @ts-check
// The HTTP client of the CLI: bearer key, problem+json errors, retries with backoff and jitter.
import { printable } from "./format.mjs";

/**
 * An RFC 9457 problem document as the API returns it.
 * @typedef {{ type?: string, title?: string, status?: number, detail?: string, [field: string]: unknown }} Problem
 */

/** A request the server answered with an error status (after any retries). */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {Problem | undefined} problem
   * @param {string} message
   */
  constructor(status, problem, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }

  /** The stable problem code, e.g. "unsupported-format" (the last segment of the problem type). */
  get code() {
    const type = this.problem?.type;
    return typeof type === "string" ? (type.split("/").pop() ?? "") : "";
  }
}

/** The request never got an answer: connection refused or reset, DNS, TLS, a body read error. */
export class NetworkError extends Error {
  /**
   * @param {string} message
   * @param {unknown} cause
   */
  constructor(message, cause) {
    super(message, { cause });
    this.name = "NetworkError";
  }
}

/**
 * @typedef {object} RetryPolicy
 * @property {number} retries extra attempts after the first
 * @property {number} baseMs first backoff; doubles each attempt, with jitter
 * @property {number} [maxMs] longest wait between attempts (default 30 s)
 */

/**
 * @typedef {object} RetryNotice
 * @property {number} attempt the attempt that failed, from 1
 * @property {number} delayMs wait before the next one
 * @property {string} reason "503 Service Unavailable", "429 (Retry-After 2 s)", "network error: ECONNRESET"
 */

/**
 * @typedef {object} RequestOptions
 * @property {Record<string, string | number | boolean | ReadonlyArray<string> | undefined>} [query]
 * @property {Record<string, string>} [headers]
 * @property {unknown} [json] a JSON body
 * @property {() => RequestInit["body"]} [body] makes a fresh body for each attempt (streams cannot be replayed)
 * @property {boolean} [retry] retry on network errors, 408, 429 and 5xx (default true)
 * @property {(notice: RetryNotice) => void} [onRetry]
 * @property {() => void} [onAttempt] called before each attempt
 * @property {AbortSignal} [signal]
 */

/**
 * @typedef {object} ApiResponse
 * @property {Response} response
 * @property {number} attempts
 */

export class ApiClient {
  /** Private: no dump or log of the client can show it. */
  #key;

  /**
   * @param {{ endpoint: string, key: string | undefined, retry: RetryPolicy, userAgent: string }} options
   */
  constructor(options) {
    this.endpoint = options.endpoint;
    this.#key = options.key;
    this.retryPolicy = options.retry;
    this.userAgent = options.userAgent;
  }

  /**
   * @param {string} path "/v1/images"
   * @param {RequestOptions["query"]} [query]
   */
  url(path, query) {
    const url = new URL(this.endpoint + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const item of value) url.searchParams.append(name, item);
      else url.searchParams.set(name, String(value));
    }
    return url;
  }

  /**
   * Sends a request, retrying what may succeed later; resolves with a 2xx/3xx response,
   * rejects with ApiError (an error status) or NetworkError (no answer).
   * @param {string} method
   * @param {string} path
   * @param {RequestOptions} [options]
   * @returns {Promise<ApiResponse>}
   */
  async send(method, path, options = {}) {
    const url = this.url(path, options.query);
    /** @type {Record<string, string>} */
    const headers = { "user-agent": this.userAgent, accept: "application/json", ...options.headers };
    if (this.#key) headers["authorization"] = `Bearer ${this.#key}`;
    if (options.json !== undefined) headers["content-type"] = "application/json";
    const policy = options.retry === false ? { ...this.retryPolicy, retries: 0 } : this.retryPolicy;

    for (let attempt = 1; ; attempt++) {
      options.signal?.throwIfAborted();
      options.onAttempt?.();
      const body = options.json !== undefined ? JSON.stringify(options.json) : options.body?.();
      /** @type {Response} */
      let response;
      try {
        response = await fetch(url, {
          method,
          headers,
          ...(body !== undefined ? { body } : {}),
          ...(body !== undefined && body !== null && isStreaming(body) ? { duplex: "half" } : {}),
          redirect: "manual",
          ...(options.signal ? { signal: options.signal } : {}),
        });
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason;
        const failure = new NetworkError(`network error: ${describeNetworkError(error)} (${method} ${url.origin}${url.pathname})`, error);
        if (attempt > policy.retries) throw failure;
        const delayMs = backoffMs(policy, attempt);
        options.onRetry?.({ attempt, delayMs, reason: failure.message });
        await sleep(delayMs, options.signal);
        continue;
      }
      if (response.status < 400) return { response, attempts: attempt };

      const retryable = response.status === 408 || response.status === 429 || response.status >= 500;
      if (!retryable || attempt > policy.retries) throw await apiErrorOf(response, method, url);
      const retryAfter = retryAfterMs(response.headers.get("retry-after"));
      await response.body?.cancel().catch(() => undefined);
      const delayMs = retryAfter ?? backoffMs(policy, attempt);
      options.onRetry?.({
        attempt,
        delayMs,
        reason: `${response.status} ${response.statusText}${retryAfter !== undefined ? ` (Retry-After ${Math.round(retryAfter / 1000)} s)` : ""}`.trim(),
      });
      await sleep(delayMs, options.signal);
    }
  }

  /**
   * send() and parse the JSON answer.
   * @param {string} method
   * @param {string} path
   * @param {RequestOptions} [options]
   * @returns {Promise<unknown>}
   */
  async json(method, path, options) {
    const { response } = await this.send(method, path, options);
    if (response.status === 204) return undefined;
    return response.json();
  }
}

/**
 * @param {Response} response
 * @param {string} method
 * @param {URL} url
 * @returns {Promise<ApiError>}
 */
export async function apiErrorOf(response, method, url) {
  const text = await response.text().catch(() => "");
  /** @type {Problem | undefined} */
  let problem;
  try {
    const parsed = /** @type {unknown} */ (JSON.parse(text));
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) problem = /** @type {Problem} */ (parsed);
  } catch {
    // not JSON: a proxy's HTML page, say
  }
  const code = problem?.type ? String(problem.type).split("/").pop() : undefined;
  const detail = problem?.detail ?? problem?.title ?? (text.slice(0, 200) || response.statusText);
  const hint =
    response.status === 401 ? " (check the API key: --key, EDGE_IMAGES_KEY or the config file)" : response.status >= 300 && response.status < 400 ? ` (redirected to ${response.headers.get("location")}; check --endpoint)` : "";
  const message = `${response.status}${code ? ` ${code}` : ""}: ${printable(String(detail))}${hint}`;
  return new ApiError(response.status, problem, message.length > 0 ? message : `${method} ${url.pathname} failed`);
}

/**
 * Exponential backoff with jitter: base * 2^(attempt-1), scaled by a random factor in [0.5, 1), capped.
 * @param {RetryPolicy} policy
 * @param {number} attempt the attempt that failed, from 1
 */
export function backoffMs(policy, attempt) {
  const max = policy.maxMs ?? 30_000;
  const exponential = Math.min(max, policy.baseMs * 2 ** (attempt - 1));
  return Math.round(exponential * (0.5 + Math.random() / 2));
}

/**
 * Retry-After as seconds or an HTTP date; at most 5 minutes.
 * @param {string | null} header
 * @returns {number | undefined}
 */
export function retryAfterMs(header) {
  if (header === null || header.trim() === "") return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(300_000, Math.max(0, ms));
}

/**
 * @param {number} ms
 * @param {AbortSignal | undefined} signal
 * @returns {Promise<void>}
 */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** @param {unknown} error */
function describeNetworkError(error) {
  /** @type {unknown} */
  let current = error;
  const parts = [];
  for (let depth = 0; current instanceof Error && depth < 4; depth++) {
    const code = "code" in current && typeof current.code === "string" ? current.code : undefined;
    parts.push(code ?? current.message);
    current = current.cause;
  }
  // "fetch failed" says nothing; the cause ("ECONNREFUSED") does.
  const useful = parts.filter((part) => part !== "fetch failed");
  return printable((useful.length > 0 ? useful : parts).join(": ") || String(error));
}

/** @param {NonNullable<RequestInit["body"]>} body */
function isStreaming(body) {
  return typeof body === "object" && (Symbol.asyncIterator in body || body instanceof ReadableStream);
}
