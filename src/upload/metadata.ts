import { ProblemError } from "../errors";

/** Metadata keys: short and from a safe alphabet, so they can be used as JSON paths and query names. */
export const METADATA_KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_KEYS = 64;
const MAX_VALUE_LENGTH = 1024;

/**
 * The one key the pattern allows that a JavaScript object cannot hold as an ordinary key:
 * assigning `o["__proto__"]` sets the object's prototype instead, so the key would be dropped
 * (and clients copying metadata with `Object.assign` or `o[k] = v` would do the same or worse).
 * It is refused with a 400 wherever a key enters, never dropped.
 */
export const RESERVED_KEY = "__proto__";

export type Metadata = Record<string, string>;

/** Whether `key` may name a metadata entry (the pattern, and not the reserved key). */
export function isMetadataKey(key: string): boolean {
  return METADATA_KEY_PATTERN.test(key) && key !== RESERVED_KEY;
}

/** Parses a JSON metadata object of string keys and values, as sent in a form field, header or query. */
export function parseMetadataJson(text: string, parameter: string, maxBytes: number): Metadata {
  if (new TextEncoder().encode(text).byteLength > maxBytes) {
    throw new ProblemError(413, "payload-too-large", `${parameter} is larger than ${maxBytes} bytes.`, { parameter });
  }
  let value: unknown;
  try {
    // JSON.parse makes "__proto__" an own property (it does not set the prototype): validateMetadata sees it.
    value = JSON.parse(text);
  } catch {
    throw invalidMetadata(parameter, "it is not valid JSON");
  }
  return validateMetadata(value, parameter);
}

/**
 * Validates a metadata object from its own enumerable entries (what JSON.parse made), so no key
 * is skipped, and copies it into a fresh object.
 */
export function validateMetadata(value: unknown, parameter: string): Metadata {
  const entries = ownEntries(value, parameter);
  if (entries.length > MAX_KEYS) throw invalidMetadata(parameter, `it has ${entries.length} keys (at most ${MAX_KEYS})`);
  const metadata: Metadata = {};
  for (const [key, entry] of entries) {
    checkMetadataKey(key, parameter);
    if (typeof entry !== "string") throw invalidMetadata(parameter, `the value at ${JSON.stringify(key)} is not a string`);
    if (entry.length > MAX_VALUE_LENGTH) throw invalidMetadata(parameter, `the value at ${JSON.stringify(key)} is longer than ${MAX_VALUE_LENGTH} characters`);
    metadata[key] = entry;
  }
  return metadata;
}

/**
 * Checks a JSON merge patch of metadata (`{key: string | null}`) from its own entries. The
 * keys are checked here, the values' limits again on the merged result.
 */
export function validateMetadataPatch(value: unknown, parameter: string): void {
  for (const [key, entry] of ownEntries(value, parameter)) {
    checkMetadataKey(key, parameter);
    if (entry !== null && typeof entry !== "string") throw invalidMetadata(parameter, `the value at ${JSON.stringify(key)} is neither a string nor null`);
  }
}

function ownEntries(value: unknown, parameter: string): Array<[string, unknown]> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw invalidMetadata(parameter, "it is not a JSON object");
  return Object.entries(value);
}

function checkMetadataKey(key: string, parameter: string): void {
  if (key === RESERVED_KEY) {
    throw new ProblemError(
      400,
      "invalid-metadata",
      `The metadata key "${RESERVED_KEY}" is not allowed for ${parameter}: it is JavaScript's prototype property, which clients cannot store as an ordinary key. Use another name.`,
      { parameter: `${parameter}.${RESERVED_KEY}` },
    );
  }
  if (!METADATA_KEY_PATTERN.test(key)) throw invalidMetadata(parameter, `the key ${JSON.stringify(key.slice(0, 80))} does not match`);
}

function invalidMetadata(parameter: string, why: string): ProblemError {
  return new ProblemError(
    400,
    "invalid-metadata",
    `Expected a JSON object of string values with keys matching ${METADATA_KEY_PATTERN.source} for ${parameter}, but ${why}.`,
    { parameter },
  );
}
