import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const migrations = await readD1Migrations("migrations");

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: { TEST_MIGRATIONS: migrations, ADMIN_API_KEY: "test-admin-key", RETRY_BASE_SECONDS: "0" },
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
