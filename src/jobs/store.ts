import { and, asc, desc, eq, inArray, lt, or, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "../db/client";
import { jobItems, jobs, type Job, type JobItem } from "../db/schema";
import { randomId } from "../ids";
import type { VariantSpec } from "../processing/variants";

export type JobKind = Job["kind"];

export interface NewJob {
  readonly tenantId: string;
  readonly kind: JobKind;
  readonly variants: VariantSpec;
  readonly callbackUrl: string | null;
  readonly origin: string;
  readonly items: ReadonlyArray<{ readonly imageId?: string; readonly sourceUrl?: string }>;
}

/** Creates the job and its items in one transaction (a D1 batch). */
export async function createJob(db: Db, input: NewJob, now = Date.now()): Promise<{ job: Job; items: JobItem[] }> {
  const job: Job = {
    id: "job_" + randomId(20),
    tenantId: input.tenantId,
    kind: input.kind,
    state: "queued",
    variants: input.variants,
    total: input.items.length,
    origin: input.origin,
    callbackUrl: input.callbackUrl,
    callbackState: "none",
    callbackError: null,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
  };
  const items: JobItem[] = input.items.map((item, position) => ({
    jobId: job.id,
    position,
    imageId: item.imageId ?? null,
    sourceUrl: item.sourceUrl ?? null,
    state: "queued",
    attempts: 0,
    error: null,
    updatedAt: now,
  }));
  // D1 limits bound parameters per statement: insert items in slices.
  const slices: BatchItem<"sqlite">[] = [];
  for (let i = 0; i < items.length; i += 10) slices.push(db.insert(jobItems).values(items.slice(i, i + 10)));
  await db.batch([db.insert(jobs).values(job), ...slices]);
  return { job, items };
}

export async function findJob(db: Db, tenantId: string | undefined, jobId: string): Promise<Job | undefined> {
  return db.query.jobs.findFirst({ where: tenantId === undefined ? eq(jobs.id, jobId) : and(eq(jobs.id, jobId), eq(jobs.tenantId, tenantId)) });
}

export async function jobItemsOf(db: Db, jobId: string): Promise<JobItem[]> {
  return db.select().from(jobItems).where(eq(jobItems.jobId, jobId)).orderBy(asc(jobItems.position));
}

export async function findJobItem(db: Db, jobId: string, position: number): Promise<JobItem | undefined> {
  return db.query.jobItems.findFirst({ where: and(eq(jobItems.jobId, jobId), eq(jobItems.position, position)) });
}

export async function listJobs(db: Db, tenantId: string, limit: number, before?: { createdAt: number; id: string }): Promise<{ rows: Job[]; more: boolean }> {
  const conditions = [eq(jobs.tenantId, tenantId)];
  if (before) {
    const older = or(lt(jobs.createdAt, before.createdAt), and(eq(jobs.createdAt, before.createdAt), lt(jobs.id, before.id)));
    if (older) conditions.push(older);
  }
  const rows = await db
    .select()
    .from(jobs)
    .where(and(...conditions))
    .orderBy(desc(jobs.createdAt), desc(jobs.id))
    .limit(limit + 1);
  return { rows: rows.slice(0, limit), more: rows.length > limit };
}

/** Marks an unfinished item running; returns false when it is already final (a redelivery). */
export async function startItem(db: Db, jobId: string, position: number, now = Date.now()): Promise<boolean> {
  const rows = await db
    .update(jobItems)
    .set({ state: "running", attempts: sql`${jobItems.attempts} + 1`, updatedAt: now })
    .where(and(eq(jobItems.jobId, jobId), eq(jobItems.position, position), inArray(jobItems.state, ["queued", "running"])))
    .returning();
  if (rows.length === 0) return false;
  await db
    .update(jobs)
    .set({ state: "running", updatedAt: now })
    .where(and(eq(jobs.id, jobId), eq(jobs.state, "queued")));
  return true;
}

export async function setItemImage(db: Db, jobId: string, position: number, imageId: string): Promise<void> {
  await db.update(jobItems).set({ imageId }).where(and(eq(jobItems.jobId, jobId), eq(jobItems.position, position)));
}

/** Records the error of an attempt that will be retried, without ending the item. */
export async function noteItemError(db: Db, jobId: string, position: number, error: string, now = Date.now()): Promise<void> {
  await db
    .update(jobItems)
    .set({ error, updatedAt: now })
    .where(and(eq(jobItems.jobId, jobId), eq(jobItems.position, position), inArray(jobItems.state, ["queued", "running"])));
}

/** Ends an item. A final item is never changed again, so a late failure cannot undo a success. */
export async function finishItem(db: Db, jobId: string, position: number, state: "succeeded" | "failed", error: string | null, now = Date.now()): Promise<boolean> {
  const rows = await db
    .update(jobItems)
    .set({ state, error, updatedAt: now })
    .where(and(eq(jobItems.jobId, jobId), eq(jobItems.position, position), inArray(jobItems.state, ["queued", "running"])))
    .returning();
  return rows.length > 0;
}

/**
 * Moves the job to its final state once no item is unfinished. One conditional UPDATE, so of
 * several consumers finishing the last items at once exactly one sees the transition (and
 * sends the webhook).
 */
export async function finalizeJobIfDone(db: Db, jobId: string, now = Date.now()): Promise<Job | undefined> {
  const failed = sql`(select count(*) from job_items where job_id = ${jobId} and state = 'failed')`;
  const succeeded = sql`(select count(*) from job_items where job_id = ${jobId} and state = 'succeeded')`;
  const rows = await db
    .update(jobs)
    .set({
      state: sql`case when ${failed} = 0 then 'succeeded' when ${succeeded} = 0 then 'failed' else 'partial' end`,
      callbackState: sql`case when ${jobs.callbackUrl} is null then 'none' else 'pending' end`,
      finishedAt: now,
      updatedAt: now,
    })
    .where(
      and(
        eq(jobs.id, jobId),
        inArray(jobs.state, ["queued", "running"]),
        sql`not exists (select 1 from job_items where job_id = ${jobId} and state in ('queued', 'running'))`,
      ),
    )
    .returning();
  return rows[0];
}

/**
 * Ends a pending webhook: `delivered`, or `failed` with the reason. Only a pending callback
 * changes, so a late dead letter cannot turn a delivery into a failure.
 */
export async function endCallback(db: Db, jobId: string, state: "delivered" | "failed", error: string | null, now = Date.now()): Promise<void> {
  await db
    .update(jobs)
    .set({ callbackState: state, callbackError: error, updatedAt: now })
    .where(and(eq(jobs.id, jobId), eq(jobs.callbackState, "pending")));
}

/** Records why a delivery attempt failed while it will be retried (the callback stays pending). */
export async function noteCallbackError(db: Db, jobId: string, error: string, now = Date.now()): Promise<void> {
  await db
    .update(jobs)
    .set({ callbackError: error, updatedAt: now })
    .where(and(eq(jobs.id, jobId), eq(jobs.callbackState, "pending")));
}

/** Jobs whose webhook has been pending untouched for `staleMs`: its message was lost. */
export async function stalePendingCallbacks(db: Db, staleMs: number, now = Date.now(), limit = 1000): Promise<string[]> {
  const rows = await db
    .select({ id: jobs.id })
    .from(jobs)
    .where(and(eq(jobs.callbackState, "pending"), lt(jobs.updatedAt, now - staleMs)))
    .limit(limit);
  return rows.map((row) => row.id);
}

export async function touchJob(db: Db, jobId: string, now = Date.now()): Promise<void> {
  await db.update(jobs).set({ updatedAt: now }).where(eq(jobs.id, jobId));
}

/**
 * Unfinished items not touched for `staleMs`: their message was lost (the Worker stopped
 * between creating the job and queueing it, say). Re-sending them is safe: processing is
 * idempotent and finished items are never redone.
 */
export async function staleItems(db: Db, staleMs: number, now = Date.now(), limit = 1000): Promise<Array<{ jobId: string; position: number }>> {
  return db
    .select({ jobId: jobItems.jobId, position: jobItems.position })
    .from(jobItems)
    .where(and(inArray(jobItems.state, ["queued", "running"]), lt(jobItems.updatedAt, now - staleMs)))
    .limit(limit);
}

export async function touchItem(db: Db, jobId: string, position: number, now = Date.now()): Promise<void> {
  await db.update(jobItems).set({ updatedAt: now }).where(and(eq(jobItems.jobId, jobId), eq(jobItems.position, position)));
}
