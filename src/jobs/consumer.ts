import { enforceRateLimit } from "../abuse/rate-limit";
import { limitsFrom } from "../config";
import { createDb, type Db } from "../db/client";
import { findImage } from "../db/images";
import { findTenant } from "../db/tenants";
import { ProblemError, toProblem } from "../errors";
import { generateVariants, type VariantDeps } from "../processing/variants";
import { originalKey } from "../storage/objects";
import { renderLimitsFrom } from "../transform/render";
import { ingestImage } from "../upload/ingest";
import { backoffSeconds, isJobMessage, type JobMessage } from "./messages";
import { fetchSource } from "./outbound";
import { finalizeJobIfDone, findJob, findJobItem, finishItem, jobItemsOf, noteItemError, setCallbackState, setItemImage, startItem } from "./store";
import { jobView } from "./view";
import { deliverWebhook } from "./webhook";

/** Thrown for a failure worth another attempt: the message is retried with backoff, then dead-lettered. */
class RetryLater extends Error {}

/**
 * The queue consumer. Each message is acked or retried on its own, so one bad image never
 * holds back the rest of its batch. Messages from the dead-letter queue end their item (or
 * webhook) as failed with the last recorded reason.
 */
export async function consumeJobBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const deadLetters = batch.queue.endsWith("-dlq");
  for (const message of batch.messages) {
    const body = message.body;
    if (!isJobMessage(body)) {
      console.error(JSON.stringify({ level: "error", message: "dropping malformed queue message", queue: batch.queue }));
      message.ack();
      continue;
    }
    try {
      if (deadLetters) await handleDeadLetter(env, body);
      else await handleMessage(env, body, message.attempts);
      message.ack();
    } catch (error) {
      if (!(error instanceof RetryLater)) {
        console.error(JSON.stringify({ level: "error", message: "queue message failed", job: body.jobId, error: String(error) }));
      }
      const base = limitsFrom(env).retryBaseSeconds;
      message.retry({ delaySeconds: base === 0 ? 0 : Math.min(300, base * backoffSeconds(message.attempts)) });
    }
  }
}

async function handleMessage(env: Env, message: JobMessage, attempts: number): Promise<void> {
  const db = createDb(env.DB);
  if (message.kind === "webhook") return sendWebhook(env, db, message.jobId);
  const job = await findJob(db, undefined, message.jobId);
  const item = job ? await findJobItem(db, message.jobId, message.position) : undefined;
  if (!job || !item) return; // the job is gone: nothing to do
  // A redelivered message for a finished item must not redo or undo it.
  if (!(await startItem(db, job.id, item.position))) return;

  const limits = limitsFrom(env);
  const deps: VariantDeps = { db, bucket: env.IMAGES, limits: renderLimitsFrom(limits) };
  try {
    let imageId = item.imageId;
    if (imageId === null && item.sourceUrl !== null) {
      const source = await fetchSource(item.sourceUrl, limits.maxFileBytes, limits.allowInsecureOutbound);
      const beforeStore = (): Promise<void> => enforceRateLimit(env.UPLOAD_FILE_LIMITER, "upload-file", job.tenantId);
      const { row } = await ingestImage({ db, bucket: env.IMAGES, limits, beforeStore }, job.tenantId, {
        filename: source.filename,
        body: source.body,
        metadata: {},
      });
      imageId = row.id;
      await setItemImage(db, job.id, item.position, imageId);
    }
    if (imageId === null) throw new ProblemError(400, "bad-request", "The job item names no image.");
    if (!(await findImage(db, job.tenantId, imageId))) throw new ProblemError(404, "not-found", "The image no longer exists.");
    // A row without its original is a storage fault, not a bad image: retry, then dead-letter.
    if (!(await env.IMAGES.head(originalKey(job.tenantId, imageId)))) throw new Error(`original of ${imageId} is missing from storage`);
    const { failures } = await generateVariants(deps, job.tenantId, imageId, job.variants);
    const error = failures.length === 0 ? null : failures.map((failure) => failure.detail).join("; ");
    await finishItem(db, job.id, item.position, failures.length === 0 ? "succeeded" : "failed", error);
  } catch (error) {
    const problem = toProblem(error);
    // 429 (a rate limit) is worth waiting for; other 4xx are the image's own fault and final.
    if (problem.status < 500 && problem.status !== 429) {
      await finishItem(db, job.id, item.position, "failed", problem.detail);
    } else {
      await noteItemError(db, job.id, item.position, `attempt ${attempts}: ${describe(error)}`);
      throw new RetryLater(describe(error));
    }
  }
  await afterItem(env, db, job.id);
}

async function handleDeadLetter(env: Env, message: JobMessage): Promise<void> {
  const db = createDb(env.DB);
  if (message.kind === "webhook") {
    await setCallbackState(db, message.jobId, "failed");
    return;
  }
  const item = await findJobItem(db, message.jobId, message.position);
  if (!item) return;
  const reason = `gave up after repeated failures${item.error ? ` (last: ${item.error})` : ""}`;
  await finishItem(db, message.jobId, message.position, "failed", reason);
  await afterItem(env, db, message.jobId);
}

/** When the last item ends, the job gets its final state and, if asked, a webhook. */
async function afterItem(env: Env, db: Db, jobId: string): Promise<void> {
  const finished = await finalizeJobIfDone(db, jobId);
  if (finished?.callbackUrl) await env.JOBS.send({ kind: "webhook", jobId } satisfies JobMessage);
}

async function sendWebhook(env: Env, db: Db, jobId: string): Promise<void> {
  const job = await findJob(db, undefined, jobId);
  if (!job?.callbackUrl || job.callbackState !== "pending") return;
  const tenant = await findTenant(db, job.tenantId);
  if (!tenant?.webhookSecret) return;
  const body = JSON.stringify({ type: "job.finished", job: jobView(job, await jobItemsOf(db, jobId)) });
  const result = await deliverWebhook(job.callbackUrl, tenant.webhookSecret, body);
  if (!result.ok) throw new RetryLater(`webhook: ${result.error ?? "failed"}`);
  await setCallbackState(db, jobId, "delivered");
}

function describe(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 500);
}
