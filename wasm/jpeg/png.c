/*
 * png.c - PNG scanlines to RGBA8 rows, streamed into the resampler (resize.c): the caller
 * inflates the IDAT data (the platform's DecompressionStream) and feeds the bytes here in any
 * pieces; each complete scanline is unfiltered against the previous one, expanded to RGBA8 and
 * pushed, so memory is two scanlines whatever the image's size. Non-interlaced images only
 * (Adam7 passes do not arrive in row order).
 *
 * Expansion as libpng/libvips do it for 8-bit output: 16-bit samples keep their high byte;
 * 1/2/4-bit grey is scaled to 0..255; palette entries (with tRNS alpha) are looked up, indices
 * past the palette are opaque black; a tRNS colour key makes matching pixels transparent.
 */
typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;

#define EXPORT(name) __attribute__((export_name(#name)))

void *codec_arena_alloc(u64 n);        /* jpeg.c */
void resize_stream_push_row(u8 *row);  /* resize.c */

enum { ST_OK = 0, ER_BAD_ARGUMENT = -1, ER_NO_MEMORY = -5, ER_CORRUPT = -6 };

static struct {
  int width, height, type, depth;
  int channels, bpp;   /* samples per pixel; bytes per complete pixel (at least 1) for the filters */
  u32 stride;          /* scanline bytes without the filter byte */
  u8 *prev, *cur;      /* scanlines, each with the filter byte first */
  u32 filled;          /* bytes of `cur` received (filter byte included) */
  int rows;            /* rows pushed */
  u8 *line;            /* RGBA8 row */
  u8 palette[256 * 4];
  int palette_n;
  int key_set;         /* tRNS colour key for grey/RGB */
  u32 key[3];
  int status;
} png;

/**
 * Starts a stream of width x height scanlines of PNG colour type `type` at bit depth `depth`.
 * palette: palette_n RGB triples; trns: the tRNS chunk's trns_n bytes (alphas for palette
 * entries, or the colour key); both may be 0. Returns 1, or 0 for a combination PNG forbids.
 */
EXPORT(png_rows_begin) int png_rows_begin(int width, int height, int type, int depth, const u8 *palette, int palette_n,
                                          const u8 *trns, int trns_n) {
  png.status = ER_BAD_ARGUMENT;
  png.rows = 0;
  png.filled = 0;
  if (width < 1 || height < 1 || width > 1000000 || height > 1000000) return 0;
  int channels;
  switch (type) {
    case 0: channels = 1; if (depth != 1 && depth != 2 && depth != 4 && depth != 8 && depth != 16) return 0; break;
    case 2: channels = 3; if (depth != 8 && depth != 16) return 0; break;
    case 3: channels = 1; if (depth != 1 && depth != 2 && depth != 4 && depth != 8) return 0; break;
    case 4: channels = 2; if (depth != 8 && depth != 16) return 0; break;
    case 6: channels = 4; if (depth != 8 && depth != 16) return 0; break;
    default: return 0;
  }
  if (palette_n < 0 || palette_n > 256 || trns_n < 0) return 0;
  png.width = width; png.height = height; png.type = type; png.depth = depth; png.channels = channels;
  u64 bits = (u64)width * (u64)channels * (u64)depth;
  png.stride = (u32)((bits + 7) / 8);
  png.bpp = (channels * depth + 7) / 8;
  png.status = ER_NO_MEMORY;
  png.prev = (u8 *)codec_arena_alloc((u64)png.stride + 1);
  png.cur = (u8 *)codec_arena_alloc((u64)png.stride + 1);
  png.line = (u8 *)codec_arena_alloc((u64)width * 4 + 64);
  if (!png.prev || !png.cur || !png.line) return 0;
  __builtin_memset(png.prev, 0, png.stride + 1);
  png.palette_n = palette_n;
  for (int i = 0; i < 256; i++) {
    int ok = i < palette_n;
    png.palette[i * 4] = ok ? palette[i * 3] : 0;
    png.palette[i * 4 + 1] = ok ? palette[i * 3 + 1] : 0;
    png.palette[i * 4 + 2] = ok ? palette[i * 3 + 2] : 0;
    png.palette[i * 4 + 3] = (type == 3 && i < trns_n) ? trns[i] : 255;
  }
  png.key_set = 0;
  if (type == 0 && trns_n >= 2) {
    png.key_set = 1;
    png.key[0] = ((u32)trns[0] << 8) | trns[1];
  } else if (type == 2 && trns_n >= 6) {
    png.key_set = 1;
    for (int c = 0; c < 3; c++) png.key[c] = ((u32)trns[c * 2] << 8) | trns[c * 2 + 1];
  }
  png.status = ST_OK;
  return 1;
}

/* The Paeth predictor (PNG specification, W3C PNG / ISO/IEC 15948, section 9.4 "Filter type 4:
 * Paeth", after Alan W. Paeth): of a (left), b (above) and c (upper left), the one nearest to
 * a + b - c, ties going to a, then b. */
static inline int paeth(int a, int b, int c) {
  int p = a + b - c;
  int pa = p > a ? p - a : a - p, pb = p > b ? p - b : b - p, pc = p > c ? p - c : c - p;
  return (pa <= pb && pa <= pc) ? a : pb <= pc ? b : c;
}

/* Undo the scanline's filter in place (cur[1..]) against prev; 0 for an unknown filter type.
 * The filters are those of the PNG specification (W3C PNG / ISO/IEC 15948) sections 9.2-9.4:
 * 9.2 the five types of filter method 0 (None, Sub, Up, Average, Paeth), each adding back, modulo
 * 256, a prediction from a, the byte bpp before (0 before the line starts), b, the byte above,
 * and c, the byte bpp before b; 9.3 Average, floor((a + b) / 2) taken without overflow; 9.4
 * Paeth (above). */
static int unfilter(void) {
  u8 *x = png.cur + 1;
  const u8 *b = png.prev + 1;
  u32 n = png.stride, bpp = (u32)png.bpp;
  switch (png.cur[0]) {
    case 0: break;
    case 1: for (u32 i = bpp; i < n; i++) x[i] = (u8)(x[i] + x[i - bpp]); break;
    case 2: for (u32 i = 0; i < n; i++) x[i] = (u8)(x[i] + b[i]); break;
    case 3:
      for (u32 i = 0; i < bpp && i < n; i++) x[i] = (u8)(x[i] + (b[i] >> 1));
      for (u32 i = bpp; i < n; i++) x[i] = (u8)(x[i] + ((x[i - bpp] + b[i]) >> 1));
      break;
    case 4:
      for (u32 i = 0; i < bpp && i < n; i++) x[i] = (u8)(x[i] + b[i]);
      for (u32 i = bpp; i < n; i++) x[i] = (u8)(x[i] + paeth(x[i - bpp], b[i], b[i - bpp]));
      break;
    default: return 0;
  }
  return 1;
}

/* One unfiltered scanline -> RGBA8 in png.line. */
static void expand(void) {
  const u8 *s = png.cur + 1;
  u8 *d = png.line;
  int w = png.width, depth = png.depth;
  switch (png.type) {
    case 0:
      if (depth == 16) {
        for (int x = 0; x < w; x++, d += 4) {
          u32 v = ((u32)s[x * 2] << 8) | s[x * 2 + 1];
          d[0] = d[1] = d[2] = s[x * 2];
          d[3] = png.key_set && v == png.key[0] ? 0 : 255;
        }
      } else {
        u32 max = (1u << depth) - 1;
        for (int x = 0; x < w; x++, d += 4) {
          u32 v = depth == 8 ? s[x] : (s[(x * depth) >> 3] >> (8 - depth - ((x * depth) & 7))) & max;
          d[0] = d[1] = d[2] = (u8)(v * 255 / max);
          d[3] = png.key_set && v == png.key[0] ? 0 : 255;
        }
      }
      break;
    case 2:
      for (int x = 0; x < w; x++, d += 4) {
        if (depth == 16) {
          const u8 *p = s + x * 6;
          d[0] = p[0]; d[1] = p[2]; d[2] = p[4];
          d[3] = png.key_set && (((u32)p[0] << 8) | p[1]) == png.key[0] && (((u32)p[2] << 8) | p[3]) == png.key[1] &&
                         (((u32)p[4] << 8) | p[5]) == png.key[2] ? 0 : 255;
        } else {
          const u8 *p = s + x * 3;
          d[0] = p[0]; d[1] = p[1]; d[2] = p[2];
          d[3] = png.key_set && p[0] == png.key[0] && p[1] == png.key[1] && p[2] == png.key[2] ? 0 : 255;
        }
      }
      break;
    case 3: {
      u32 mask = (1u << depth) - 1;
      for (int x = 0; x < w; x++, d += 4) {
        u32 i = depth == 8 ? s[x] : (s[(x * depth) >> 3] >> (8 - depth - ((x * depth) & 7))) & mask;
        const u8 *p = png.palette + i * 4;
        if ((int)i >= png.palette_n) { d[0] = d[1] = d[2] = 0; d[3] = 255; continue; }
        d[0] = p[0]; d[1] = p[1]; d[2] = p[2]; d[3] = p[3];
      }
      break;
    }
    case 4:
      for (int x = 0; x < w; x++, d += 4) {
        const u8 *p = depth == 16 ? s + x * 4 : s + x * 2;
        d[0] = d[1] = d[2] = p[0];
        d[3] = depth == 16 ? p[2] : p[1];
      }
      break;
    case 6:
      if (depth == 8) {
        __builtin_memcpy(d, s, (u64)w * 4);
      } else {
        for (int x = 0; x < w; x++, d += 4) {
          const u8 *p = s + x * 8;
          d[0] = p[0]; d[1] = p[2]; d[2] = p[4]; d[3] = p[6];
        }
      }
      break;
  }
}

/**
 * Feeds len inflated bytes. Returns the rows pushed so far, or a negative status (-6 for an
 * unknown filter type). Bytes past the last scanline are ignored.
 */
EXPORT(png_rows_feed) int png_rows_feed(const u8 *data, u32 len) {
  if (png.status != ST_OK) return png.status;
  u32 full = png.stride + 1;
  while (len > 0 && png.rows < png.height) {
    u32 take = full - png.filled;
    if (take > len) take = len;
    __builtin_memcpy(png.cur + png.filled, data, take);
    png.filled += take;
    data += take;
    len -= take;
    if (png.filled < full) break;
    if (!unfilter()) return png.status = ER_CORRUPT;
    expand();
    resize_stream_push_row(png.line);
    u8 *t = png.prev; png.prev = png.cur; png.cur = t;
    png.filled = 0;
    png.rows++;
  }
  return png.rows;
}
