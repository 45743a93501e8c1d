#!/usr/bin/env bash
# Debian packages the tests need, installed when missing (a no-op when all are present):
#   chromium                  the browser tests (playwright-core drives /usr/bin/chromium;
#                             `npx playwright install` cannot work here)
#   clang-14 lld-14 binaryen  the pinned toolchain that rebuilds wasm/jpeg/jpeg.wasm, so the
#                             tests can check the committed module is what its C builds
#   libjpeg-turbo-progs       jpegtran, which makes the restart-marker test JPEGs from a corpus
#                             photo at test time (test/node/corpus.ts)
# Run by `npm test` (scripts/test.mjs) before anything else; needs root or sudo to install.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v clang-14 >/dev/null 2>&1 || missing+=(clang-14)
command -v wasm-ld-14 >/dev/null 2>&1 || missing+=(lld-14)
command -v wasm-opt >/dev/null 2>&1 || missing+=(binaryen)
command -v jpegtran >/dev/null 2>&1 || missing+=(libjpeg-turbo-progs)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
log="$(mktemp)"
if ! { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "Could not install ${missing[*]} (apt-get install -y ${missing[*]})." >&2
  exit 1
fi
rm -f "$log"
