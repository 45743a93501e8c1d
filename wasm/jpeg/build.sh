#!/bin/sh
# Builds wasm/jpeg/jpeg.wasm, one module sharing one linear memory (our own code; no libc, no
# imports, no third-party source), from:
#   jpeg.c    JPEG decoder with shrink-on-load (and the module's arena)
#   resize.c  box + Lanczos3 resampler, fed row by row
#   colour.c  embedded profile -> sRGB on streamed rows
#   png.c     PNG scanlines streamed into the resampler
#   encode.c  baseline JPEG encoder
# Needs clang with the wasm32 target and wasm-ld (Debian: apt-get install clang lld);
# wasm-opt (binaryen) is used when present. Compile and link are separate steps because the
# clang driver would otherwise run wasm-opt itself without the SIMD feature flags.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang}
WASM_LD=${WASM_LD:-wasm-ld}
SOURCES="jpeg resize colour png encode"
for name in $SOURCES; do
  $CLANG --target=wasm32 -O3 -nostdlib -ffreestanding -msimd128 -mbulk-memory -mnontrapping-fptoint \
    -Wall -Wextra -Wno-unused-parameter -c -o "$name.o" "$name.c"
done
$WASM_LD --no-entry --strip-all -z stack-size=65536 --initial-memory=1179648 -o jpeg.wasm $(for n in $SOURCES; do printf '%s.o ' "$n"; done)
for name in $SOURCES; do rm -f "$name.o"; done
if command -v wasm-opt >/dev/null 2>&1; then
  wasm-opt -O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int jpeg.wasm -o jpeg.wasm
fi
ls -l jpeg.wasm
