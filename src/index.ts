import { app } from "./app";
import { createDb } from "./db/client";
import { consumeJobBatch } from "./jobs/consumer";
import { requeueStaleItems } from "./jobs/requeue";
import { sweepOrphans } from "./storage/sweeper";

export default {
  fetch: app.fetch,
  queue: consumeJobBatch,
  /** Hourly: remove originals left without a row by a failed cleanup; re-queue job items whose message was lost. */
  async scheduled(_controller, env, ctx) {
    const db = createDb(env.DB);
    ctx.waitUntil(
      Promise.all([sweepOrphans(db, env.IMAGES), requeueStaleItems(db, env.JOBS)]).then(([sweep, requeued]) =>
        console.log(JSON.stringify({ level: "info", message: "maintenance", checked: sweep.checked, removed: sweep.removed.length, requeued })),
      ),
    );
  },
} satisfies ExportedHandler<Env>;
