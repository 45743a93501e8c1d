import type { Db } from "../db/client";
import type { JobMessage } from "./messages";
import { stalePendingCallbacks, staleItems, touchItem, touchJob } from "./store";

/** Items unfinished for this long are assumed to have lost their message (retries back off at most 5 min). */
export const STALE_AFTER_MS = 30 * 60 * 1000;

/**
 * Re-sends the messages of stale items, and of webhooks left pending, so every job and every
 * callback reaches a final state even if a send was lost. Returns how many messages were sent.
 */
export async function requeueStaleItems(db: Db, queue: Queue, now = Date.now()): Promise<number> {
  const stale = await staleItems(db, STALE_AFTER_MS, now);
  await resend(queue, stale, (item) => ({ kind: "process", jobId: item.jobId, position: item.position }), (item) => touchItem(db, item.jobId, item.position, now));
  const callbacks = await stalePendingCallbacks(db, STALE_AFTER_MS, now);
  await resend(queue, callbacks, (jobId) => ({ kind: "webhook", jobId }), (jobId) => touchJob(db, jobId, now));
  return stale.length + callbacks.length;
}

/** Sends one message per entry, in batches of 100 (the queue's batch limit), touching each once sent. */
async function resend<T>(queue: Queue, entries: readonly T[], message: (entry: T) => JobMessage, touch: (entry: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < entries.length; i += 100) {
    const slice = entries.slice(i, i + 100);
    await queue.sendBatch(slice.map((entry) => ({ body: message(entry) })));
    for (const entry of slice) await touch(entry);
  }
}
