import { z } from "zod";
import { ProblemError } from "../errors";

/** Metadata keys: short and from a safe alphabet, so they can be used as JSON paths and query names. */
export const METADATA_KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_KEYS = 64;
const MAX_VALUE_LENGTH = 1024;

const metadataSchema = z
  .record(z.string().regex(METADATA_KEY_PATTERN), z.string().max(MAX_VALUE_LENGTH))
  .refine((value) => Object.keys(value).length <= MAX_KEYS, { message: `at most ${MAX_KEYS} keys` });

export type Metadata = Record<string, string>;

/** Parses a JSON metadata object of string keys and values, as sent in a form field, header or query. */
export function parseMetadataJson(text: string, parameter: string, maxBytes: number): Metadata {
  if (new TextEncoder().encode(text).byteLength > maxBytes) {
    throw new ProblemError(413, "payload-too-large", `${parameter} is larger than ${maxBytes} bytes.`, { parameter });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidMetadata(parameter, "it is not valid JSON");
  }
  return validateMetadata(value, parameter);
}

export function validateMetadata(value: unknown, parameter: string): Metadata {
  const result = metadataSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at "${issue.path.join(".")}"` : "";
    throw invalidMetadata(parameter, `${issue?.message ?? "invalid"}${where}`);
  }
  return result.data;
}

function invalidMetadata(parameter: string, why: string): ProblemError {
  return new ProblemError(
    400,
    "invalid-metadata",
    `Expected a JSON object of string values with keys matching ${METADATA_KEY_PATTERN.source} for ${parameter}, but ${why}.`,
    { parameter },
  );
}
