import type { Limits } from "../config";
import type { Db } from "../db/client";
import type { ImageView } from "../images/view";
import type { JobMessage } from "../jobs/messages";
import { createJob, finalizeJobIfDone, finishItem, jobItemsOf } from "../jobs/store";
import { jobView, type JobView } from "../jobs/view";
import { renderLimitsFrom } from "../transform/render";
import type { ProcessingPlan } from "../upload/processing-plan";
import { runsAsync } from "../upload/processing-plan";
import { generateVariants, recordPendingVariants, variantView, type VariantView } from "./variants";

export interface AfterUploadDeps {
  readonly db: Db;
  readonly bucket: R2Bucket;
  readonly queue: Queue;
  readonly limits: Limits;
}

export interface ProcessedUpload {
  readonly images: Array<ImageView & { variants?: VariantView[] }>;
  /** Set when the variants are made asynchronously. */
  readonly job?: JobView;
}

/**
 * Makes the variants an upload asked for: in the request (sync), or as a job with one queue
 * message per image (async). Originals are already stored either way.
 */
export async function processUploadedImages(
  deps: AfterUploadDeps,
  tenantId: string,
  images: readonly ImageView[],
  plan: ProcessingPlan,
  origin: string,
): Promise<ProcessedUpload> {
  const spec = plan.variants;
  if (!spec || Object.keys(spec).length === 0 || images.length === 0) return { images: [...images] };

  if (runsAsync(plan, images.length, deps.limits)) {
    const { job, items } = await createJob(deps.db, {
      tenantId,
      kind: "upload",
      variants: spec,
      callbackUrl: plan.callbackUrl ?? null,
      origin,
      items: images.map((image) => ({ imageId: image.id })),
    });
    for (const image of images) await recordPendingVariants(deps.db, tenantId, image.id, spec);
    try {
      await enqueueItems(deps.queue, job.id, items.length);
    } catch (error) {
      // The originals are stored; say plainly that their processing was not queued.
      const reason = `could not be queued (${String(error).slice(0, 200)}); run it again with POST /v1/jobs`;
      for (const item of items) await finishItem(deps.db, job.id, item.position, "failed", reason);
      const failed = (await finalizeJobIfDone(deps.db, job.id)) ?? job;
      return { images: [...images], job: jobView(failed, await jobItemsOf(deps.db, job.id)) };
    }
    const pending = images.map((image) => ({
      ...image,
      variants: Object.entries(spec).map(([name, params]) => pendingView(image.id, name, params, origin)),
    }));
    return { images: pending, job: jobView(job, items) };
  }

  const variantDeps = { db: deps.db, bucket: deps.bucket, limits: renderLimitsFrom(deps.limits) };
  const processed: Array<ImageView & { variants: VariantView[] }> = [];
  for (const image of images) {
    const { variants } = await generateVariants(variantDeps, tenantId, image.id, spec);
    processed.push({ ...image, variants: variants.map((variant) => variantView(variant, origin)) });
  }
  return { images: processed };
}

/** One message per item, sent in batches (a queue batch takes at most 100 messages). */
export async function enqueueItems(queue: Queue, jobId: string, count: number): Promise<void> {
  for (let start = 0; start < count; start += 100) {
    const messages: MessageSendRequest<JobMessage>[] = [];
    for (let position = start; position < Math.min(count, start + 100); position++) {
      messages.push({ body: { kind: "process", jobId, position } });
    }
    await queue.sendBatch(messages);
  }
}

function pendingView(imageId: string, name: string, params: string, origin: string): VariantView {
  return { name, params, url: `${origin}/i/${imageId}/${name}`, state: "pending", format: null, width: null, height: null, bytes: null, error: null };
}
