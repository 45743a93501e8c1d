/*
 * resize.c - RGBA8 resampling for wasm32, written for this project; linked into the same
 * module as jpeg.c so a decoded image is resized where it lies, in the same linear memory.
 *
 * As libvips does it: an integer box reduction ("shrink") first, leaving at least 2x for the
 * high-quality kernel, then separable Lanczos3 ("reduce") on the remainder. sRGB values are
 * filtered as they are (no linear light); alpha is premultiplied only when the caller says
 * the image has some.
 *
 * The source is read through a "view": pixel (u, v) of the rw x rh window is the stored pixel
 * base + u * step_u + v * step_v, so EXIF orientation, flips, rotations and crops cost nothing
 * before this pass. Within the window, a fractional rectangle (x0, y0, fw, fh) is mapped onto
 * the dw x dh output (exact shrink-on-load: the window is the outward-rounded rectangle).
 *
 * Memory follows the output: rows are streamed. Each box row (fy window rows averaged in
 * groups of fx pixels) is filtered horizontally straight into a ring of dw-wide float rows,
 * as many as the vertical kernel has taps, and each output row is the weighted sum of the ring
 * rows it needs. Work buffers: one box row, the ring, the weight tables; plus the output.
 * Pixels are f32x4 vectors (wasm simd128), one per RGBA pixel.
 */
#include <wasm_simd128.h>

typedef unsigned char u8;
typedef int i32;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

#define EXPORT(name) __attribute__((export_name(#name)))

void *codec_arena_alloc(u64 n); /* jpeg.c's bump arena */

static int rs_status;
EXPORT(resize_status) int resize_status(void) { return rs_status; }

/* ---------------------------------------------------------------- kernel */
static float sinf_approx(float x) {
  /* sin on [-pi, pi] after range reduction; |error| < 2e-7 relative, plenty for weights */
  const float PI = 3.14159265358979323846f, TWO_PI = 6.28318530717958647692f;
  x = x - TWO_PI * __builtin_floorf((x + PI) / TWO_PI);
  float x2 = x * x;
  /* Taylor to x^15 on [-pi, pi] */
  float t = x, s = x;
  for (int k = 1; k <= 7; k++) {
    t = -t * x2 / (float)((2 * k) * (2 * k + 1));
    s += t;
  }
  return s;
}

static float lanczos3(float x) {
  if (x < 0) x = -x;
  if (x < 1e-6f) return 1.0f;
  if (x >= 3.0f) return 0.0f;
  const float PI = 3.14159265358979323846f;
  float px = PI * x;
  return 3.0f * sinf_approx(px) * sinf_approx(px / 3.0f) / (px * px);
}

/*
 * Weights for `out` samples over `in` source samples: output sample i is centred at source
 * coordinate off + (i + 0.5) * scale - 0.5 (in source-sample units). Source indices outside
 * 0..in-1 are clamped (edge pixels extended). Per sample: start index, tap count, weights
 * (normalised to 1), in a table of `*taps` slots per sample.
 */
typedef struct {
  i32 *start;
  i32 *count;
  float *w;
  int taps;
} Filter;

static int make_filter(Filter *f, int in, int out, double off, double scale) {
  double support = scale > 1.0 ? 3.0 * scale : 3.0;
  double fscale = scale > 1.0 ? 1.0 / scale : 1.0; /* kernel argument per source sample */
  int taps = (int)__builtin_ceil(support * 2.0) + 2;
  if (taps > in + 2) taps = in + 2;
  if (taps < 1) taps = 1;
  f->taps = taps;
  f->start = (i32 *)codec_arena_alloc((u64)out * 4);
  f->count = (i32 *)codec_arena_alloc((u64)out * 4);
  f->w = (float *)codec_arena_alloc((u64)out * (u64)taps * 4);
  if (!f->start || !f->count || !f->w) return 0;
  for (int i = 0; i < out; i++) {
    double centre = off + ((double)i + 0.5) * scale - 0.5;
    int lo = (int)__builtin_floor(centre - support) + 1;
    int hi = (int)__builtin_floor(centre + support);
    if (hi < lo) hi = lo;
    int first = lo < 0 ? 0 : lo > in - 1 ? in - 1 : lo;
    int last = hi < 0 ? 0 : hi > in - 1 ? in - 1 : hi;
    int n = last - first + 1;
    if (n > taps) n = taps; /* cannot happen: the window fits `taps` */
    float *w = f->w + (u64)i * (u64)taps;
    for (int k = 0; k < taps; k++) w[k] = 0.0f;
    double sum = 0.0;
    for (int j = lo; j <= hi; j++) {
      float v = lanczos3((float)(((double)j - centre) * fscale));
      int idx = j < 0 ? 0 : j > in - 1 ? in - 1 : j;
      int k = idx - first;
      if (k < 0) k = 0;
      if (k >= n) k = n - 1;
      w[k] += v;
      sum += v;
    }
    if (sum == 0.0) { /* degenerate: nearest sample */
      for (int k = 0; k < n; k++) w[k] = 0.0f;
      int idx = (int)__builtin_floor(centre + 0.5);
      idx = idx < first ? first : idx > last ? last : idx;
      w[idx - first] = 1.0f;
    } else {
      float inv = (float)(1.0 / sum);
      for (int k = 0; k < n; k++) w[k] *= inv;
    }
    f->start[i] = first;
    f->count[i] = n;
  }
  return 1;
}

/* ---------------------------------------------------------------- pixel helpers */
static inline v128_t px_to_f32(const u8 *p) {
  v128_t v = wasm_v128_load32_zero(p);
  v = wasm_u16x8_extend_low_u8x16(v);
  v = wasm_u32x4_extend_low_u16x8(v);
  return wasm_f32x4_convert_i32x4(v);
}

static inline u32 f32_to_px(v128_t v) {
  v = wasm_f32x4_add(v, wasm_f32x4_splat(0.5f));
  v128_t i = wasm_i32x4_trunc_sat_f32x4(v);
  v128_t s = wasm_i16x8_narrow_i32x4(i, i);
  v128_t b = wasm_u8x16_narrow_i16x8(s, s);
  return (u32)wasm_i32x4_extract_lane(b, 0);
}

/* ---------------------------------------------------------------- view copy (no resampling) */
static u8 *remap(const u8 *src, i64 base, i64 su, i64 sv, int w, int h) {
  u8 *out = (u8 *)codec_arena_alloc((u64)w * (u64)h * 4);
  if (!out) return 0;
  const u32 *s = (const u32 *)src;
  u32 *d = (u32 *)out;
  for (int v = 0; v < h; v++) {
    i64 i = base + (i64)v * sv;
    if (su == 1) {
      __builtin_memcpy(d, s + i, (u64)w * 4);
      d += w;
    } else {
      for (int u = 0; u < w; u++, i += su) *d++ = s[i];
    }
  }
  return out;
}

/* ---------------------------------------------------------------- resize */
/*
 * The box grid is centred on the window, so a mirror-symmetric source gives a mirror-symmetric
 * result: n boxes of f pixels overhang the window by `over` = n * f - w pixels, half on each
 * side (outside pixels repeat the edge, as the kernel's clamping does). When `over` is odd the
 * grid starts half a pixel off: each box then takes f + 1 pixels, the two end ones at weight 1/2.
 * With f odd one more box makes `over` even instead.
 */
typedef struct {
  int f;      /* box factor */
  int n;      /* boxes */
  int s0;     /* first pixel of box 0 (may be negative) */
  int half;   /* end pixels at weight 1/2 */
  double origin; /* window coordinate where box 0 starts */
} Grid;

static void make_grid(Grid *g, int w, int f) {
  g->f = f;
  g->n = (w + f - 1) / f;
  int over = g->n * f - w;
  if ((over & 1) && (f & 1)) { g->n++; over += f; }
  g->half = over & 1;
  g->s0 = -((over + 1) / 2);
  g->origin = -over / 2.0;
}

typedef struct {
  const u8 *src;
  i64 base, su, sv;
  int rw, rh;      /* window */
  Grid gx, gy;
  int alpha;
  v128_t *boxrow;  /* gx.n pixels */
  v128_t *tmp;     /* rw pixels: one window row, converted */
} Source;

static inline v128_t load_px(const Source *s, i64 i) {
  v128_t v = px_to_f32(s->src + i * 4);
  if (s->alpha) {
    v128_t a = wasm_f32x4_mul(wasm_i32x4_shuffle(v, v, 3, 3, 3, 3), wasm_f32x4_splat(1.0f / 255.0f));
    v = wasm_i32x4_shuffle(wasm_f32x4_mul(v, a), v, 0, 1, 2, 7);
  }
  return v;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Box row r as floats (premultiplied by alpha / 255 when alpha). */
static void box_row(Source *s, int r) {
  v128_t *row = s->boxrow;
  const Grid *gx = &s->gx, *gy = &s->gy;
  if (gx->f == 1 && gy->f == 1) {
    i64 i = s->base + (i64)clampi(r, 0, s->rh - 1) * s->sv;
    for (int x = 0; x < gx->n; x++, i += s->su) row[x] = load_px(s, i);
    return;
  }
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int x = 0; x < gx->n; x++) row[x] = zero;
  int ny = gy->f + gy->half;
  int y0 = gy->s0 + r * gy->f;
  int nx = gx->f + gx->half;
  for (int k = 0; k < ny; k++) {
    float wy = (gy->half && (k == 0 || k == ny - 1)) ? 0.5f : 1.0f;
    int y = clampi(y0 + k, 0, s->rh - 1);
    /* the window row, converted once */
    i64 i = s->base + (i64)y * s->sv;
    for (int u = 0; u < s->rw; u++, i += s->su) s->tmp[u] = load_px(s, i);
    v128_t wyv = wasm_f32x4_splat(wy);
    for (int x = 0; x < gx->n; x++) {
      int u0 = gx->s0 + x * gx->f;
      v128_t acc = zero;
      if (u0 >= 0 && u0 + nx <= s->rw && !gx->half) {
        const v128_t *p = s->tmp + u0;
        for (int j = 0; j < nx; j++) acc = wasm_f32x4_add(acc, p[j]);
      } else {
        for (int j = 0; j < nx; j++) {
          v128_t v = s->tmp[clampi(u0 + j, 0, s->rw - 1)];
          if (gx->half && (j == 0 || j == nx - 1)) v = wasm_f32x4_mul(v, wasm_f32x4_splat(0.5f));
          acc = wasm_f32x4_add(acc, v);
        }
      }
      row[x] = wasm_f32x4_add(row[x], wasm_f32x4_mul(acc, wyv));
    }
  }
  v128_t norm = wasm_f32x4_splat(1.0f / (float)(gx->f * gy->f));
  for (int x = 0; x < gx->n; x++) row[x] = wasm_f32x4_mul(row[x], norm);
}

static void filter_row(const Filter *f, const v128_t *in, v128_t *out, int n) {
  for (int i = 0; i < n; i++) {
    const float *w = f->w + (u64)i * (u64)f->taps;
    const v128_t *p = in + f->start[i];
    int c = f->count[i];
    v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = acc0;
    int k = 0;
    for (; k + 1 < c; k += 2) {
      acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(p[k], wasm_f32x4_splat(w[k])));
      acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(p[k + 1], wasm_f32x4_splat(w[k + 1])));
    }
    if (k < c) acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(p[k], wasm_f32x4_splat(w[k])));
    out[i] = wasm_f32x4_add(acc0, acc1);
  }
}

/**
 * Resamples a view of an RGBA8 image (sw x sh pixels at src) to dw x dh RGBA8 in this module's
 * memory and returns its pointer, or 0 (resize_status() says why: -1 bad arguments, -5 no
 * memory). Window: rw x rh pixels, (u, v) -> stored pixel base + u * su + v * sv. Region:
 * x0, y0, fw, fh within the window (fractions allowed). alpha: 1 = premultiply.
 */
EXPORT(resize_rgba) u8 *resize_rgba(const u8 *src, int sw, int sh, int base, int su, int sv, int rw, int rh,
                                    float x0, float y0, float fw, float fh, int dw, int dh, int alpha) {
  rs_status = -1;
  if (sw < 1 || sh < 1 || rw < 1 || rh < 1 || dw < 1 || dh < 1) return 0;
  if ((u64)dw * (u64)dh > (1ull << 28)) return 0;
  if (!(fw > 0) || !(fh > 0) || !(x0 >= 0) || !(y0 >= 0) || x0 + fw > (float)rw + 1e-3f || y0 + fh > (float)rh + 1e-3f) return 0;
  /* every window corner must be a stored pixel (the mapping is affine, so corners suffice) */
  i64 total = (i64)sw * (i64)sh;
  for (int cy = 0; cy < 2; cy++)
    for (int cx = 0; cx < 2; cx++) {
      i64 i = (i64)base + (i64)(cx ? rw - 1 : 0) * su + (i64)(cy ? rh - 1 : 0) * sv;
      if (i < 0 || i >= total) return 0;
    }
  rs_status = -5;
  int exact = dw == rw && dh == rh && x0 == 0 && y0 == 0 && fw == (float)rw && fh == (float)rh;
  if (exact) {
    u8 *o = remap(src, base, su, sv, rw, rh);
    if (o) rs_status = 0;
    return o;
  }
  Source s;
  s.src = src; s.base = base; s.su = su; s.sv = sv; s.rw = rw; s.rh = rh; s.alpha = alpha != 0;
  /* integer box first, leaving the kernel at least 2x (libvips' shrink before reduce) */
  double rx = (double)fw / dw, ry = (double)fh / dh;
  make_grid(&s.gx, rw, rx >= 4.0 ? (int)(rx / 2.0) : 1);
  make_grid(&s.gy, rh, ry >= 4.0 ? (int)(ry / 2.0) : 1);
  Filter fx, fy;
  if (!make_filter(&fx, s.gx.n, dw, ((double)x0 - s.gx.origin) / s.gx.f, rx / s.gx.f)) return 0;
  if (!make_filter(&fy, s.gy.n, dh, ((double)y0 - s.gy.origin) / s.gy.f, ry / s.gy.f)) return 0;
  u8 *out = (u8 *)codec_arena_alloc((u64)dw * (u64)dh * 4);
  s.boxrow = (v128_t *)codec_arena_alloc((u64)s.gx.n * 16);
  s.tmp = (v128_t *)codec_arena_alloc((u64)rw * 16);
  int ring_n = fy.taps;
  v128_t *ring = (v128_t *)codec_arena_alloc((u64)ring_n * (u64)dw * 16);
  if (!out || !s.boxrow || !s.tmp || !ring) return 0;
  int next = 0; /* next box row to filter into the ring */
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int y = 0; y < dh; y++) {
    int first = fy.start[y], n = fy.count[y];
    if (next < first) next = first;
    while (next < first + n) {
      box_row(&s, next);
      filter_row(&fx, s.boxrow, ring + (u64)(next % ring_n) * (u64)dw, dw);
      next++;
    }
    const float *w = fy.w + (u64)y * (u64)fy.taps;
    u32 *o = (u32 *)(out + (u64)y * (u64)dw * 4);
    const v128_t *rows[64];
    int nn = n > 64 ? 64 : n;
    for (int k = 0; k < nn; k++) rows[k] = ring + (u64)((first + k) % ring_n) * (u64)dw;
    for (int x = 0; x < dw; x++) {
      v128_t acc0 = zero, acc1 = zero;
      int k = 0;
      for (; k + 1 < nn; k += 2) {
        acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(rows[k][x], wasm_f32x4_splat(w[k])));
        acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(rows[k + 1][x], wasm_f32x4_splat(w[k + 1])));
      }
      if (k < nn) acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(rows[k][x], wasm_f32x4_splat(w[k])));
      v128_t v = wasm_f32x4_add(acc0, acc1);
      if (s.alpha) {
        float a = wasm_f32x4_extract_lane(v, 3);
        if (a <= 0.5f) {
          v = zero;
        } else {
          if (a > 255.0f) a = 255.0f;
          v128_t k255 = wasm_f32x4_splat(255.0f / a);
          v = wasm_i32x4_shuffle(wasm_f32x4_mul(v, k255), v, 0, 1, 2, 7);
        }
      }
      o[x] = f32_to_px(v);
    }
  }
  rs_status = 0;
  return out;
}
