/** Queue messages carry keys, never image bytes: the state lives in D1 and R2. */
export type JobMessage =
  | { readonly kind: "process"; readonly jobId: string; readonly position: number }
  | { readonly kind: "webhook"; readonly jobId: string };

export function isJobMessage(value: unknown): value is JobMessage {
  if (value === null || typeof value !== "object") return false;
  const record = value as Record<string, unknown>;
  if (typeof record["jobId"] !== "string") return false;
  if (record["kind"] === "process") return typeof record["position"] === "number";
  return record["kind"] === "webhook";
}

/** Exponential backoff factor for retries: 1, 2, 4, 8 … (times the configured base). */
export function backoffSeconds(attempts: number): number {
  return 2 ** Math.max(0, Math.min(8, attempts - 1));
}
