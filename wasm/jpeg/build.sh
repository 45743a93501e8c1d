#!/bin/sh
# Builds wasm/jpeg/jpeg.wasm from jpeg.c (JPEG decoder), resize.c (box + Lanczos3 resampler) and
# encode.c (baseline JPEG encoder), one module sharing one linear memory (our own code; no libc,
# no imports, no third-party source).
# Needs clang with the wasm32 target and wasm-ld (Debian: apt-get install clang lld);
# wasm-opt (binaryen) is used when present. Compile and link are separate steps because the
# clang driver would otherwise run wasm-opt itself without the SIMD feature flags.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang}
WASM_LD=${WASM_LD:-wasm-ld}
$CLANG --target=wasm32 -O3 -nostdlib -ffreestanding -msimd128 -mbulk-memory -mnontrapping-fptoint \
  -Wall -Wextra -Wno-unused-parameter -c -o jpeg.o jpeg.c
$CLANG --target=wasm32 -O3 -nostdlib -ffreestanding -msimd128 -mbulk-memory -mnontrapping-fptoint \
  -Wall -Wextra -Wno-unused-parameter -c -o resize.o resize.c
$CLANG --target=wasm32 -O3 -nostdlib -ffreestanding -msimd128 -mbulk-memory -mnontrapping-fptoint \
  -Wall -Wextra -Wno-unused-parameter -c -o encode.o encode.c
$WASM_LD --no-entry --strip-all -z stack-size=65536 --initial-memory=1179648 -o jpeg.wasm jpeg.o resize.o encode.o
rm -f jpeg.o resize.o encode.o
if command -v wasm-opt >/dev/null 2>&1; then
  wasm-opt -O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int jpeg.wasm -o jpeg.wasm
fi
ls -l jpeg.wasm
