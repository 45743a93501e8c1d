// The web app: `vite build web` (npm run build:web) writes web/dist, which wrangler serves as
// static assets (wrangler.toml [assets]). Preact through the automatic JSX runtime; no dev server
// is needed: `npm run dev` builds once and wrangler serves the result next to the API.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  publicDir: "public",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: true,
    // One small bundle: no modulepreload polyfill (every supported browser has it).
    modulePreload: { polyfill: false },
  },
});
