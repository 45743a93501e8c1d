import { defineConfig } from "vitest/config";

// Node-side tests: an independent decoder (sharp), and end-to-end HTTP against a real `wrangler dev`.
export default defineConfig({
  test: {
    include: ["test/node/**/*.test.ts"],
    globalSetup: ["test/node/wrangler-dev.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
