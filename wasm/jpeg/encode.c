/*
 * encode.c - a baseline JPEG encoder for wasm32, written for this project from ITU T.81.
 *
 * Output: sequential baseline JFIF (SOI, APP0, DQT, SOF0, DHT, SOS, EOI), 8-bit YCbCr, three
 * components, no restart markers. Input: RGBA8 (alpha ignored; the caller flattens first).
 *
 * Choices, made to match what the service used before (mozjpeg through @jsquash):
 * - chroma sampling by quality: 4:2:0 below 80, 4:2:2 from 80 to 89, 4:4:4 from 90, which is
 *   what mozjpeg's auto_subsample picks (read from its output);
 * - quantisation: tables of our own (see BASE_LUMA), scaled by the IJG quality formula (the
 *   Independent JPEG Group's libjpeg, jcparam.c: 5000/q below 50, 200 - 2q above, in percent) and
 *   limited to 1..255 (baseline);
 * - Huffman tables optimised for the image: a first pass quantises every block and counts
 *   the symbols, code lengths are computed (Annex K.2) and limited to 16 bits (K.3), a
 *   second pass writes the scan.
 *
 * Pipeline per MCU row: RGBA -> float Y, Cb, Cr planes (chroma averaged over the sampling
 * area), forward DCT (T.81 A.3.3's normalised DCT, float, wasm simd128, four columns per
 * vector; its even/odd factorisation is derived in the comment above dct8_lanes), division
 * by the quantiser (A.3.4), rounding to nearest, zigzag order. The quantised
 * blocks of the whole image are kept (2 bytes per coefficient) between the two passes when they
 * take at most COEFFICIENT_STORE_MAX bytes (2.8 to 5.6 MP, by chroma sampling) and memory
 * allows; otherwise the second pass recomputes them row by row, so memory stays at the input,
 * the output and a few rows.
 *
 * Safety: arguments are checked against the module's memory; every allocation comes from
 * jpeg.c's arena; the output buffer is sized from the exact bit count of the first pass
 * (each entropy byte may gain one stuffing byte), and the writer checks its bound anyway.
 * Edge MCUs are padded by repeating the last column and row. No imports; no libc.
 */
#include <wasm_simd128.h>

typedef unsigned char u8;
typedef signed short i16;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef __SIZE_TYPE__ size_t;

#define EXPORT(name) __attribute__((export_name(#name)))

void *codec_arena_alloc(u64 n); /* jpeg.c's bump arena, rewound by reset() */

/* Status codes, shared with jpeg.c's numbering. */
enum {
  ENC_OK = 0,
  ENC_NO_MEMORY = -5,
  ENC_BAD_ARGUMENT = -8,
  ENC_OVERFLOW = -9, /* the output bound was wrong: a bug, never valid output */
};

static int enc_status;
static u32 enc_size;

/** Status of the last jpeg_encode call (0 = ok). */
EXPORT(jpeg_encode_status) int jpeg_encode_status(void) { return enc_status; }
/** Byte length of the file returned by the last successful jpeg_encode. */
EXPORT(jpeg_encoded_size) u32 jpeg_encoded_size(void) { return enc_size; }

/* ---------------------------------------------------------------- tables */

/*
 * Base quantisation tables (natural order) for quality 50, scaled by the IJG formula. Our own:
 * a smooth model of the radial frequency r = sqrt(u^2 + v^2), q = 18 * (1 + b * (r / r_max)^g),
 * b = 5.6, g = 2.2 for luma and b = 8, g = 1.8 for chroma, rounded. The parameters were fitted
 * on nine corpus photos (not the test fixtures) at 200 and 480 px against mozjpeg as the
 * service ran it: fewest bytes for the same PSNR and luma SSIM, with every photo within 0.4 dB
 * PSNR (0.9 dB on the test fixtures) and the mean size within 5% of mozjpeg at the same
 * quality, and chroma kept close to luma (SSIM sees no chroma). T.81 Annex K's example tables
 * gave 23% larger files at quality 50, 12% at 80.
 */
static const u8 BASE_LUMA[64] = {
  18, 19, 21, 25, 32, 40, 51, 65,
  19, 19, 22, 26, 33, 41, 53, 66,
  21, 22, 24, 29, 36, 44, 56, 69,
  25, 26, 29, 34, 40, 49, 61, 75,
  32, 33, 36, 40, 47, 57, 68, 82,
  40, 41, 44, 49, 57, 66, 78, 92,
  51, 53, 56, 61, 68, 78, 90, 104,
  65, 66, 69, 75, 82, 92, 104, 119,
};
static const u8 BASE_CHROMA[64] = {
  18, 20, 26, 35, 46, 60, 76, 95,
  20, 22, 28, 36, 48, 62, 78, 97,
  26, 28, 33, 41, 52, 66, 82, 101,
  35, 36, 41, 49, 60, 74, 89, 108,
  46, 48, 52, 60, 71, 84, 99, 118,
  60, 62, 66, 74, 84, 97, 112, 130,
  76, 78, 82, 89, 99, 112, 127, 145,
  95, 97, 101, 108, 118, 130, 145, 162,
};

static u8 zigzag_natural[64];  /* zigzag index -> natural index (row * 8 + column) */
static u8 zigzag_transposed[64]; /* zigzag index -> index in the DCT's transposed output */

static void init_zigzag(void) {
  static int ready;
  if (ready) return;
  int i = 0;
  for (int diagonal = 0; diagonal < 15; diagonal++) {
    int first = diagonal < 8 ? 0 : diagonal - 7, last = diagonal < 8 ? diagonal : 7;
    /* Even diagonals run up and to the right (row falling), odd ones down and to the left. */
    for (int k = 0; k <= last - first; k++) {
      int row = (diagonal & 1) ? first + k : last - k;
      int col = diagonal - row;
      zigzag_natural[i] = (u8)(row * 8 + col);
      zigzag_transposed[i] = (u8)(col * 8 + row);
      i++;
    }
  }
  ready = 1;
}

typedef struct {
  u8 table[64];          /* quantiser per natural index, as written to DQT (1..255) */
  float reciprocal[64];  /* 1 / Q(u, v), in the DCT's transposed output order (u * 8 + v) */
} Quant;

static void init_quant(Quant *quant, const u8 *base, int quality) {
  int scale = quality < 50 ? 5000 / quality : 200 - 2 * quality;
  for (int n = 0; n < 64; n++) {
    int q = ((int)base[n] * scale + 50) / 100;
    if (q < 1) q = 1;
    if (q > 255) q = 255;
    quant->table[n] = (u8)q;
  }
  /* T.81 A.3.4: Sq(v, u) = round(S(v, u) / Q(v, u)); the DCT below is already normalised. */
  for (int u = 0; u < 8; u++) {     /* u: horizontal frequency */
    for (int v = 0; v < 8; v++) {   /* v: vertical frequency */
      quant->reciprocal[u * 8 + v] = 1.0f / (float)quant->table[v * 8 + u];
    }
  }
}

/* ---------------------------------------------------------------- forward DCT */

/*
 * T.81 A.3.3 defines the forward DCT of an 8x8 block of level-shifted samples f(x, y) (x the
 * column, y the row) as
 *
 *   F(u, v) = 1/4 C(u) C(v) sum_{x=0..7} sum_{y=0..7} f(x, y) cos((2x+1) u pi/16) cos((2y+1) v pi/16)
 *
 * with C(0) = 1/sqrt(2) and C(k) = 1 for k > 0. The double sum separates: the 8-point transform
 *
 *   T(k) = C(k)/2 sum_{n=0..7} g(n) cos((2n+1) k pi/16)
 *
 * applied down every column and then along every row of the result gives F exactly (the two
 * factors C/2 make 1/4 C(u) C(v)), so no scaling is left over for the quantiser.
 *
 * T, derived here from that formula. Write c_j = cos(j pi/16). Mirroring n to 7 - n turns
 * (2n+1) into 16 - (2n+1), so cos((2(7-n)+1) k pi/16) = (-1)^k cos((2n+1) k pi/16), and with
 *
 *   a_n = g(n) + g(7-n),  b_n = g(n) - g(7-n)   (n = 0..3)
 *
 * the even outputs depend on the a_n only and the odd outputs on the b_n only. Reducing the
 * angles (2n+1) k pi/16 to the first quadrant gives two 4x4 matrices (T0's row is C(0) = c4):
 *
 *   [T0]         [ c4  c4  c4  c4 ] [a0]        [T1]         [ c1  c3  c5  c7 ] [b0]
 *   [T2] = 1/2 * [ c2  c6 -c6 -c2 ] [a1]        [T3] = 1/2 * [ c3 -c7 -c1 -c5 ] [b1]
 *   [T4]         [ c4 -c4 -c4  c4 ] [a2]        [T5]         [ c5 -c1  c7  c3 ] [b2]
 *   [T6]         [ c6 -c2  c2 -c6 ] [a3]        [T7]         [ c7 -c5  c3 -c1 ] [b3]
 *
 * Even matrix: columns 0 and 3, and columns 1 and 2, are equal in rows T0, T4 and opposite in
 * rows T2, T6. With e0 = a0 + a3, e1 = a1 + a2, h0 = a0 - a3, h1 = a1 - a2:
 *
 *   T0 = c4/2 (e0 + e1)      T2 = c2/2 h0 + c6/2 h1
 *   T4 = c4/2 (e0 - e1)      T6 = c6/2 h0 - c2/2 h1
 *
 * Odd matrix: rows T1 and T7 are each a sum of one term in (b0, b3) and one in (b1, b2),
 *
 *   p0 = (c1 b0 + c7 b3) / 2     q0 = ( c3 b1 + c5 b2) / 2      T1 = p0 + q0
 *   p1 = (c7 b0 - c1 b3) / 2     q1 = (-c5 b1 + c3 b2) / 2      T7 = p1 + q1
 *
 * (two plane rotations, by pi/16 and 3pi/16). Rows T3 and T5 reuse them: expanding
 * cos(t -+ pi/4) with cos(pi/4) = sin(pi/4) = c4 gives c3 = c4 (c1 + c7), c5 = c4 (c1 - c7),
 * c1 = c4 (c3 + c5) and c7 = c4 (c3 - c5), hence
 *
 *   T3 = 1/2 (c3 b0 - c5 b3 - c7 b1 - c1 b2) = c4 ((p0 + p1) - (q0 + q1)) = c4 (m + w)
 *   T5 = 1/2 (c5 b0 + c3 b3 - c1 b1 + c7 b2) = c4 ((p0 - p1) - (q0 - q1)) = c4 (m - w)
 *
 * with m = p0 - q0 and w = p1 - q1. In all 16 multiplications and 26 additions per 8 points.
 * (The odd half has the structure of Loeffler, Ligtenberg and Moschytz, "Practical fast 1-D
 * DCT algorithms with 11 multiplications", ICASSP 1989: rotations, butterflies, a final
 * multiplication by 1/sqrt(2); their 11 come from rotations of three multiplications and an
 * output scaled by sqrt(8), neither of which is done here.)
 *
 * The constants are the formula's own: COS16(j) is cos(j pi/16) in double precision, which
 * clang folds to a constant (the build would fail on an unresolved `cos` import otherwise).
 */
#define COS16(j) ((float)__builtin_cos((j) * 3.14159265358979323846 / 16.0))
#define HALF_COS16(j) ((float)(__builtin_cos((j) * 3.14159265358979323846 / 16.0) / 2.0))

#define F4(x) wasm_f32x4_splat(x)

/* T of eight vectors g[n] (sample n of four independent lanes), in place: g[k] becomes T(k). */
static inline void dct8_lanes(v128_t *g) {
  const v128_t half_c1 = F4(HALF_COS16(1)), half_c2 = F4(HALF_COS16(2)), half_c3 = F4(HALF_COS16(3));
  const v128_t half_c4 = F4(HALF_COS16(4)), half_c5 = F4(HALF_COS16(5)), half_c6 = F4(HALF_COS16(6));
  const v128_t half_c7 = F4(HALF_COS16(7)), c4 = F4(COS16(4));

  v128_t a0 = wasm_f32x4_add(g[0], g[7]), b0 = wasm_f32x4_sub(g[0], g[7]);
  v128_t a1 = wasm_f32x4_add(g[1], g[6]), b1 = wasm_f32x4_sub(g[1], g[6]);
  v128_t a2 = wasm_f32x4_add(g[2], g[5]), b2 = wasm_f32x4_sub(g[2], g[5]);
  v128_t a3 = wasm_f32x4_add(g[3], g[4]), b3 = wasm_f32x4_sub(g[3], g[4]);

  /* Even half. */
  v128_t e0 = wasm_f32x4_add(a0, a3), h0 = wasm_f32x4_sub(a0, a3);
  v128_t e1 = wasm_f32x4_add(a1, a2), h1 = wasm_f32x4_sub(a1, a2);
  g[0] = wasm_f32x4_mul(wasm_f32x4_add(e0, e1), half_c4);
  g[4] = wasm_f32x4_mul(wasm_f32x4_sub(e0, e1), half_c4);
  g[2] = wasm_f32x4_add(wasm_f32x4_mul(h0, half_c2), wasm_f32x4_mul(h1, half_c6));
  g[6] = wasm_f32x4_sub(wasm_f32x4_mul(h0, half_c6), wasm_f32x4_mul(h1, half_c2));

  /* Odd half: the two rotations, then sums and differences. */
  v128_t p0 = wasm_f32x4_add(wasm_f32x4_mul(b0, half_c1), wasm_f32x4_mul(b3, half_c7));
  v128_t p1 = wasm_f32x4_sub(wasm_f32x4_mul(b0, half_c7), wasm_f32x4_mul(b3, half_c1));
  v128_t q0 = wasm_f32x4_add(wasm_f32x4_mul(b1, half_c3), wasm_f32x4_mul(b2, half_c5));
  v128_t q1 = wasm_f32x4_sub(wasm_f32x4_mul(b2, half_c3), wasm_f32x4_mul(b1, half_c5));
  g[1] = wasm_f32x4_add(p0, q0);
  g[7] = wasm_f32x4_add(p1, q1);
  v128_t m = wasm_f32x4_sub(p0, q0), w = wasm_f32x4_sub(p1, q1);
  g[3] = wasm_f32x4_mul(wasm_f32x4_add(m, w), c4);
  g[5] = wasm_f32x4_mul(wasm_f32x4_sub(m, w), c4);
}

static inline void transpose4(v128_t *a, v128_t *b, v128_t *c, v128_t *d) {
  v128_t ab_lo = wasm_i32x4_shuffle(*a, *b, 0, 4, 1, 5);
  v128_t ab_hi = wasm_i32x4_shuffle(*a, *b, 2, 6, 3, 7);
  v128_t cd_lo = wasm_i32x4_shuffle(*c, *d, 0, 4, 1, 5);
  v128_t cd_hi = wasm_i32x4_shuffle(*c, *d, 2, 6, 3, 7);
  *a = wasm_i32x4_shuffle(ab_lo, cd_lo, 0, 1, 4, 5);
  *b = wasm_i32x4_shuffle(ab_lo, cd_lo, 2, 3, 6, 7);
  *c = wasm_i32x4_shuffle(ab_hi, cd_hi, 0, 1, 4, 5);
  *d = wasm_i32x4_shuffle(ab_hi, cd_hi, 2, 3, 6, 7);
}

/*
 * DCT, quantisation and zigzag of one 8x8 block of level-shifted samples (`stride` floats
 * between rows). Vectors hold four columns of a row: the first pass transforms columns,
 * then the block is transposed and the same pass transforms rows. The result is transposed
 * (vector u, lane v = horizontal frequency u, vertical v), which the reciprocal and zigzag
 * tables are laid out for, so no transpose back is needed.
 */
static void fdct_quantise(const float *samples, int stride, const Quant *quant, i16 *out) {
  v128_t left[8], right[8];
  for (int r = 0; r < 8; r++) {
    left[r] = wasm_v128_load(samples + r * stride);
    right[r] = wasm_v128_load(samples + r * stride + 4);
  }
  dct8_lanes(left);
  dct8_lanes(right);
  transpose4(&left[0], &left[1], &left[2], &left[3]);
  transpose4(&left[4], &left[5], &left[6], &left[7]);
  transpose4(&right[0], &right[1], &right[2], &right[3]);
  transpose4(&right[4], &right[5], &right[6], &right[7]);
  for (int r = 0; r < 4; r++) {
    v128_t swap = left[4 + r];
    left[4 + r] = right[r];
    right[r] = swap;
  }
  dct8_lanes(left);
  dct8_lanes(right);

  /* Baseline codes AC values in at most 10 bits and DC differences in 11: clamp to +-1023.
   * For 8-bit samples |F(u, v)| <= 1020 when u or v > 0, and F(0, 0) = 8 * mean lies in
   * -1024..1016, so only a black block at Q(0, 0) = 1 is touched (-1024 -> -1023). */
  const v128_t lo = wasm_i32x4_splat(-1023), hi = wasm_i32x4_splat(1023);
  i16 transposed[64] __attribute__((aligned(16)));
  for (int u = 0; u < 8; u++) {
    v128_t a = wasm_f32x4_nearest(wasm_f32x4_mul(left[u], wasm_v128_load(quant->reciprocal + u * 8)));
    v128_t b = wasm_f32x4_nearest(wasm_f32x4_mul(right[u], wasm_v128_load(quant->reciprocal + u * 8 + 4)));
    v128_t ia = wasm_i32x4_max(wasm_i32x4_min(wasm_i32x4_trunc_sat_f32x4(a), hi), lo);
    v128_t ib = wasm_i32x4_max(wasm_i32x4_min(wasm_i32x4_trunc_sat_f32x4(b), hi), lo);
    wasm_v128_store(transposed + u * 8, wasm_i16x8_narrow_i32x4(ia, ib));
  }
  for (int k = 0; k < 64; k++) out[k] = transposed[zigzag_transposed[k]];
}

/* Bit k set when zigzag coefficient k is non-zero. */
static inline u64 nonzero_mask(const i16 *block) {
  u64 mask = 0;
  const v128_t zero = wasm_i16x8_splat(0);
  for (int i = 0; i < 8; i++) {
    v128_t v = wasm_v128_load(block + i * 8);
    mask |= (u64)wasm_i16x8_bitmask(wasm_i16x8_ne(v, zero)) << (i * 8);
  }
  return mask;
}

/* ---------------------------------------------------------------- colour conversion */

typedef struct {
  int width, height;
  int h_factor, v_factor;      /* luma sampling factors: chroma is 1/h x 1/v */
  int mcus_x, mcus_y;
  int blocks_per_mcu;          /* h * v luma + Cb + Cr */
  int plane_width;             /* luma samples per plane row: mcus_x * 8 * h */
  int chroma_width;            /* mcus_x * 8 */
  const u8 *rgba;
  u8 *padded_rows[2];          /* a source row extended to plane_width by its last pixel */
  float *luma;                 /* 8 * v rows of plane_width */
  float *cb, *cr;              /* 8 rows of chroma_width */
  Quant quant[2];              /* luma, chroma */
} Encoder;

/* Source row y (clamped to the image), extended to the plane width when the image is narrower. */
static const u8 *source_row(Encoder *e, int y, int slot) {
  if (y >= e->height) y = e->height - 1;
  const u8 *row = e->rgba + (size_t)y * (size_t)e->width * 4;
  if (e->width == e->plane_width) return row;
  u8 *padded = e->padded_rows[slot];
  __builtin_memcpy(padded, row, (size_t)e->width * 4);
  u32 last;
  __builtin_memcpy(&last, row + (size_t)(e->width - 1) * 4, 4);
  for (int x = e->width; x < e->plane_width; x++) __builtin_memcpy(padded + (size_t)x * 4, &last, 4);
  return padded;
}

typedef struct { v128_t r, g, b; } Rgb4;

static inline Rgb4 unpack4(const u8 *p) {
  v128_t px = wasm_v128_load(p);
  v128_t byte = wasm_i32x4_splat(0xff);
  Rgb4 c;
  c.r = wasm_f32x4_convert_i32x4(wasm_v128_and(px, byte));
  c.g = wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(px, 8), byte));
  c.b = wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(px, 16), byte));
  return c;
}

/* JFIF's full-range BT.601 YCbCr; Y is level-shifted by -128 here, Cb and Cr are centred. */
static inline v128_t luma4(Rgb4 c) {
  v128_t y = wasm_f32x4_mul(c.r, F4(0.299f));
  y = wasm_f32x4_add(y, wasm_f32x4_mul(c.g, F4(0.587f)));
  y = wasm_f32x4_add(y, wasm_f32x4_mul(c.b, F4(0.114f)));
  return wasm_f32x4_sub(y, F4(128.0f));
}

/* Cb and Cr of summed RGB (`scale` = 1 / number of pixels summed). */
static inline void chroma4(Rgb4 c, float scale, float *cb, float *cr) {
  v128_t b = wasm_f32x4_mul(c.r, F4(-0.168735892f * scale));
  b = wasm_f32x4_add(b, wasm_f32x4_mul(c.g, F4(-0.331264108f * scale)));
  b = wasm_f32x4_add(b, wasm_f32x4_mul(c.b, F4(0.5f * scale)));
  v128_t r = wasm_f32x4_mul(c.r, F4(0.5f * scale));
  r = wasm_f32x4_add(r, wasm_f32x4_mul(c.g, F4(-0.418687589f * scale)));
  r = wasm_f32x4_add(r, wasm_f32x4_mul(c.b, F4(-0.081312411f * scale)));
  wasm_v128_store(cb, b);
  wasm_v128_store(cr, r);
}

static inline Rgb4 add_rgb(Rgb4 a, Rgb4 b) {
  Rgb4 s = { wasm_f32x4_add(a.r, b.r), wasm_f32x4_add(a.g, b.g), wasm_f32x4_add(a.b, b.b) };
  return s;
}

/* Sums of horizontal pixel pairs of eight pixels (two vectors) -> four. */
static inline v128_t pair_sums(v128_t a, v128_t b) {
  return wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 2, 4, 6), wasm_i32x4_shuffle(a, b, 1, 3, 5, 7));
}

/* Fills the Y, Cb and Cr planes for MCU row `mcu_row`: 8 * v luma rows, 8 chroma rows. */
static void convert_mcu_row(Encoder *e, int mcu_row) {
  const int h = e->h_factor, v = e->v_factor, width = e->plane_width;
  const float scale = 1.0f / (float)(h * v);
  for (int chroma_row = 0; chroma_row < 8; chroma_row++) {
    int y0 = (mcu_row * 8 + chroma_row) * v;
    const u8 *top = source_row(e, y0, 0);
    const u8 *bottom = v == 2 ? source_row(e, y0 + 1, 1) : top;
    float *luma_top = e->luma + (size_t)(chroma_row * v) * width;
    float *luma_bottom = luma_top + width;
    float *cb = e->cb + (size_t)chroma_row * e->chroma_width;
    float *cr = e->cr + (size_t)chroma_row * e->chroma_width;
    for (int x = 0; x < width; x += 8) { /* plane widths are multiples of 8 */
      Rgb4 a0 = unpack4(top + x * 4), a1 = unpack4(top + x * 4 + 16);
      wasm_v128_store(luma_top + x, luma4(a0));
      wasm_v128_store(luma_top + x + 4, luma4(a1));
      if (v == 2) {
        Rgb4 b0 = unpack4(bottom + x * 4), b1 = unpack4(bottom + x * 4 + 16);
        wasm_v128_store(luma_bottom + x, luma4(b0));
        wasm_v128_store(luma_bottom + x + 4, luma4(b1));
        a0 = add_rgb(a0, b0);
        a1 = add_rgb(a1, b1);
      }
      if (h == 2) {
        Rgb4 pairs = { pair_sums(a0.r, a1.r), pair_sums(a0.g, a1.g), pair_sums(a0.b, a1.b) };
        chroma4(pairs, scale, cb + x / 2, cr + x / 2);
      } else {
        chroma4(a0, scale, cb + x, cr + x);
        chroma4(a1, scale, cb + x + 4, cr + x + 4);
      }
    }
  }
}

/* Quantised coefficients of every block of MCU row `mcu_row`, in MCU order, into `out`. */
static void mcu_row_coefficients(Encoder *e, int mcu_row, i16 *out) {
  convert_mcu_row(e, mcu_row);
  const int h = e->h_factor, v = e->v_factor;
  for (int mx = 0; mx < e->mcus_x; mx++) {
    for (int by = 0; by < v; by++) {
      for (int bx = 0; bx < h; bx++) {
        const float *block = e->luma + (size_t)(by * 8) * e->plane_width + (size_t)(mx * h + bx) * 8;
        fdct_quantise(block, e->plane_width, &e->quant[0], out);
        out += 64;
      }
    }
    fdct_quantise(e->cb + mx * 8, e->chroma_width, &e->quant[1], out);
    out += 64;
    fdct_quantise(e->cr + mx * 8, e->chroma_width, &e->quant[1], out);
    out += 64;
  }
}

/* ---------------------------------------------------------------- Huffman tables */

static inline int magnitude_bits(int value) {
  u32 a = (u32)(value < 0 ? -value : value);
  return a == 0 ? 0 : 32 - __builtin_clz(a);
}

typedef struct {
  u32 dc[12];    /* DC symbol = magnitude category 0..11 */
  u32 ac[256];   /* AC symbol = run << 4 | category */
} Counts;

typedef struct {
  u8 bits[17];       /* bits[n]: codes of length n = 1..16 (DHT's BITS); bits[0] unused */
  u8 values[256];    /* symbols in code order (DHT's HUFFVAL) */
  int count;
  u16 code[256];
  u8 size[256];      /* 0: symbol not in the table */
} HuffTable;

/* Counts the symbols of one block (same walk as encode_block). */
static inline u64 count_block(const i16 *block, int *previous_dc, u32 *dc_counts, u32 *ac_counts) {
  int diff = block[0] - *previous_dc;
  *previous_dc = block[0];
  int category = magnitude_bits(diff);
  dc_counts[category]++;
  u64 extra_bits = (u64)category;
  u64 mask = nonzero_mask(block) & ~1ull;
  int next = 1;
  while (mask) {
    int k = __builtin_ctzll(mask);
    mask &= mask - 1;
    int run = k - next;
    for (; run >= 16; run -= 16) ac_counts[0xF0]++;
    category = magnitude_bits(block[k]);
    ac_counts[(run << 4) | category]++;
    extra_bits += (u64)category;
    next = k + 1;
  }
  if (next <= 63) ac_counts[0x00]++; /* end of block */
  return extra_bits;
}

/*
 * Optimal code lengths for the used symbols (Huffman's construction, as T.81 K.2 describes),
 * limited to 16 bits by K.3's adjustment, then canonical codes (Annex C). A reserved symbol
 * with the least frequency takes the longest code and is dropped, so no code is all ones.
 */
static void build_huffman(HuffTable *t, const u32 *counts, int symbols) {
  enum { RESERVED = 256, MAX_LEAVES = 257, MAX_NODES = 2 * 257 - 1 };
  u16 leaf_symbol[MAX_LEAVES];
  u64 weight[MAX_NODES];
  u16 parent[MAX_NODES];
  u16 depth[MAX_NODES];
  int leaves = 0;

  /* Leaves by ascending count (insertion sort, at most 257); the reserved one goes first. */
  leaf_symbol[leaves] = RESERVED;
  weight[leaves++] = 1;
  for (int s = 0; s < symbols; s++) {
    if (counts[s] == 0) continue;
    int i = leaves++;
    while (i > 1 && weight[i - 1] > counts[s]) {
      weight[i] = weight[i - 1];
      leaf_symbol[i] = leaf_symbol[i - 1];
      i--;
    }
    weight[i] = counts[s];
    leaf_symbol[i] = (u16)s;
  }

  /* Two queues: sorted leaves, and merged nodes (created in non-decreasing weight order). */
  int next_leaf = 0, next_merged = leaves, created = leaves;
  for (int merge = 0; merge < leaves - 1; merge++) {
    int pick[2];
    for (int j = 0; j < 2; j++) {
      if (next_leaf < leaves && (next_merged >= created || weight[next_leaf] <= weight[next_merged])) pick[j] = next_leaf++;
      else pick[j] = next_merged++;
    }
    weight[created] = weight[pick[0]] + weight[pick[1]];
    parent[pick[0]] = parent[pick[1]] = (u16)created;
    created++;
  }
  /* Parents are created after their children: walk down from the root. */
  int root = created - 1;
  depth[root] = 0;
  for (int node = root - 1; node >= 0; node--) depth[node] = (u16)(depth[parent[node]] + 1);

  int length_count[MAX_LEAVES + 1];
  for (int i = 0; i <= MAX_LEAVES; i++) length_count[i] = 0;
  int longest = 0;
  for (int i = 0; i < leaves; i++) {
    length_count[depth[i]]++;
    if (depth[i] > longest) longest = depth[i];
  }
  /* K.3 (Figure K.3, Adjust_BITS): while a length over 16 has codes, take two sibling codes
   * there; one symbol takes their parent's code (a level up), and the nearest non-empty
   * length below len - 1 gives up one code, which splits into two one level longer: one for
   * the code's own symbol, one for the other symbol. */
  for (int len = longest; len > 16; len--) {
    while (length_count[len] > 0) {
      int shorter = len - 2;
      while (length_count[shorter] == 0) shorter--;
      length_count[len] -= 2;
      length_count[len - 1] += 1;
      length_count[shorter + 1] += 2;
      length_count[shorter] -= 1;
    }
  }
  /* Drop the reserved code: one of the longest. */
  int last = 16;
  while (last > 0 && length_count[last] == 0) last--;
  length_count[last]--;

  /* Real symbols by (original depth, symbol): shorter codes to the more frequent ones. */
  u16 order[MAX_LEAVES];
  int n = 0;
  for (int i = 0; i < leaves; i++) {
    if (leaf_symbol[i] == RESERVED) continue;
    int j = n++;
    while (j > 0 && (depth[order[j - 1]] > depth[i] || (depth[order[j - 1]] == depth[i] && leaf_symbol[order[j - 1]] > leaf_symbol[i]))) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = (u16)i;
  }

  for (int s = 0; s < 256; s++) t->size[s] = 0;
  u32 code = 0;
  int k = 0;
  for (int len = 1; len <= 16; len++) {
    t->bits[len] = (u8)length_count[len];
    for (int i = 0; i < length_count[len]; i++) {
      int s = leaf_symbol[order[k]];
      t->values[k++] = (u8)s;
      t->code[s] = (u16)code++;
      t->size[s] = (u8)len;
    }
    code <<= 1;
  }
  t->count = k;
}

/* ---------------------------------------------------------------- bit writer */

typedef struct {
  u8 *out;
  u32 pos, cap;
  u64 acc;      /* pending bits, the newest in the low `bits` bits */
  int bits;
  int overflow;
} BitWriter;

static inline int has_ff_byte(u32 word) {
  /* An 0xFF byte is a zero byte of the inverse; (x - 0x01..) & ~x & 0x80.. is non-zero exactly
   * when x has a zero byte (the "determine if a word has a zero byte" test of Sean Anderson's
   * Bit Twiddling Hacks, after Alan Mycroft). */
  u32 inverted = ~word;
  return ((inverted - 0x01010101u) & ~inverted & 0x80808080u) != 0;
}

static void flush_word(BitWriter *w) {
  w->bits -= 32;
  u32 word = (u32)(w->acc >> w->bits);
  if (w->pos + 8 > w->cap) {
    w->overflow = 1;
    return;
  }
  if (!has_ff_byte(word)) {
    u32 big_endian = __builtin_bswap32(word);
    __builtin_memcpy(w->out + w->pos, &big_endian, 4);
    w->pos += 4;
    return;
  }
  for (int shift = 24; shift >= 0; shift -= 8) {
    u8 byte = (u8)(word >> shift);
    w->out[w->pos++] = byte;
    if (byte == 0xFF) w->out[w->pos++] = 0x00; /* byte stuffing */
  }
}

/* Appends the low `n` bits of `value` (n <= 32; value has no higher bits set). Forced inline
 * (with encode_block): clang keeps calls otherwise, about 10% of the encode time. */
static inline __attribute__((always_inline)) void put_bits(BitWriter *w, u32 value, int n) {
  w->acc = (w->acc << n) | value;
  w->bits += n;
  if (w->bits >= 32) flush_word(w);
}

/* Pads the last byte with 1 bits and writes out what is pending. */
static void finish_bits(BitWriter *w) {
  int pad = (8 - (w->bits & 7)) & 7;
  w->acc = (w->acc << pad) | ((1u << pad) - 1);
  w->bits += pad;
  while (w->bits >= 8) {
    w->bits -= 8;
    u8 byte = (u8)(w->acc >> w->bits);
    if (w->pos + 2 > w->cap) {
      w->overflow = 1;
      return;
    }
    w->out[w->pos++] = byte;
    if (byte == 0xFF) w->out[w->pos++] = 0x00;
  }
}

static inline __attribute__((always_inline)) void encode_block(BitWriter *w, const i16 *block, int *previous_dc, const HuffTable *dc, const HuffTable *ac) {
  int diff = block[0] - *previous_dc;
  *previous_dc = block[0];
  int category = magnitude_bits(diff);
  /* Negative values are sent as value - 1 in `category` bits (T.81 F.1.2.1). */
  u32 extra = (u32)(diff < 0 ? diff - 1 : diff) & ((1u << category) - 1);
  put_bits(w, ((u32)dc->code[category] << category) | extra, dc->size[category] + category);

  u64 mask = nonzero_mask(block) & ~1ull;
  int next = 1;
  while (mask) {
    int k = __builtin_ctzll(mask);
    mask &= mask - 1;
    int run = k - next;
    for (; run >= 16; run -= 16) put_bits(w, ac->code[0xF0], ac->size[0xF0]);
    int value = block[k];
    category = magnitude_bits(value);
    int symbol = (run << 4) | category;
    extra = (u32)(value < 0 ? value - 1 : value) & ((1u << category) - 1);
    put_bits(w, ((u32)ac->code[symbol] << category) | extra, ac->size[symbol] + category);
    next = k + 1;
  }
  if (next <= 63) put_bits(w, ac->code[0x00], ac->size[0x00]);
}

/* ---------------------------------------------------------------- headers */

static u8 *put16(u8 *p, int v) {
  p[0] = (u8)(v >> 8);
  p[1] = (u8)v;
  return p + 2;
}

static u8 *write_dht(u8 *p, int class_and_id, const HuffTable *t) {
  *p++ = (u8)class_and_id;
  for (int len = 1; len <= 16; len++) *p++ = t->bits[len];
  for (int i = 0; i < t->count; i++) *p++ = t->values[i];
  return p;
}

/* Everything before the entropy-coded data. */
static u8 *write_headers(u8 *p, const Encoder *e, const HuffTable tables[4]) {
  *p++ = 0xFF; *p++ = 0xD8; /* SOI */

  static const u8 app0[] = { 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0 };
  __builtin_memcpy(p, app0, sizeof app0);
  p += sizeof app0;

  *p++ = 0xFF; *p++ = 0xDB; /* DQT: both tables, 8-bit, zigzag order */
  p = put16(p, 2 + 2 * 65);
  for (int t = 0; t < 2; t++) {
    *p++ = (u8)t;
    for (int k = 0; k < 64; k++) *p++ = e->quant[t].table[zigzag_natural[k]];
  }

  *p++ = 0xFF; *p++ = 0xC0; /* SOF0 */
  p = put16(p, 17);
  *p++ = 8;
  p = put16(p, e->height);
  p = put16(p, e->width);
  *p++ = 3;
  *p++ = 1; *p++ = (u8)((e->h_factor << 4) | e->v_factor); *p++ = 0;
  *p++ = 2; *p++ = 0x11; *p++ = 1;
  *p++ = 3; *p++ = 0x11; *p++ = 1;

  *p++ = 0xFF; *p++ = 0xC4; /* DHT: luma DC, luma AC, chroma DC, chroma AC */
  int length = 2;
  for (int i = 0; i < 4; i++) length += 17 + tables[i].count;
  p = put16(p, length);
  p = write_dht(p, 0x00, &tables[0]);
  p = write_dht(p, 0x10, &tables[1]);
  p = write_dht(p, 0x01, &tables[2]);
  p = write_dht(p, 0x11, &tables[3]);

  *p++ = 0xFF; *p++ = 0xDA; /* SOS: all three components, full spectrum */
  p = put16(p, 12);
  *p++ = 3;
  *p++ = 1; *p++ = 0x00;
  *p++ = 2; *p++ = 0x11;
  *p++ = 3; *p++ = 0x11;
  *p++ = 0; *p++ = 63; *p++ = 0;
  return p;
}

/* Above this, pass 2 recomputes the blocks instead of keeping them (memory over speed). */
#define COEFFICIENT_STORE_MAX (16ull << 20)

/* SOI + APP0 + DQT + SOF0 + DHT (at most 4 x (17 + 256)) + SOS, rounded up. */
#define HEADER_BYTES_MAX 1280u

/* ---------------------------------------------------------------- entry point */

static int memory_holds(const u8 *p, u64 n) {
  u64 end = (u64)(size_t)p + n;
  return p != 0 && end <= (u64)__builtin_wasm_memory_size(0) * 65536ull;
}

/* Chroma sampling as mozjpeg's auto_subsample picks it from the quality. */
static void choose_sampling(int quality, int *h, int *v) {
  if (quality >= 90) { *h = 1; *v = 1; }       /* 4:4:4 */
  else if (quality >= 80) { *h = 2; *v = 1; }  /* 4:2:2 */
  else { *h = 2; *v = 2; }                     /* 4:2:0 */
}

/**
 * Encodes `width` x `height` RGBA8 pixels at `rgba` as a baseline JPEG of `quality` (1..100).
 * Returns the file's address in the arena (length: jpeg_encoded_size()), or 0 with
 * jpeg_encode_status() < 0.
 */
EXPORT(jpeg_encode) u8 *jpeg_encode(const u8 *rgba, int width, int height, int quality) {
  enc_status = ENC_OK;
  enc_size = 0;
  if (width < 1 || height < 1 || width > 65535 || height > 65535 || quality < 1 || quality > 100 ||
      !memory_holds(rgba, (u64)width * (u64)height * 4ull)) {
    enc_status = ENC_BAD_ARGUMENT;
    return 0;
  }
  init_zigzag();

  Encoder e;
  e.width = width;
  e.height = height;
  e.rgba = rgba;
  choose_sampling(quality, &e.h_factor, &e.v_factor);
  e.mcus_x = (width + 8 * e.h_factor - 1) / (8 * e.h_factor);
  e.mcus_y = (height + 8 * e.v_factor - 1) / (8 * e.v_factor);
  e.blocks_per_mcu = e.h_factor * e.v_factor + 2;
  e.plane_width = e.mcus_x * 8 * e.h_factor;
  e.chroma_width = e.mcus_x * 8;
  init_quant(&e.quant[0], BASE_LUMA, quality);
  init_quant(&e.quant[1], BASE_CHROMA, quality);

  e.padded_rows[0] = (u8 *)codec_arena_alloc((u64)e.plane_width * 4);
  e.padded_rows[1] = (u8 *)codec_arena_alloc((u64)e.plane_width * 4);
  e.luma = (float *)codec_arena_alloc((u64)e.plane_width * 8 * (u64)e.v_factor * 4);
  e.cb = (float *)codec_arena_alloc((u64)e.chroma_width * 8 * 4);
  e.cr = (float *)codec_arena_alloc((u64)e.chroma_width * 8 * 4);
  u64 row_coefficients = (u64)e.mcus_x * (u64)e.blocks_per_mcu * 64;
  i16 *row_buffer = (i16 *)codec_arena_alloc(row_coefficients * 2);
  if (!e.padded_rows[0] || !e.padded_rows[1] || !e.luma || !e.cb || !e.cr || !row_buffer) {
    enc_status = ENC_NO_MEMORY;
    return 0;
  }
  /* Keep every block for the second pass when small enough and memory allows; else recompute. */
  u64 store_bytes = row_coefficients * 2 * (u64)e.mcus_y;
  i16 *all = store_bytes <= COEFFICIENT_STORE_MAX ? (i16 *)codec_arena_alloc(store_bytes) : 0;

  /* Pass 1: quantised blocks and symbol counts. */
  Counts luma_counts, chroma_counts;
  __builtin_memset(&luma_counts, 0, sizeof luma_counts);
  __builtin_memset(&chroma_counts, 0, sizeof chroma_counts);
  u64 extra_bits = 0;
  int dc_y = 0, dc_cb = 0, dc_cr = 0;
  const int luma_blocks = e.h_factor * e.v_factor;
  for (int my = 0; my < e.mcus_y; my++) {
    i16 *row = all ? all + (u64)my * row_coefficients : row_buffer;
    mcu_row_coefficients(&e, my, row);
    for (int mx = 0; mx < e.mcus_x; mx++) {
      const i16 *mcu = row + (u64)mx * (u64)e.blocks_per_mcu * 64;
      for (int b = 0; b < luma_blocks; b++) extra_bits += count_block(mcu + b * 64, &dc_y, luma_counts.dc, luma_counts.ac);
      extra_bits += count_block(mcu + luma_blocks * 64, &dc_cb, chroma_counts.dc, chroma_counts.ac);
      extra_bits += count_block(mcu + (luma_blocks + 1) * 64, &dc_cr, chroma_counts.dc, chroma_counts.ac);
    }
  }

  HuffTable tables[4]; /* luma DC, luma AC, chroma DC, chroma AC */
  build_huffman(&tables[0], luma_counts.dc, 12);
  build_huffman(&tables[1], luma_counts.ac, 256);
  build_huffman(&tables[2], chroma_counts.dc, 12);
  build_huffman(&tables[3], chroma_counts.ac, 256);

  /* Exact size of the scan in bits, hence a sure bound on its bytes with stuffing. */
  u64 scan_bits = extra_bits;
  for (int s = 0; s < 12; s++) {
    scan_bits += (u64)luma_counts.dc[s] * tables[0].size[s] + (u64)chroma_counts.dc[s] * tables[2].size[s];
  }
  for (int s = 0; s < 256; s++) {
    scan_bits += (u64)luma_counts.ac[s] * tables[1].size[s] + (u64)chroma_counts.ac[s] * tables[3].size[s];
  }
  u64 capacity = HEADER_BYTES_MAX + 2 * ((scan_bits + 7) / 8) + 16 + 2;
  if (capacity > 0x7FFFFFFFull) {
    enc_status = ENC_NO_MEMORY;
    return 0;
  }
  u8 *out = (u8 *)codec_arena_alloc(capacity);
  if (!out) {
    enc_status = ENC_NO_MEMORY;
    return 0;
  }

  /* Pass 2: the file. */
  BitWriter w = { out, 0, (u32)capacity, 0, 0, 0 };
  w.pos = (u32)(write_headers(out, &e, tables) - out);
  dc_y = dc_cb = dc_cr = 0;
  for (int my = 0; my < e.mcus_y; my++) {
    i16 *row = all ? all + (u64)my * row_coefficients : row_buffer;
    if (!all) mcu_row_coefficients(&e, my, row);
    for (int mx = 0; mx < e.mcus_x; mx++) {
      const i16 *mcu = row + (u64)mx * (u64)e.blocks_per_mcu * 64;
      for (int b = 0; b < luma_blocks; b++) encode_block(&w, mcu + b * 64, &dc_y, &tables[0], &tables[1]);
      encode_block(&w, mcu + luma_blocks * 64, &dc_cb, &tables[2], &tables[3]);
      encode_block(&w, mcu + (luma_blocks + 1) * 64, &dc_cr, &tables[2], &tables[3]);
    }
  }
  finish_bits(&w);
  if (w.overflow || w.pos + 2 > w.cap) {
    enc_status = ENC_OVERFLOW;
    return 0;
  }
  out[w.pos++] = 0xFF;
  out[w.pos++] = 0xD9; /* EOI */
  enc_size = w.pos;
  return out;
}
