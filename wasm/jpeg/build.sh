#!/bin/sh
# Builds wasm/jpeg/jpeg.wasm, one module sharing one linear memory, from this folder's C (all of
# it written for this project; no libc, no imports):
#   jpeg.c    JPEG decoder with shrink-on-load (and the module's arena)
#   resize.c  box + Lanczos3 resampler, fed row by row
#   colour.c  embedded profile -> sRGB on streamed rows
#   png.c     PNG scanlines streamed into the resampler
#   encode.c  baseline JPEG encoder
#
#   sh wasm/jpeg/build.sh           rebuild jpeg.wasm in place
#   sh wasm/jpeg/build.sh --check   rebuild into a temporary folder and compare byte for byte
#                                   with the committed jpeg.wasm (npm test and CI run this)
#
# The committed module must be what this script builds from the committed C, so the toolchain is
# pinned to Debian 12's packages (apt-get install clang-14 lld-14 binaryen): clang 14.0.6,
# wasm-ld 14.0.6 and wasm-opt (binaryen) 108. With those, the output is byte-identical from run
# to run and machine to machine (no timestamps or paths end up in the module: --strip-all drops
# the names and debug sections). Another version is refused rather than giving a module that
# differs for no reason of ours. Compile, link and optimise are separate steps because the clang
# driver would otherwise run whatever wasm-opt it finds without the SIMD feature flags.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-build}
case "$mode" in build|--check) ;; *) echo "usage: build.sh [--check]" >&2; exit 2 ;; esac

CLANG=clang-14
WASM_LD=wasm-ld-14
WASM_OPT=wasm-opt
CLANG_VERSION=14.0.6
BINARYEN_VERSION=108
INSTALL_HINT="apt-get install clang-14 lld-14 binaryen (Debian 12)"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "build.sh: $1 not found; $INSTALL_HINT" >&2; exit 3; }
}
need $CLANG
need $WASM_LD
need $WASM_OPT
"$CLANG" --version | head -n 1 | grep -q "clang version $CLANG_VERSION" ||
  { echo "build.sh: need clang $CLANG_VERSION, found: $("$CLANG" --version | head -n 1)" >&2; exit 3; }
"$WASM_LD" --version | grep -q "LLD $CLANG_VERSION" ||
  { echo "build.sh: need wasm-ld $CLANG_VERSION, found: $("$WASM_LD" --version)" >&2; exit 3; }
"$WASM_OPT" --version | grep -q "version $BINARYEN_VERSION\b" ||
  { echo "build.sh: need wasm-opt $BINARYEN_VERSION, found: $("$WASM_OPT" --version)" >&2; exit 3; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
SOURCES="jpeg resize colour png encode"
for name in $SOURCES; do
  # Sources are named relative to this folder so no absolute path can reach the object files.
  (cd "$here" && "$CLANG" --target=wasm32 -O3 -nostdlib -ffreestanding -msimd128 -mbulk-memory \
    -mnontrapping-fptoint -Wall -Wextra -Wno-unused-parameter -c -o "$work/$name.o" "$name.c")
done
"$WASM_LD" --no-entry --strip-all -z stack-size=65536 --initial-memory=1179648 -o "$work/linked.wasm" \
  $(for n in $SOURCES; do printf '%s/%s.o ' "$work" "$n"; done)
"$WASM_OPT" -O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
  "$work/linked.wasm" -o "$work/jpeg.wasm"

if [ "$mode" = "--check" ]; then
  if cmp -s "$work/jpeg.wasm" "$here/jpeg.wasm"; then
    echo "wasm/jpeg/jpeg.wasm is what build.sh makes from the committed C ($(wc -c <"$here/jpeg.wasm") bytes)"
    exit 0
  fi
  echo "wasm/jpeg/jpeg.wasm differs from a fresh build of wasm/jpeg/*.c ($(wc -c <"$work/jpeg.wasm") bytes fresh," \
    "$(wc -c <"$here/jpeg.wasm") committed): run sh wasm/jpeg/build.sh and commit the result" >&2
  exit 1
fi
cp "$work/jpeg.wasm" "$here/jpeg.wasm"
ls -l "$here/jpeg.wasm"
