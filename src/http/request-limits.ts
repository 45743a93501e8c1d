import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { ProblemError } from "../errors";

/** Longest URL accepted (scheme, host, path and query), in characters. */
export const MAX_URL_LENGTH = 4096;
/** Largest request header block accepted: names, values and `: ` + CRLF per header. */
export const MAX_HEADER_BYTES = 16 * 1024;

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
