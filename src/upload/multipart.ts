import { ProblemError, toProblem, type ProblemExtras } from "../errors";

/**
 * A streaming multipart/form-data parser (RFC 7578 over RFC 2046) for Workers.
 *
 * Every part's body is a real stream: bytes reach the consumer as they arrive and nothing is
 * read from the request ahead of the consumer, so memory stays at about one input chunk plus
 * the boundary (or one header block), whatever the part sizes. Parts come one at a time: asking
 * for the next part drains whatever the consumer left of the previous one.
 *
 * Every failure caused by the body is a ProblemError (400 malformed, 413 over a limit).
 */

export interface MultipartPart {
  /** The `name` parameter of Content-Disposition. */
  readonly name: string;
  /** `filename*` (RFC 5987) when present, else `filename`; decoded as UTF-8. */
  readonly filename?: string;
  /** The part's Content-Type header as sent, if any. */
  readonly contentType?: string;
  /** All part headers, values decoded like `filename` (workerd keeps them as UTF-8, so the bytes survive). */
  readonly headers: Headers;
  /** The part's content. Read or cancel it before asking for the next part. */
  readonly body: ReadableStream<Uint8Array>;
}

export interface MultipartLimits {
  /** Bytes of one part's header block, blank line included. */
  readonly maxHeaderBytes: number;
  /** Parts in the whole body. */
  readonly maxParts: number;
  /** Bytes read from the request body, preamble and boundaries included. */
  readonly maxTotalBytes: number;
}

export type MultipartOptions = Partial<MultipartLimits>;

export const DEFAULT_MULTIPART_LIMITS: MultipartLimits = {
  maxHeaderBytes: 16 * 1024,
  maxParts: 100,
  // The request body limit of the Free and Pro plans.
  maxTotalBytes: 100 * 1024 * 1024,
};

/**
 * Parts of a multipart/form-data body, in order. Throws at once (before reading anything) when
 * the Content-Type is not multipart/form-data with a valid boundary; body errors are thrown by
 * the iterator and by the part body being read. Leaving the loop early cancels the request body.
 */
export function parseMultipart(
  body: ReadableStream<Uint8Array> | null,
  contentType: string | null | undefined,
  options: MultipartOptions = {},
): AsyncGenerator<MultipartPart, void, undefined> {
  const boundary = parseBoundary(contentType);
  const limits = resolveLimits(options);
  if (body === null) throw badRequest("The request has no body.");
  return iterateParts(new MultipartReader(body, boundary, limits));
}

/**
 * The boundary of a `multipart/form-data` Content-Type (quoted or not), checked against RFC 2046:
 * 1 to 70 characters from its set, not ending in a space.
 */
export function parseBoundary(contentType: string | null | undefined): string {
  const header = contentType ?? "";
  const mediaType = header.split(";", 1)[0]?.trim().toLowerCase() ?? "";
  if (mediaType !== "multipart/form-data") {
    throw new ProblemError(415, "unsupported-media-type", "Expected a multipart/form-data body.", {
      parameter: "content-type",
      expected: "multipart/form-data",
      received: header === "" ? "(none)" : header,
    });
  }
  const semicolon = header.indexOf(";");
  const parameters = parseParameters(semicolon === -1 ? "" : header.slice(semicolon), "content-type");
  const boundary = parameters.get("boundary");
  if (boundary === undefined) {
    throw badRequest("The Content-Type has no boundary parameter.", { parameter: "content-type", expected: "a boundary parameter" });
  }
  if (!BOUNDARY_PATTERN.test(boundary)) {
    throw badRequest("The multipart boundary must be 1 to 70 characters allowed by RFC 2046, not ending in a space.", {
      parameter: "content-type",
      expected: "1 to 70 of A-Z a-z 0-9 '()+_,-./:=? and space, not ending in a space",
      received: boundary,
    });
  }
  return boundary;
}

/**
 * A small part (a JSON field, say) read whole as UTF-8 text. Over `maxBytes` the rest is
 * cancelled and a 413 is thrown.
 */
export async function readPartText(part: Pick<MultipartPart, "name" | "body">, maxBytes: number): Promise<string> {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new RangeError(`Expected non-negative integer for maxBytes but received ${String(maxBytes)}`);
  }
  const reader = part.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new ProblemError(413, "payload-too-large", `The field "${part.name}" is larger than ${maxBytes} bytes.`, {
          parameter: part.name,
          limit: "maxBytes",
          maximum: maxBytes,
        });
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  try {
    return STRICT_UTF8.decode(concatBytes(chunks, size));
  } catch {
    throw badRequest(`The field "${part.name}" is not valid UTF-8 text.`, { parameter: part.name });
  }
}

// ---------------------------------------------------------------------------------------------

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const SPACE = 0x20;
const TAB = 0x09;
const CRLF = new Uint8Array([CR, LF]);

/** Largest slice handed to a part body consumer, so downstream buffers stay small even when input chunks are big. */
const MAX_EMIT_BYTES = 64 * 1024;

// RFC 2046 bchars; a space may not be last.
const BOUNDARY_PATTERN = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
// RFC 9110 tchar.
const TOKEN_PATTERN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

async function* iterateParts(reader: MultipartReader): AsyncGenerator<MultipartPart, void, undefined> {
  try {
    for (let part = await reader.nextPart(); part !== null; part = await reader.nextPart()) {
      yield part;
    }
  } finally {
    reader.close();
  }
}

/** What the reader knows of the part whose body is being streamed. */
interface OpenPart {
  readonly name: string;
  /** Its closing delimiter has been consumed. */
  ended: boolean;
  /** The iterator moved past it (or stopped): its stream no longer gets bytes. */
  detached: boolean;
  controller: ReadableStreamDefaultController<Uint8Array> | undefined;
}

class MultipartReader {
  private readonly source: ReadableStreamDefaultReader<Uint8Array>;
  /** CRLF "--" boundary: what ends every part (RFC 2046 `delimiter`). */
  private readonly delimiter: Uint8Array;
  private readonly limits: MultipartLimits;
  /**
   * Bytes read but not yet consumed. Starts with a CRLF of our own so that a boundary on the very
   * first line matches the same delimiter as every later one.
   */
  private buffer: Uint8Array = CRLF;
  private sourceEnded = false;
  private bytesRead = 0;
  private partCount = 0;
  private started = false;
  private finished = false;
  private failure: ProblemError | undefined;
  private current: OpenPart | undefined;
  /** Serializes body pulls and part advances, which both consume `buffer`. */
  private lock: Promise<void> = Promise.resolve();

  constructor(body: ReadableStream<Uint8Array>, boundary: string, limits: MultipartLimits) {
    this.source = body.getReader();
    this.delimiter = new TextEncoder().encode(`\r\n--${boundary}`);
    this.limits = limits;
  }

  /** The next part, or null after the closing boundary. */
  nextPart(): Promise<MultipartPart | null> {
    return this.exclusive(async () => {
      if (this.failure) throw this.failure;
      if (this.finished) return null;
      try {
        await this.skipToNextDelimiter();
        if (await this.readBoundaryLineEnd() === "close") {
          this.finish();
          return null;
        }
        return await this.readPart();
      } catch (error) {
        throw this.fail(error);
      }
    });
  }

  /** The consumer stopped iterating: release the request body and end the open part's stream. */
  close(): void {
    if (this.finished || this.failure) return;
    this.fail(badRequest("Reading of the multipart body was stopped before its end."));
  }

  /** Consumes the preamble or whatever the consumer left of the current part, up to its delimiter. */
  private async skipToNextDelimiter(): Promise<void> {
    if (!this.started) {
      this.started = true;
      await this.discardUntilDelimiter(() => badRequest("The body does not contain the boundary given in its Content-Type."));
      return;
    }
    const part = this.current;
    if (!part) return;
    // Its pending pulls now give up; if draining fails, fail() errors its stream.
    part.detached = true;
    if (!part.ended) {
      await this.discardUntilDelimiter(() => truncatedIn(part.name));
      part.ended = true;
      // Not read to its end by the consumer: it must not look complete if read later.
      errorQuietly(
        part.controller,
        new ProblemError(500, "internal-error", `The body of part "${part.name}" was read after the next part was requested.`),
      );
    }
    this.current = undefined;
  }

  private async discardUntilDelimiter(onEnd: () => ProblemError): Promise<void> {
    while ((await this.readUntilDelimiter(onEnd)) !== null) {
      // Discarded.
    }
  }

  /** After a delimiter: "--" closes the body; otherwise optional padding then CRLF starts a part. */
  private async readBoundaryLineEnd(): Promise<"part" | "close"> {
    const truncated = () => badRequest("The body ends right after a boundary, without the closing boundary.");
    if (!(await this.ensure(2))) throw truncated();
    if (this.buffer[0] === DASH && this.buffer[1] === DASH) return "close";
    for (;;) {
      if (!(await this.ensure(1))) throw truncated();
      const byte = this.buffer[0];
      if (byte !== SPACE && byte !== TAB) break;
      this.buffer = this.buffer.subarray(1);
    }
    if (!(await this.ensure(2))) throw truncated();
    if (this.buffer[0] !== CR || this.buffer[1] !== LF) {
      throw badRequest("A boundary line has unexpected characters after the boundary.");
    }
    this.buffer = this.buffer.subarray(2);
    return "part";
  }

  private async readPart(): Promise<MultipartPart> {
    this.partCount += 1;
    if (this.partCount > this.limits.maxParts) {
      throw new ProblemError(413, "payload-too-large", `The form has more than ${this.limits.maxParts} parts.`, {
        limit: "maxParts",
        maximum: this.limits.maxParts,
      });
    }
    const lines = await this.readHeaderLines();
    const head = interpretHeaders(lines, this.partCount);
    const open: OpenPart = { name: head.name, ended: false, detached: false, controller: undefined };
    this.current = open;
    return {
      name: head.name,
      ...(head.filename === undefined ? {} : { filename: head.filename }),
      ...(head.contentType === undefined ? {} : { contentType: head.contentType }),
      headers: head.headers,
      body: this.openBody(open),
    };
  }

  private openBody(part: OpenPart): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          part.controller = controller;
        },
        pull: (controller) =>
          this.exclusive(async () => {
            // Drained or failed meanwhile: the stream was already errored.
            if (part.detached || part.ended) return;
            try {
              const chunk = await this.readUntilDelimiter(() => truncatedIn(part.name));
              if (chunk === null) {
                part.ended = true;
                controller.close();
              } else {
                controller.enqueue(chunk);
              }
            } catch (error) {
              throw this.fail(error);
            }
          }),
        // Nothing to do now: the iterator drains the rest when asked for the next part.
        cancel: () => undefined,
      },
      // Pull only when the consumer reads, so nothing is read from the request ahead of it.
      { highWaterMark: 0 },
    );
  }

  /** Header lines of one part, up to the blank line, within maxHeaderBytes. */
  private async readHeaderLines(): Promise<Uint8Array[]> {
    const lines: Uint8Array[] = [];
    let used = 0;
    for (;;) {
      const line = await this.readLine(this.limits.maxHeaderBytes - used);
      used += line.byteLength + CRLF.byteLength;
      if (line.byteLength === 0) return lines;
      lines.push(line);
    }
  }

  /** One CRLF-terminated line (returned without the CRLF) that fits in `budget` bytes with its CRLF. */
  private async readLine(budget: number): Promise<Uint8Array> {
    for (;;) {
      const at = indexOfBytes(this.buffer, CRLF);
      if (at !== -1 && at + CRLF.byteLength <= budget) {
        const line = this.buffer.subarray(0, at);
        this.buffer = this.buffer.subarray(at + CRLF.byteLength);
        return line;
      }
      // Without a CRLF the whole buffer is one unfinished line.
      if (at !== -1 || this.buffer.byteLength >= budget) {
        throw new ProblemError(413, "payload-too-large", `The headers of part ${this.partCount} are larger than ${this.limits.maxHeaderBytes} bytes.`, {
          limit: "maxHeaderBytes",
          maximum: this.limits.maxHeaderBytes,
        });
      }
      if (!(await this.fill())) throw badRequest(`The body ends inside the headers of part ${this.partCount}.`);
    }
  }

  /**
   * The next bytes before the delimiter (never empty), or null once the delimiter itself has been
   * consumed. Holds back only a tail that could be the start of a delimiter.
   */
  private async readUntilDelimiter(onEnd: () => ProblemError): Promise<Uint8Array | null> {
    for (;;) {
      // Search a bounded window so emitting a big buffer in slices stays linear.
      const window = this.buffer.subarray(0, MAX_EMIT_BYTES + this.delimiter.byteLength - 1);
      const at = indexOfBytes(window, this.delimiter);
      if (at === 0) {
        this.buffer = this.buffer.subarray(this.delimiter.byteLength);
        return null;
      }
      if (at > 0) return this.take(at);
      // No delimiter starts in the first MAX_EMIT_BYTES of a longer buffer.
      if (window.byteLength < this.buffer.byteLength) return this.take(MAX_EMIT_BYTES);
      const safe = this.buffer.byteLength - partialDelimiterLength(this.buffer, this.delimiter);
      if (safe > 0) return this.take(Math.min(safe, MAX_EMIT_BYTES));
      if (!(await this.fill())) throw onEnd();
    }
  }

  private take(count: number): Uint8Array {
    const bytes = this.buffer.subarray(0, count);
    this.buffer = this.buffer.subarray(count);
    return bytes;
  }

  /** Reads until `buffer` holds `count` bytes; false if the body ends first. */
  private async ensure(count: number): Promise<boolean> {
    while (this.buffer.byteLength < count) {
      if (!(await this.fill())) return false;
    }
    return true;
  }

  /** Appends one chunk of the request body to `buffer`; false at its end. */
  private async fill(): Promise<boolean> {
    if (this.sourceEnded) return false;
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = await this.source.read();
    } catch (cause) {
      throw new ProblemError(400, "bad-request", "The request body could not be read to its end.", {}, { cause });
    }
    if (result.done) {
      this.sourceEnded = true;
      return false;
    }
    const chunk: unknown = result.value;
    if (!(chunk instanceof Uint8Array)) throw badRequest("The request body is not a byte stream.");
    this.bytesRead += chunk.byteLength;
    if (this.bytesRead > this.limits.maxTotalBytes) {
      throw new ProblemError(413, "payload-too-large", `The request body is larger than ${this.limits.maxTotalBytes} bytes.`, {
        limit: "maxTotalBytes",
        maximum: this.limits.maxTotalBytes,
      });
    }
    this.buffer = this.buffer.byteLength === 0 ? chunk : concatBytes([this.buffer, chunk], this.buffer.byteLength + chunk.byteLength);
    return true;
  }

  /** Closing boundary seen: the epilogue is ignored, and the rest of the request released. */
  private finish(): void {
    this.finished = true;
    this.buffer = new Uint8Array(0);
    this.releaseSource();
  }

  /** Records the first failure, errors the open part's stream with it and releases the request. */
  private fail(error: unknown): ProblemError {
    if (this.failure) return this.failure;
    const problem = toProblem(error);
    this.failure = problem;
    this.buffer = new Uint8Array(0);
    const part = this.current;
    if (part && !part.ended) {
      part.detached = true;
      errorQuietly(part.controller, problem);
    }
    this.releaseSource();
    return problem;
  }

  private releaseSource(): void {
    if (this.sourceEnded) return;
    this.sourceEnded = true;
    this.source.cancel().catch(() => undefined);
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.lock.then(task);
    this.lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}

// --- part headers -------------------------------------------------------------------------

interface PartHead {
  readonly name: string;
  readonly filename: string | undefined;
  readonly contentType: string | undefined;
  readonly headers: Headers;
}

function interpretHeaders(lines: readonly Uint8Array[], partNumber: number): PartHead {
  const headers = new Headers();
  let disposition: string | undefined;
  let contentType: string | undefined;
  for (const line of lines) {
    const { name, value: bytes } = splitHeaderLine(line, partNumber);
    const lower = name.toLowerCase();
    const value = decodeHeaderText(bytes);
    if (lower === "content-disposition" || lower === "content-type") {
      if (headers.has(lower)) throw badRequest(`Part ${partNumber} has more than one ${name} header.`, { parameter: lower });
      if (lower === "content-disposition") disposition = value;
      else contentType = value;
    }
    try {
      // Non-ASCII values make workerd log a warning when an inspector is attached (dev, tests).
      headers.append(name, value);
    } catch (cause) {
      throw new ProblemError(400, "bad-request", `Part ${partNumber} has an invalid ${name} header.`, { parameter: lower }, { cause });
    }
  }
  if (disposition === undefined) {
    throw badRequest(`Part ${partNumber} has no Content-Disposition header.`, { parameter: "content-disposition" });
  }
  const { name, filename } = parseContentDisposition(disposition, partNumber);
  return { name, filename, contentType: contentType === "" ? undefined : contentType, headers };
}

/** `Name: value` with the value's surrounding whitespace removed. */
function splitHeaderLine(line: Uint8Array, partNumber: number): { name: string; value: Uint8Array } {
  const first = line[0];
  if (first === SPACE || first === TAB) {
    throw badRequest(`Part ${partNumber} has a folded header line, which multipart/form-data does not allow.`);
  }
  const colon = line.indexOf(0x3a);
  if (colon === -1) throw badRequest(`Part ${partNumber} has a header line without a colon.`);
  const name = byteString(line.subarray(0, colon));
  if (!TOKEN_PATTERN.test(name)) throw badRequest(`Part ${partNumber} has an invalid header name.`, { received: name });
  let start = colon + 1;
  let end = line.byteLength;
  while (start < end && isWhitespace(line[start])) start++;
  while (end > start && isWhitespace(line[end - 1])) end--;
  const value = line.subarray(start, end);
  // Control characters other than tab (a lone CR or LF included) have no place in a header value.
  if (value.some((byte) => (byte < 0x20 && byte !== TAB) || byte === 0x7f)) {
    throw badRequest(`Part ${partNumber} has a control character in its ${name} header.`, { parameter: name.toLowerCase() });
  }
  return { name, value };
}

/** Header bytes as text: UTF-8 (what browsers send), else Latin-1 (older clients). */
function decodeHeaderText(bytes: Uint8Array): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return byteString(bytes);
  }
}

function parseContentDisposition(value: string, partNumber: number): { name: string; filename: string | undefined } {
  const semicolon = value.indexOf(";");
  const type = (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase();
  if (type !== "form-data") {
    throw badRequest(`Part ${partNumber} has Content-Disposition "${type}"; expected form-data.`, {
      parameter: "content-disposition",
      expected: "form-data",
      received: type,
    });
  }
  const parameters = parseParameters(semicolon === -1 ? "" : value.slice(semicolon), "content-disposition");
  const name = parameters.get("name");
  if (name === undefined) {
    throw badRequest(`The Content-Disposition of part ${partNumber} has no name.`, { parameter: "content-disposition" });
  }
  const extended = parameters.get("filename*");
  const filename = extended === undefined ? parameters.get("filename") : decodeExtendedValue(extended, partNumber);
  return { name, filename };
}

/**
 * `; key=value` pairs (value a token or a quoted-string with backslash escapes), keys lowercased.
 * Repeated keys are refused: two parsers picking different copies is how smuggling starts.
 */
function parseParameters(text: string, header: string): Map<string, string> {
  const parameters = new Map<string, string>();
  const malformed = (why: string) => badRequest(`The ${header} header is malformed: ${why}.`, { parameter: header });
  let i = 0;
  const skipWhitespace = () => {
    while (i < text.length && (text[i] === " " || text[i] === "\t")) i++;
  };
  for (;;) {
    skipWhitespace();
    if (i >= text.length) return parameters;
    if (text[i] !== ";") throw malformed(`expected ";" at character ${i + 1}`);
    i++;
    skipWhitespace();
    // Tolerate empty parameters (a trailing or doubled ";").
    if (i >= text.length || text[i] === ";") continue;
    const equals = text.indexOf("=", i);
    if (equals === -1) throw malformed(`parameter without "="`);
    const key = text.slice(i, equals).trim().toLowerCase();
    if (!TOKEN_PATTERN.test(key)) throw malformed(`invalid parameter name`);
    i = equals + 1;
    skipWhitespace();
    let value = "";
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw malformed(`unterminated quoted value for ${key}`);
        const char = text[i];
        if (char === '"') break;
        if (char === "\\" && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
      i++;
    } else {
      const end = text.indexOf(";", i);
      value = text.slice(i, end === -1 ? text.length : end).trim();
      if (value === "" || value.includes('"')) throw malformed(`invalid value for ${key}`);
      i = end === -1 ? text.length : end;
    }
    if (parameters.has(key)) throw malformed(`${key} appears more than once`);
    parameters.set(key, value);
  }
}

/** RFC 5987 `charset'language'percent-encoded`, for UTF-8 and ISO-8859-1. */
function decodeExtendedValue(value: string, partNumber: number): string {
  const malformed = () =>
    badRequest(`The filename* of part ${partNumber} is not a valid RFC 5987 value.`, {
      parameter: "content-disposition",
      expected: "UTF-8''percent-encoded-name",
      received: value,
    });
  const match = /^([A-Za-z0-9!#$%&+\-^_`{}~]+)'[A-Za-z0-9-]*'(.*)$/.exec(value);
  const charset = match?.[1]?.toLowerCase();
  const encoded = match?.[2];
  if (charset === undefined || encoded === undefined) throw malformed();
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const code = encoded.charCodeAt(i);
    if (code === 0x25) {
      const hex = encoded.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw malformed();
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (code > 0x20 && code < 0x7f) {
      bytes.push(code);
    } else {
      throw malformed();
    }
  }
  if (charset === "iso-8859-1") return byteString(new Uint8Array(bytes));
  if (charset !== "utf-8") throw malformed();
  try {
    return STRICT_UTF8.decode(new Uint8Array(bytes));
  } catch {
    throw malformed();
  }
}

// --- bytes ----------------------------------------------------------------------------------

/**
 * First index of `needle` in `haystack`, or -1. Linear for our needles: their first byte (CR)
 * occurs nowhere else in them, so failed matches never overlap.
 */
function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  const first = needle[0];
  if (first === undefined) return 0;
  const lastStart = haystack.byteLength - needle.byteLength;
  for (let i = haystack.indexOf(first); i !== -1 && i <= lastStart; i = haystack.indexOf(first, i + 1)) {
    let k = 1;
    while (k < needle.byteLength && haystack[i + k] === needle[k]) k++;
    if (k === needle.byteLength) return i;
  }
  return -1;
}

/**
 * Length of the longest end of `buffer` that is a proper start of `delimiter`. The delimiter's
 * only CR is its first byte, so the one candidate starts at the last CR near the end.
 */
function partialDelimiterLength(buffer: Uint8Array, delimiter: Uint8Array): number {
  const windowStart = Math.max(0, buffer.byteLength - delimiter.byteLength + 1);
  const found = buffer.subarray(windowStart).lastIndexOf(CR);
  if (found === -1) return 0;
  const start = windowStart + found;
  for (let k = start; k < buffer.byteLength; k++) {
    if (buffer[k] !== delimiter[k - start]) return 0;
  }
  return buffer.byteLength - start;
}

/** One char per byte (ISO-8859-1). Not TextDecoder("latin1"): the Encoding standard maps that label to windows-1252. */
function byteString(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

function concatBytes(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function isWhitespace(byte: number | undefined): boolean {
  return byte === SPACE || byte === TAB;
}

// --- errors and options ---------------------------------------------------------------------

function badRequest(detail: string, extras: ProblemExtras = {}): ProblemError {
  return new ProblemError(400, "bad-request", detail, extras);
}

function truncatedIn(partName: string): ProblemError {
  return badRequest(`The body ends inside part "${partName}", before its closing boundary.`);
}

function errorQuietly(controller: ReadableStreamDefaultController<Uint8Array> | undefined, reason: ProblemError): void {
  try {
    controller?.error(reason);
  } catch {
    // Already closed or errored.
  }
}

function resolveLimits(options: MultipartOptions): MultipartLimits {
  const limits = { ...DEFAULT_MULTIPART_LIMITS };
  for (const key of ["maxHeaderBytes", "maxParts", "maxTotalBytes"] as const) {
    const value = options[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`Expected positive integer for ${key} but received ${String(value)}`);
    }
    limits[key] = value;
  }
  return limits;
}
