import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { Response } from "miniflare";
import { defineConfig } from "vitest/config";
import { serveCorpus } from "./test/node/corpus";

const migrations = await readD1Migrations("migrations");

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: { TEST_MIGRATIONS: migrations, ADMIN_API_KEY: "test-admin-key", RETRY_BASE_SECONDS: "0" },
        // The shared corpus (../shared/corpus, or CORPUS_DIR) and the files derived from it, served
        // from Node: workerd cannot read the disk. test/worker/fixtures.ts (loadCorpus) calls it.
        serviceBindings: {
          CORPUS: async (request) => {
            const { status, body } = await serveCorpus(request.url);
            return new Response(body, { status });
          },
        },
        queueConsumers: {
          "edge-images-jobs": { maxBatchTimeout: 0.05, maxRetries: 2, deadLetterQueue: "edge-images-jobs-dlq" },
          "edge-images-jobs-dlq": { maxBatchTimeout: 0.05 },
        },
      },
    }),
  ],
  test: {
    // Access logs and timings only for failing tests, so CI output stays readable.
    silent: "passed-only",
    include: ["test/worker/**/*.test.ts"],
    setupFiles: ["test/worker/setup.ts"],
    testTimeout: 30_000,
  },
});
