import { app } from "./app";
import { createDb } from "./db/client";
import { consumeJobBatch } from "./jobs/consumer";
import { sweepOrphans } from "./storage/sweeper";

export default {
  fetch: app.fetch,
  queue: consumeJobBatch,
  /** Hourly: remove originals left without a row by a failed upload cleanup. */
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(
      sweepOrphans(createDb(env.DB), env.IMAGES).then((result) =>
        console.log(JSON.stringify({ level: "info", message: "orphan sweep", checked: result.checked, removed: result.removed.length })),
      ),
    );
  },
} satisfies ExportedHandler<Env>;
