import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { ProblemError } from "../errors";

/** Longest URL accepted (scheme, host, path and query), in characters. */
export const MAX_URL_LENGTH = 4096;
/** Largest request header block accepted: names, values and `: ` + CRLF per header. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** Most bytes of a request body read and thrown away after the answer is decided (see requestBodies). */
export const DRAIN_MAX_BYTES = 16 * 1024 * 1024;
/** Longest wait for the rest of a request body being thrown away. */
export const DRAIN_MAX_MS = 15_000;

/**
 * What is left of every request body is dealt with here, after the route has answered, for
 * requests refused before their body is read (404, 405, 414, 431, 401, 429, 415, a declared
 * size over a limit) and those refused partway through it (413 on a JSON body, a multipart
 * field or the whole form) alike. Cancelling a body the client is still sending makes workerd
 * drop the connection, and the client sees a network error instead of the problem document
 * (one in four 1 MB PATCHes in a report, 6 of the e2e test's 100 refusals, most of them with 8 MB bodies). So request bodies are
 * never cancelled: the code that stops reading one releases it (`detachedBody`), and this
 * middleware reads and discards the rest, up to DRAIN_MAX_BYTES and DRAIN_MAX_MS, before the
 * answer goes out. A body never read whose declared length is over that bound is left alone
 * instead (the runtime then ends the exchange cleanly: checked with 8 MB bodies); so is one
 * still locked by a reader.
 */
export const requestBodies = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  await settleRequestBody(c.req.raw);
});

export async function settleRequestBody(request: Request): Promise<void> {
  const body = request.body;
  if (!body || body.locked) return;
  if (!request.bodyUsed) {
    const declared = Number(request.headers.get("content-length") ?? "NaN");
    if (declared === 0 || (Number.isFinite(declared) && declared > DRAIN_MAX_BYTES)) return;
  }
  const reader = body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), DRAIN_MAX_MS);
  });
  try {
    for (let drained = 0; drained <= DRAIN_MAX_BYTES; ) {
      const result = await Promise.race([reader.read(), timeout]);
      if (result === "timeout" || result.done) return;
      drained += result.value.byteLength;
    }
  } catch {
    // The client went away or the body errored: nothing left to answer to.
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    try {
      reader.releaseLock();
    } catch {
      // A read still pending (timeout): the reader keeps the lock; the runtime ends the body.
    }
  }
}

/**
 * The request body for code that may stop reading it early (a parser hitting a limit, an
 * upload refused after its header): cancelling the returned stream only releases the request
 * body, whose rest `requestBodies` then drains. Pulls one chunk per read, nothing ahead.
 */
export function detachedBody(request: Request): ReadableStream<Uint8Array> | null {
  const body = request.body;
  if (!body) return null;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const release = (): void => {
    try {
      reader?.releaseLock();
    } catch {
      // A read is still pending: the lock stays, and the rest of the body is left alone.
    }
    reader = undefined;
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        reader ??= body.getReader();
        const { done, value } = await reader.read();
        if (done) {
          release();
          controller.close();
        } else {
          controller.enqueue(value);
        }
      },
      cancel: release,
    },
    { highWaterMark: 0 },
  );
}

/**
 * Size limits on the request line and headers, before any route runs: a URL over
 * MAX_URL_LENGTH is a 414, headers over MAX_HEADER_BYTES a 431, both problem+json. Body
 * limits live where bodies are read: MAX_FILE_BYTES (PUT and each file), MAX_REQUEST_BYTES
 * (a multipart body), 16 KiB per multipart header block, 64 KiB per JSON body.
 */
export const requestLimits = createMiddleware<AppEnv>(async (c, next) => {
  const url = c.req.url;
  if (url.length > MAX_URL_LENGTH) {
    throw new ProblemError(414, "uri-too-long", `The URL is ${url.length} characters long; the limit is ${MAX_URL_LENGTH}.`, {
      maximum: MAX_URL_LENGTH,
    });
  }
  let headerBytes = 0;
  for (const [name, value] of c.req.raw.headers) headerBytes += name.length + value.length + 4;
  if (headerBytes > MAX_HEADER_BYTES) {
    throw new ProblemError(431, "headers-too-large", `The request headers take ${headerBytes} bytes; the limit is ${MAX_HEADER_BYTES}.`, {
      maximum: MAX_HEADER_BYTES,
    });
  }
  await next();
});
