import type { Context } from "hono";
import type { z } from "zod";
import { ProblemError } from "../errors";

const MAX_JSON_BYTES = 64 * 1024;

/** Reads a small JSON request body and validates it; every failure is a 400/413/415 problem. */
export async function readJson<T extends z.ZodType>(c: Context, schema: T, options: { optional?: boolean } = {}): Promise<z.infer<T>> {
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
      await reader.cancel();
      throw new ProblemError(413, "payload-too-large", `The JSON body is larger than ${maxBytes} bytes.`);
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}
