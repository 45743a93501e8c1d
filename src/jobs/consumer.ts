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
import { checkOutboundUrl, fetchSource } from "./outbound";
import { endCallback, finalizeJobIfDone, findJob, findJobItem, finishItem, jobItemsOf, noteCallbackError, noteItemError, setItemImage, startItem } from "./store";
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
  if (message.kind === "webhook") return sendWebhook(env, db, message.jobId, attempts);
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
    const job = await findJob(db, undefined, message.jobId);
    if (job?.callbackState === "pending") {
      await endCallback(db, job.id, "failed", `gave up after repeated failures${job.callbackError ? ` (last: ${job.callbackError})` : ""}`);
    }
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

/**
 * Delivers a finished job's webhook. A delivery that can never be made (no secret to sign with,
 * a URL no longer allowed) ends the callback as `failed` at once with the reason; a failed
 * attempt is noted and retried, and the dead-letter consumer ends it as `failed`. A callback
 * is never left `pending` by this function returning.
 */
async function sendWebhook(env: Env, db: Db, jobId: string, attempts: number): Promise<void> {
  const job = await findJob(db, undefined, jobId);
  if (!job || job.callbackState !== "pending") return;
  if (!job.callbackUrl) {
    await endCallback(db, jobId, "failed", "the job has no callback URL");
    return;
  }
  const tenant = await findTenant(db, job.tenantId);
  if (!tenant?.webhookSecret) {
    await endCallback(db, jobId, "failed", "the tenant has no webhook secret to sign the delivery with");
    return;
  }
  let url: URL;
  try {
    // Checked again: the rules (or ALLOW_INSECURE_OUTBOUND) may have changed since the job was made.
    url = checkOutboundUrl(job.callbackUrl, "callback_url", limitsFrom(env).allowInsecureOutbound);
  } catch (error) {
    await endCallback(db, jobId, "failed", `the callback URL cannot be called: ${toProblem(error).detail}`);
    return;
  }
  const body = JSON.stringify({ type: "job.finished", job: jobView(job, await jobItemsOf(db, jobId)) });
  const result = await deliverWebhook(url.href, tenant.webhookSecret, body);
  if (!result.ok) {
    const reason = `attempt ${attempts}: ${(result.error ?? "failed").slice(0, 500)}`;
    await noteCallbackError(db, jobId, reason);
    throw new RetryLater(`webhook: ${reason}`);
  }
  await endCallback(db, jobId, "delivered", null);
}

function describe(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 500);
}
