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
void colour_row(u8 *row, int n); /* colour.c */

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

/* ---------------------------------------------------------------- resize (push) */
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

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/*
 * One resampling in progress. Window rows arrive in order (pushed); each is converted once,
 * box-summed horizontally and added, weighted, into the one or two vertical boxes it belongs
 * to. A finished box row is Lanczos-filtered horizontally into a ring of dw-wide rows, as many
 * as the vertical kernel has taps, and every output row whose taps are all in the ring is
 * written at once. So memory follows the output: a window row, two box rows, the ring, the
 * weight tables and the output; never the source.
 */
typedef struct {
  int rw, rh;       /* window */
  int wx, wy;       /* window origin in pushed rows (row-pointer pushes only) */
  int alpha;
  Grid gx, gy;
  Filter fx, fy;
  v128_t *tmp;      /* rw pixels: one window row, converted */
  v128_t *acc[2];   /* box rows being summed (box r in acc[r & 1]) */
  v128_t *ring;
  int ring_n;
  int box_lo, box_hi; /* box rows some output row needs */
  int next_box;     /* next box row to finish */
  int next_out;     /* next output row to write */
  int pushed;       /* rows pushed so far */
  int exact;        /* the region is the whole window at its own size: rows are copied */
  u8 *out;
  int dw, dh;
} Stream;

static Stream st;
static int st_open;

static inline v128_t load_px(const u8 *p, int alpha) {
  v128_t v = px_to_f32(p);
  if (alpha) {
    v128_t a = wasm_f32x4_mul(wasm_i32x4_shuffle(v, v, 3, 3, 3, 3), wasm_f32x4_splat(1.0f / 255.0f));
    v = wasm_i32x4_shuffle(wasm_f32x4_mul(v, a), v, 0, 1, 2, 7);
  }
  return v;
}

/* acc += weight * (horizontal boxes of the converted window row) */
static void add_box_row(v128_t *acc, float weight) {
  const Grid *gx = &st.gx;
  const v128_t *t = st.tmp;
  v128_t wv = wasm_f32x4_splat(weight);
  if (gx->f == 1) {
    for (int x = 0; x < gx->n; x++) acc[x] = wasm_f32x4_add(acc[x], wasm_f32x4_mul(t[x], wv));
    return;
  }
  int nx = gx->f + gx->half;
  v128_t halfv = wasm_f32x4_splat(0.5f);
  for (int x = 0; x < gx->n; x++) {
    int u0 = gx->s0 + x * gx->f;
    v128_t sum = wasm_f32x4_splat(0.0f);
    if (u0 >= 0 && u0 + nx <= st.rw && !gx->half) {
      const v128_t *p = t + u0;
      for (int j = 0; j < nx; j++) sum = wasm_f32x4_add(sum, p[j]);
    } else {
      for (int j = 0; j < nx; j++) {
        v128_t v = t[clampi(u0 + j, 0, st.rw - 1)];
        if (gx->half && (j == 0 || j == nx - 1)) v = wasm_f32x4_mul(v, halfv);
        sum = wasm_f32x4_add(sum, v);
      }
    }
    acc[x] = wasm_f32x4_add(acc[x], wasm_f32x4_mul(sum, wv));
  }
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

static void write_output_row(int y) {
  const Filter *fy = &st.fy;
  int first = fy->start[y], n = fy->count[y];
  const float *w = fy->w + (u64)y * (u64)fy->taps;
  u32 *o = (u32 *)(st.out + (u64)y * (u64)st.dw * 4);
  const v128_t *rows[64];
  int nn = n > 64 ? 64 : n;
  for (int k = 0; k < nn; k++) rows[k] = st.ring + (u64)((first + k) % st.ring_n) * (u64)st.dw;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int x = 0; x < st.dw; x++) {
    v128_t acc0 = zero, acc1 = zero;
    int k = 0;
    for (; k + 1 < nn; k += 2) {
      acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(rows[k][x], wasm_f32x4_splat(w[k])));
      acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(rows[k + 1][x], wasm_f32x4_splat(w[k + 1])));
    }
    if (k < nn) acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(rows[k][x], wasm_f32x4_splat(w[k])));
    v128_t v = wasm_f32x4_add(acc0, acc1);
    if (st.alpha) {
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

/* Box row r is complete: normalise, filter into the ring, write the output rows now ready. */
static void finish_box(int r) {
  v128_t *acc = st.acc[r & 1];
  int n = st.gx.n;
  v128_t norm = wasm_f32x4_splat(1.0f / (float)(st.gx.f * st.gy.f));
  if (st.gx.f * st.gy.f != 1)
    for (int x = 0; x < n; x++) acc[x] = wasm_f32x4_mul(acc[x], norm);
  filter_row(&st.fx, acc, st.ring + (u64)(r % st.ring_n) * (u64)st.dw, st.dw);
  v128_t zero = wasm_f32x4_splat(0.0f);
  for (int x = 0; x < n; x++) acc[x] = zero;
  st.next_box = r + 1;
  while (st.next_out < st.dh && st.fy.start[st.next_out] + st.fy.count[st.next_out] <= st.next_box)
    write_output_row(st.next_out++);
}

/* Window row v, pixel u at src + (first + u * step) * 4. */
static void push_window_row(const u8 *src, i64 first, i64 step, int v) {
  if (st.exact) {
    u32 *o = (u32 *)(st.out + (u64)v * (u64)st.dw * 4);
    const u32 *p = (const u32 *)src + first;
    for (int u = 0; u < st.rw; u++, p += step) o[u] = *p;
    st.next_out = v + 1;
    return;
  }
  const Grid *gy = &st.gy;
  int ny = gy->f + gy->half;
  int rlo = floor_div(v - gy->s0 - ny + 1, gy->f), rhi = floor_div(v - gy->s0, gy->f);
  if (v == 0) rlo = 0;
  if (v == st.rh - 1) rhi = gy->n - 1;
  if (rlo < st.next_box) rlo = st.next_box;
  if (rhi > st.box_hi) rhi = st.box_hi;
  int converted = 0;
  for (int r = rlo; r <= rhi; r++) {
    /* this row's weight in box r: the box's rows, clamped to the window, that land on v */
    float weight = 0.0f;
    int y0 = gy->s0 + r * gy->f;
    for (int k = 0; k < ny; k++) {
      if (clampi(y0 + k, 0, st.rh - 1) != v) continue;
      weight += (gy->half && (k == 0 || k == ny - 1)) ? 0.5f : 1.0f;
    }
    if (weight == 0.0f) continue;
    if (!converted) {
      const u8 *p = src + first * 4;
      if (step == 1) {
        for (int u = 0; u < st.rw; u++, p += 4) st.tmp[u] = load_px(p, st.alpha);
      } else {
        for (int u = 0; u < st.rw; u++, p += step * 4) st.tmp[u] = load_px(p, st.alpha);
      }
      converted = 1;
    }
    add_box_row(st.acc[r & 1], weight);
  }
  /* boxes whose last row (clamped to the window) this was */
  while (st.next_box <= st.box_hi) {
    int r = st.next_box;
    int last = gy->s0 + r * gy->f + ny - 1;
    if (last > st.rh - 1) last = st.rh - 1;
    if (last > v) break;
    finish_box(r);
  }
}

/*
 * Starts a resampling of a rw x rh window onto dw x dh, the fractional region (x0, y0, fw, fh)
 * of the window mapped onto the output. (wx, wy): where the window lies in the rows given to
 * resize_stream_push_row. Returns 1, or 0 (resize_status(): -1 bad arguments, -5 no memory).
 */
static int stream_begin(int rw, int rh, int wx, int wy, float x0, float y0, float fw, float fh, int dw, int dh, int alpha) {
  rs_status = -1;
  st_open = 0;
  if (rw < 1 || rh < 1 || dw < 1 || dh < 1 || wx < 0 || wy < 0) return 0;
  if ((u64)dw * (u64)dh > (1ull << 28)) return 0;
  if (!(fw > 0) || !(fh > 0) || !(x0 >= 0) || !(y0 >= 0) || x0 + fw > (float)rw + 1e-3f || y0 + fh > (float)rh + 1e-3f) return 0;
  rs_status = -5;
  st.rw = rw; st.rh = rh; st.wx = wx; st.wy = wy; st.alpha = alpha != 0; st.dw = dw; st.dh = dh;
  st.pushed = 0;
  st.next_out = 0;
  st.exact = dw == rw && dh == rh && x0 == 0 && y0 == 0 && fw == (float)rw && fh == (float)rh;
  if (st.exact) {
    st.out = (u8 *)codec_arena_alloc((u64)dw * (u64)dh * 4);
    if (!st.out) return 0;
    st_open = 1;
    rs_status = 0;
    return 1;
  }
  /* integer box first, leaving the kernel at least 2x (libvips' shrink before reduce) */
  double rx = (double)fw / dw, ry = (double)fh / dh;
  make_grid(&st.gx, rw, rx >= 4.0 ? (int)(rx / 2.0) : 1);
  make_grid(&st.gy, rh, ry >= 4.0 ? (int)(ry / 2.0) : 1);
  if (!make_filter(&st.fx, st.gx.n, dw, ((double)x0 - st.gx.origin) / st.gx.f, rx / st.gx.f)) return 0;
  if (!make_filter(&st.fy, st.gy.n, dh, ((double)y0 - st.gy.origin) / st.gy.f, ry / st.gy.f)) return 0;
  st.out = (u8 *)codec_arena_alloc((u64)dw * (u64)dh * 4);
  st.tmp = (v128_t *)codec_arena_alloc((u64)rw * 16);
  st.acc[0] = (v128_t *)codec_arena_alloc((u64)st.gx.n * 16);
  st.acc[1] = (v128_t *)codec_arena_alloc((u64)st.gx.n * 16);
  st.ring_n = st.fy.taps;
  st.ring = (v128_t *)codec_arena_alloc((u64)st.ring_n * (u64)dw * 16);
  if (!st.out || !st.tmp || !st.acc[0] || !st.acc[1] || !st.ring) return 0;
  __builtin_memset(st.acc[0], 0, (u64)st.gx.n * 16);
  __builtin_memset(st.acc[1], 0, (u64)st.gx.n * 16);
  st.box_lo = st.fy.start[0];
  st.box_hi = st.fy.start[dh - 1] + st.fy.count[dh - 1] - 1;
  for (int y = 0; y < dh; y++) {
    if (st.fy.start[y] < st.box_lo) st.box_lo = st.fy.start[y];
    if (st.fy.start[y] + st.fy.count[y] - 1 > st.box_hi) st.box_hi = st.fy.start[y] + st.fy.count[y] - 1;
  }
  st.next_box = st.box_lo;
  st_open = 1;
  rs_status = 0;
  return 1;
}

EXPORT(resize_stream_begin) int resize_stream_begin(int rw, int rh, int wx, int wy, float x0, float y0, float fw, float fh, int dw, int dh, int alpha) {
  return stream_begin(rw, rh, wx, wy, x0, y0, fw, fh, dw, dh, alpha);
}

/**
 * The next row of the pushed image (RGBA8, at least wx + rw pixels; rows outside the window
 * are skipped). The row is first put through the colour transform set by colour_set_*.
 */
void resize_stream_push_row(u8 *row) {
  if (!st_open) return;
  int v = st.pushed++ - st.wy;
  if (v < 0 || v >= st.rh || st.next_out >= st.dh) return;
  colour_row(row + (u64)st.wx * 4, st.rw);
  push_window_row(row, st.wx, 1, v);
}

/** True once every output row is written (the producer may stop). */
int resize_stream_done(void) { return !st_open || st.next_out >= st.dh; }

/** The dw x dh output once every window row was pushed, else 0 (resize_status() -6). */
EXPORT(resize_stream_end) u8 *resize_stream_end(void) {
  if (!st_open) return 0;
  st_open = 0;
  if (st.next_out < st.dh) { rs_status = -6; return 0; }
  rs_status = 0;
  return st.out;
}

/**
 * Resamples a view of an RGBA8 image (sw x sh pixels at src) to dw x dh RGBA8 in this module's
 * memory and returns its pointer, or 0 (resize_status() says why: -1 bad arguments, -5 no
 * memory). Window: rw x rh pixels, (u, v) -> stored pixel base + u * su + v * sv. Region:
 * x0, y0, fw, fh within the window (fractions allowed). alpha: 1 = premultiply.
 * The window's rows are pushed through the same resampler the decoders stream into.
 */
EXPORT(resize_rgba) u8 *resize_rgba(const u8 *src, int sw, int sh, int base, int su, int sv, int rw, int rh,
                                    float x0, float y0, float fw, float fh, int dw, int dh, int alpha) {
  rs_status = -1;
  if (sw < 1 || sh < 1 || rw < 1 || rh < 1 || dw < 1 || dh < 1) return 0;
  /* every window corner must be a stored pixel (the mapping is affine, so corners suffice) */
  i64 total = (i64)sw * (i64)sh;
  for (int cy = 0; cy < 2; cy++)
    for (int cx = 0; cx < 2; cx++) {
      i64 i = (i64)base + (i64)(cx ? rw - 1 : 0) * su + (i64)(cy ? rh - 1 : 0) * sv;
      if (i < 0 || i >= total) return 0;
    }
  if (!stream_begin(rw, rh, 0, 0, x0, y0, fw, fh, dw, dh, alpha)) return 0;
  for (int v = 0; v < rh && st.next_out < st.dh; v++) push_window_row(src, (i64)base + (i64)v * sv, su, v);
  return resize_stream_end();
}
