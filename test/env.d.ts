declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    /** Tests only: the shared corpus and files derived from it (vitest.config.ts, test/node/corpus.ts). */
    CORPUS: Fetcher;
  }
}
