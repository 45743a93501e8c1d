import type { Context } from "hono";
import type { z } from "zod";
import { ProblemError } from "../errors";

const MAX_JSON_BYTES = 64 * 1024;

export interface ReadJsonOptions {
  /** An empty body reads as `{}`. */
  readonly optional?: boolean;
  /** Checks the parsed value before anything else (to answer with a more specific problem). */
  readonly inspect?: (value: unknown) => void;
}

/**
 * Reads a small JSON request body and validates it; every failure is a 400/413/415 problem.
 * A "__proto__" key anywhere is refused: schema validation would silently drop it.
 */
export async function readJson<T extends z.ZodType>(c: Context, schema: T, options: ReadJsonOptions = {}): Promise<z.infer<T>> {
  const text = await readBodyText(c.req.raw, MAX_JSON_BYTES);
  if (text.trim() === "" && options.optional) return schema.parse({});
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw new ProblemError(415, "unsupported-media-type", "Send the request body as application/json.", {
      expected: "application/json",
      received: type || "(none)",
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProblemError(400, "bad-request", "The request body is not valid JSON.");
  }
  options.inspect?.(value);
  const reserved = reservedKeyPath(value);
  if (reserved !== undefined) {
    throw new ProblemError(400, "invalid-parameter", `Invalid ${reserved}: the key "__proto__" is not allowed (it is JavaScript's prototype property).`, {
      parameter: reserved,
    });
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue?.path.join(".") || "body";
    throw new ProblemError(400, "invalid-parameter", `Invalid ${field}: ${issue?.message ?? "invalid value"}`, { parameter: field });
  }
  return result.data;
}

async function readBodyText(request: Request, maxBytes: number): Promise<string> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      // Released, not cancelled: requestBodies drains the rest so the client gets this answer.
      reader.releaseLock();
      throw new ProblemError(413, "payload-too-large", `The JSON body is larger than ${maxBytes} bytes.`);
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * The path of the first "__proto__" key in a parsed JSON value, if any. JSON.parse makes it an
 * own property, but copying or validating the object through assignment would drop it (or set
 * a prototype). Walks with an explicit stack: a deeply nested body cannot overflow the call stack.
 */
function reservedKeyPath(root: unknown): string | undefined {
  const stack: Array<{ value: unknown; path: string }> = [{ value: root, path: "" }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { value, path } = next;
    if (value === null || typeof value !== "object") continue;
    for (const [key, child] of Object.entries(value)) {
      const childPath = path === "" ? key : `${path}.${key}`;
      if (key === "__proto__") return childPath;
      if (child !== null && typeof child === "object") stack.push({ value: child, path: childPath });
    }
  }
  return undefined;
}
