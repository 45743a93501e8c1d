import { app } from "./app";
import { consumeJobBatch } from "./jobs/consumer";

export default {
  fetch: app.fetch,
  queue: consumeJobBatch,
} satisfies ExportedHandler<Env>;
