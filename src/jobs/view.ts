import type { Job, JobItem } from "../db/schema";

export interface JobView {
  readonly id: string;
  readonly kind: Job["kind"];
  readonly state: Job["state"];
  readonly total: number;
  readonly counts: Record<JobItem["state"], number>;
  readonly variants: Record<string, string>;
  readonly callbackUrl: string | null;
  readonly callbackState: Job["callbackState"];
  /** Why the webhook failed (final when `callbackState` is `failed`, the last attempt's error while `pending`). */
  readonly callbackError: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly finishedAt: string | null;
  readonly items?: ReadonlyArray<{
    readonly position: number;
    readonly imageId: string | null;
    readonly url: string | null;
    readonly sourceUrl: string | null;
    readonly state: JobItem["state"];
    readonly attempts: number;
    readonly error: string | null;
  }>;
}

export function jobView(job: Job, items: readonly JobItem[] | undefined, counts?: Record<JobItem["state"], number>): JobView {
  const tally = counts ?? countStates(items ?? []);
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    total: job.total,
    counts: tally,
    variants: job.variants,
    callbackUrl: job.callbackUrl,
    callbackState: job.callbackState,
    callbackError: job.callbackError,
    createdAt: new Date(job.createdAt).toISOString(),
    updatedAt: new Date(job.updatedAt).toISOString(),
    finishedAt: job.finishedAt === null ? null : new Date(job.finishedAt).toISOString(),
    ...(items === undefined
      ? {}
      : {
          items: items.map((item) => ({
            position: item.position,
            imageId: item.imageId,
            url: item.imageId === null ? null : `${job.origin}/i/${item.imageId}`,
            sourceUrl: item.sourceUrl,
            state: item.state,
            attempts: item.attempts,
            error: item.error,
          })),
        }),
  };
}

export function countStates(items: readonly JobItem[]): Record<JobItem["state"], number> {
  const counts: Record<JobItem["state"], number> = { queued: 0, running: 0, succeeded: 0, failed: 0 };
  for (const item of items) counts[item.state]++;
  return counts;
}
