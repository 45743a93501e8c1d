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
  for (let i = 0; i < stale.length; i += 100) {
    const slice = stale.slice(i, i + 100);
    await queue.sendBatch(slice.map((item) => ({ body: { kind: "process", jobId: item.jobId, position: item.position } satisfies JobMessage })));
    for (const item of slice) await touchItem(db, item.jobId, item.position, now);
  }
  const callbacks = await stalePendingCallbacks(db, STALE_AFTER_MS, now);
  for (let i = 0; i < callbacks.length; i += 100) {
    const slice = callbacks.slice(i, i + 100);
    await queue.sendBatch(slice.map((jobId) => ({ body: { kind: "webhook", jobId } satisfies JobMessage })));
    for (const jobId of slice) await touchJob(db, jobId, now);
  }
  return stale.length + callbacks.length;
}
