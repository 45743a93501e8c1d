/*
 * jpeg.c - a freestanding JPEG decoder for wasm32, written for this project from ITU T.81 (with
 * T.871 for JFIF's YCbCr and Adobe's APP14 marker for the colour transform).
 *
 * Decodes: baseline and extended sequential Huffman (SOF0, SOF1) and progressive Huffman (SOF2)
 * frames of 8-bit samples with 1, 3 or 4 components; sampling factors 1..4 where each
 * component's ratio to the largest factor is a power of two; restart intervals; colour as grey,
 * YCbCr, RGB, CMYK or YCCK (Adobe APP14 transform, else JFIF / component ids). Anything else
 * (arithmetic coding, lossless, hierarchical, 12-bit, 2 components, other sampling ratios, DNL,
 * 4 components without APP14) is refused with a reason (jpeg_unsupported_reason) so that the
 * caller can use another decoder.
 *
 * Shrink-on-load: at scale 1/2^s (s = 0..3) each block's IDCT is computed at 8 >> s points per
 * axis from the top-left coefficients only (at up to 8 for subsampled components, which then
 * need less upsampling). Upsampling by 2 across and/or down interpolates linearly (not at 1/8
 * scale); other factors replicate samples.
 *
 * Output: RGBA8 (or, with flag bit 1, the C, M, Y, K ink amounts of a 4-component file), width
 * ceil(W / 2^s), height ceil(H / 2^s), either into one buffer (jpeg_decode) or row by row into
 * the resampler of resize.c (jpeg_decode_stream). No EXIF orientation, no ICC profile (colour.c
 * applies profiles to the rows).
 *
 * Memory: a bump arena over the module's own linear memory; reset() rewinds it so one
 * instance reuses the same pages for every decode (WASM memory never shrinks).
 * Sequential files whose first scan holds every component are decoded MCU row by MCU row
 * straight into the output rows (work buffers are three MCU rows per component). Other files
 * (progressive, multi-scan sequential) keep per block only the coefficients the chosen scale
 * reads (kc x kc int16) and a 64-bit mask of its nonzero AC coefficients (refinement scans
 * need it for the coefficients the scale discards).
 *
 * Safety: every read of the input is bounds-checked, Huffman tables are checked before they are
 * built, table indexes are masked or checked, every loop is bounded by the frame geometry, the
 * input length or a fixed count (at most 300 scans). Corrupt or missing entropy data sets
 * jpeg_status() to ST_WARN_CORRUPT (an error in strict mode, flag bit 0). When a scan's data
 * runs out early, its remaining blocks are filled in up to the next restart marker, if any,
 * where decoding resumes: sequential blocks repeat the last DC value, progressive ones keep
 * what earlier scans gave. No imports; no libc (memset and memcpy are defined here).
 */
#include <wasm_simd128.h>

typedef unsigned char u8;
typedef signed short i16;
typedef unsigned short u16;
typedef int i32;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;
typedef __SIZE_TYPE__ size_t;

#define EXPORT(name) __attribute__((export_name(#name)))

/* ---------------------------------------------------------------- status codes */
enum {
  ST_OK = 0,
  ST_WARN_CORRUPT = 1,      /* decoded, but entropy data was truncated or corrupt */
  ER_NOT_JPEG = -1,
  ER_TRUNCATED = -2,        /* headers or scan data missing */
  ER_BAD_HEADER = -3,       /* malformed marker segment / tables */
  ER_UNSUPPORTED = -4,      /* use the fallback decoder */
  ER_NO_MEMORY = -5,
  ER_CORRUPT_DATA = -6,     /* entropy-coded data invalid (strict mode) */
  ER_TOO_LARGE = -7,
  ER_BAD_ARGUMENT = -8,
};

/* reasons a file is not supported (jpeg_unsupported_reason) */
enum {
  UR_NONE = 0, UR_ARITHMETIC = 1, UR_LOSSLESS_OR_HIERARCHICAL = 2, UR_PRECISION = 3,
  UR_SAMPLING = 4, UR_COMPONENTS = 5, UR_DNL = 6, UR_CMYK_NO_ADOBE = 7, UR_NO_FRAME = 8,
};

/* colour transforms (jpeg_color) */
enum { CS_GRAY = 0, CS_YCBCR = 1, CS_RGB = 2, CS_CMYK = 3, CS_YCCK = 4 };

/* ---------------------------------------------------------------- memory */
extern u8 __heap_base;
static size_t heap_top;

void *memset(void *d, int c, size_t n) {
  u8 *p = (u8 *)d;
  while (n--) *p++ = (u8)c;
  return d;
}
void *memcpy(void *d, const void *s, size_t n) {
  u8 *p = (u8 *)d;
  const u8 *q = (const u8 *)s;
  while (n--) *p++ = *q++;
  return d;
}

static size_t heap_base(void) { return ((size_t)&__heap_base + 15) & ~(size_t)15; }

static int ensure_memory(u64 end) {
  if (end > 0xFFFF0000ull) return 0;
  u64 have = (u64)__builtin_wasm_memory_size(0) * 65536ull;
  if (end <= have) return 1;
  u64 pages = (end - have + 65535ull) / 65536ull;
  return __builtin_wasm_memory_grow(0, (size_t)pages) != (size_t)-1;
}

static void *arena_alloc(u64 n) {
  if (heap_top == 0) heap_top = heap_base();
  u64 start = ((u64)heap_top + 15ull) & ~15ull;
  u64 end = start + n;
  if (n > 0x7FFFFFFFull || !ensure_memory(end)) return 0;
  heap_top = (size_t)end;
  return (void *)(size_t)start;
}

static void *arena_calloc(u64 n) {
  void *p = arena_alloc(n);
  if (p) __builtin_memset(p, 0, (size_t)n);
  return p;
}

void colour_clear(void);           /* colour.c */
void resize_stream_push_row(u8 *row); /* resize.c */

/** The arena for the other parts of the module (resize.c). */
void *codec_arena_alloc(u64 n) { return arena_alloc(n); }

/** Allocate n bytes in the arena (16-byte aligned); 0 when memory cannot grow. */
EXPORT(alloc) void *wasm_alloc(u32 n) { return arena_alloc(n); }
/** Free everything allocated since the last reset (the pages stay with the instance). */
EXPORT(reset) void wasm_reset(void) {
  heap_top = heap_base();
  colour_clear(); /* its tables lived in the arena */
}
/** Current arena high point (bytes), for diagnostics. */
EXPORT(arena_top) u32 wasm_arena_top(void) { return (u32)heap_top; }

/* ---------------------------------------------------------------- tables */
static u8 zz[80];      /* zigzag position -> natural index; 64..79 alias 63 */
static int zz_ready;

static void init_tables(void) {
  if (zz_ready) return;
  int i = 0;
  for (int s = 0; s < 15; s++) {
    int lo = s < 8 ? 0 : s - 7, hi = s < 8 ? s : 7;
    if (s & 1) for (int r = lo; r <= hi; r++) zz[i++] = (u8)(r * 8 + (s - r));
    else for (int r = hi; r >= lo; r--) zz[i++] = (u8)(r * 8 + (s - r));
  }
  for (; i < 80; i++) zz[i] = 63;
  zz_ready = 1;
}

/* Huffman tables (T.81 Annex C). A DHT segment gives, for each code length L = 1..16, how many
 * codes have that length (BITS) and the symbols in order of increasing code (HUFFVAL). The
 * codes are canonical (Annex C, Figures C.1 and C.2): the codes of one length are consecutive
 * integers, the first code of length 1 is 0, and the first code of length L+1 is (first code
 * of length L + number of codes of length L) << 1. Our decoding structure (see huff_symbol):
 *   - peek[]: indexed by the next PEEK_BITS bits of the stream; every code of at most PEEK_BITS
 *     bits owns the 2^(PEEK_BITS - L) entries that begin with it, which hold its length and
 *     symbol. In AC tables an entry also holds the coefficient itself when the code and the
 *     S extra bits that follow it (F.1.2.2.1, F.2.2.2) both lie within the PEEK_BITS bits.
 *   - longer codes are found per length from the canonical numbering: the next L bits are a
 *     code of length L exactly when code - first[L] < count[L], and its symbol is
 *     sym[index[L] + code - first[L]]. */
#define PEEK_BITS 9
#define PEEK_SYMBOL(e) ((int)((e) & 255))           /* the decoded symbol */
#define PEEK_CODE_LEN(e) ((int)(((e) >> 8) & 15))   /* bits of the code (0: not in peek[]) */
#define PEEK_FULL_LEN(e) ((int)(((e) >> 12) & 15))  /* code + extra bits, when resolved, else 0 */
#define PEEK_VALUE(e) ((i32)(e) >> 16)              /* the resolved coefficient */
typedef struct {
  u32 peek[1 << PEEK_BITS];
  u32 first[17];      /* smallest code of length L */
  u32 count[17];      /* number of codes of length L */
  u32 index[17];      /* position in sym[] of the symbol whose code is first[L] */
  u8 sym[256];
  int defined;
} Huff;

typedef struct {
  int id, h, v, tq;
  int td, ta;
  int pred;
  int bw, bh;          /* blocks per row / column, padded to whole MCUs */
  int sbw, sbh;        /* blocks covering the component alone (non-interleaved scans) */
  int kc;              /* IDCT size for this component (1, 2, 4, 8) */
  int rh, rv;          /* upsampling ratio from the IDCT output to the output image */
  int cw, ch;          /* valid samples after the IDCT */
  int stride;          /* row-buffer stride (bytes) */
  int grows;           /* sample rows per MCU row = v * kc */
  u8 *rowbuf[3];       /* ring of MCU-row buffers */
  i16 *coef;           /* buffered mode: kc*kc coefficients per block */
  u64 *nz;             /* buffered mode with kc < 8: nonzero mask per block (zigzag order) */
  int ncoef;
  u8 *up;              /* one upsampled output row */
  i16 *tbuf;           /* interpolation work row (cw + 32 entries) */
  const u8 *zmap;      /* zigzag index -> stored slot (255 = not stored) */
} Comp;

/* ---------------------------------------------------------------- decoder state */
static const u8 *src;
static u32 src_len, pos;
static u64 bitbuf;
static int bitcnt;
static int marker_hit, hit_eof;
static u32 pad_bytes;
static int corrupt;     /* entropy data was invalid or ran out */
static int dead;        /* no more entropy data for this scan: skip decoding */

static Huff hdc[4], hac[4];
static u16 qt[4][64];   /* natural order */
static int qt_defined[4];
static Comp comp[4];
static int ncomp, width, height, progressive, frame_seen, frame_type;
static int hmax, vmax, mcusx, mcusy;
static int restart_interval;
static int adobe, adobe_transform, jfif;
static int unsupported;
static int color;
static int status;

static int scale_shift, kout;         /* k = 8 >> shift */
static int out_w, out_h;
static u8 *out;
static int eobrun;
static int last_group;                /* last MCU row decoded into the row buffers */
static int strict;
static int raw_cmyk; /* jpeg_decode flags bit 1 */
static int scans;
static u8 zmaps[4][64];               /* for kc = 1, 2, 4, 8 */

/* ---------------------------------------------------------------- bit reader */
static void fill(void) {
  if (!marker_hit && pos + 8 <= src_len) {
    u64 w;
    __builtin_memcpy(&w, src + pos, 8);
    w = __builtin_bswap64(w);
    /* Fast path when none of the eight bytes is 0xFF (no stuffing or marker to handle): an
     * 0xFF byte is a zero byte of ~w, and (x - 0x01..) & ~x & 0x80.. is non-zero exactly when
     * x has a zero byte (the "determine if a word has a zero byte" test of Sean Eron Anderson's
     * Bit Twiddling Hacks, after Alan Mycroft). */
    u64 x = ~w;
    if (((x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull) == 0) {
      int n = (64 - bitcnt) >> 3;
      u64 keep = ~0ull << (64 - bitcnt - 8 * n);
      bitbuf |= (bitcnt ? (w >> bitcnt) : w) & keep;
      bitcnt += 8 * n;
      pos += (u32)n;
      return;
    }
  }
  while (bitcnt <= 56) {
    u32 b;
    if (marker_hit || pos >= src_len) {
      b = 0;
      pad_bytes++;
      if (!marker_hit) hit_eof = 1;
    } else {
      b = src[pos];
      if (b == 0xFF) {
        if (pos + 1 < src_len && src[pos + 1] == 0) pos += 2;
        else if (pos + 1 >= src_len) { pos = src_len; b = 0; pad_bytes++; hit_eof = 1; }
        else { marker_hit = 1; b = 0; pad_bytes++; }
      } else {
        pos++;
      }
    }
    bitbuf |= (u64)b << (56 - bitcnt);
    bitcnt += 8;
  }
}

static inline u32 get_bits(int n) { /* n in 1..16; the caller has made sure bitcnt >= n */
  u32 v = (u32)(bitbuf >> (64 - n));
  bitbuf <<= n;
  bitcnt -= n;
  return v;
}

static inline int get_bit(void) {
  if (bitcnt < 1) fill();
  int v = (int)(bitbuf >> 63);
  bitbuf <<= 1;
  bitcnt -= 1;
  return v;
}

static inline int extend(u32 v, int s) {
  return (s == 0) ? 0 : (v < (1u << (s - 1)) ? (int)v - (1 << s) + 1 : (int)v);
}

static inline int receive_extend(int s) { /* s in 0..16 */
  if (s == 0) return 0;
  if (bitcnt < s) fill();
  return extend(get_bits(s), s);
}

static inline void drop_bits(int n) {
  bitbuf <<= n;
  bitcnt -= n;
}

/* A code longer than PEEK_BITS: try each length in turn (our form of T.81 F.2.2.3, Figure
 * F.16). Reads at most 16 bits; a bit string that is no code of the table is corrupt data, and
 * 16 bits are dropped so that the caller always makes progress. */
static int huff_long(const Huff *h) {
  for (int len = PEEK_BITS + 1; len <= 16; len++) {
    u32 offset = (u32)(bitbuf >> (64 - len)) - h->first[len];
    if (offset < h->count[len]) {
      drop_bits(len);
      return h->sym[(h->index[len] + offset) & 255];
    }
  }
  corrupt = 1;
  drop_bits(16);
  return 0;
}

/* The next Huffman-coded symbol (T.81 F.2.2.3). */
static inline int huff_symbol(const Huff *h) {
  if (bitcnt < 16) fill();
  u32 e = h->peek[bitbuf >> (64 - PEEK_BITS)];
  if (e) {
    drop_bits(PEEK_CODE_LEN(e));
    return PEEK_SYMBOL(e);
  }
  return huff_long(h);
}

/* One AC step (T.81 F.2.2.2: the symbol RS = run << 4 | size, then `size` extra bits that
 * EXTEND turns into the coefficient). Returns RS; *value is set when size > 0. The extra bits
 * are read even when the run then passes the end of the block (corrupt data). */
static inline int ac_symbol(const Huff *h, int *value) {
  if (bitcnt < 32) fill(); /* a code (<= 16 bits) and its extra bits (<= 15) */
  u32 e = h->peek[bitbuf >> (64 - PEEK_BITS)];
  if (PEEK_FULL_LEN(e)) {
    drop_bits(PEEK_FULL_LEN(e));
    *value = PEEK_VALUE(e);
    return PEEK_SYMBOL(e);
  }
  int rs;
  if (e) {
    drop_bits(PEEK_CODE_LEN(e));
    rs = PEEK_SYMBOL(e);
  } else {
    rs = huff_long(h);
  }
  int size = rs & 15;
  if (size) *value = extend(get_bits(size), size);
  return rs;
}

/* A DC difference (T.81 F.2.2.1): the symbol is the size of the difference, EXTEND of that many
 * following bits its value. Sizes above 16 are corrupt data (read as 0). */
static inline int dc_diff(const Huff *h) {
  int size = huff_symbol(h);
  if (size > 16) { corrupt = 1; size = 0; }
  return receive_extend(size);
}

static void reset_bits(void) {
  bitbuf = 0;
  bitcnt = 0;
  marker_hit = 0;
  hit_eof = 0;
  pad_bytes = 0;
}

/* bits consumed past the end of the real data? */
static inline int consumed_padding(void) { return (i64)pad_bytes * 8 > (i64)bitcnt; }

static int at_rst_marker(void) {
  u32 p = pos;
  while (p + 1 < src_len && src[p] == 0xFF && src[p + 1] == 0xFF) p++;
  return p + 1 < src_len && src[p] == 0xFF && src[p + 1] >= 0xD0 && src[p + 1] <= 0xD7;
}

/* called once per MCU: stop decoding a scan that has run out of data */
static inline void check_dead(void) {
  if (!dead && consumed_padding()) {
    corrupt = 1;
    if (hit_eof || !at_rst_marker()) dead = 1;
  }
}

static void process_restart(void) {
  if (consumed_padding()) corrupt = 1;
  /* find the next marker from where the reader stopped */
  u32 p = pos;
  if (!marker_hit) {
    while (p + 1 < src_len && !(src[p] == 0xFF && src[p + 1] != 0 && src[p + 1] != 0xFF)) p++;
  } else {
    while (p + 1 < src_len && src[p] == 0xFF && src[p + 1] == 0xFF) p++;
  }
  reset_bits();
  dead = 0;
  if (p + 1 < src_len && src[p] == 0xFF && src[p + 1] >= 0xD0 && src[p + 1] <= 0xD7) {
    pos = p + 2;
  } else {
    /* another marker (or the end): no data until it */
    pos = p;
    if (p + 1 >= src_len) pos = src_len;
    else marker_hit = 1;
    corrupt = 1;
  }
  for (int i = 0; i < ncomp; i++) comp[i].pred = 0;
  eobrun = 0;
}

/* ---------------------------------------------------------------- header parsing */
static inline u32 be16(u32 p) { return ((u32)src[p] << 8) | src[p + 1]; }

/* Builds the tables of one DHT entry; 0 if more codes are given than their lengths allow. */
static int build_huff(Huff *h, const u8 *counts, const u8 *symbols, int total, int is_ac) {
  __builtin_memset(h, 0, sizeof(Huff));
  for (int i = 0; i < total; i++) h->sym[i] = symbols[i];
  u32 code = 0, at = 0; /* the next code to assign (Figure C.2), and its symbol's position */
  for (int len = 1; len <= 16; len++) {
    u32 n = counts[len - 1];
    if (code + n > (1u << len)) return 0; /* checked before any of these codes is stored */
    h->first[len] = code;
    h->count[len] = n;
    h->index[len] = at;
    for (u32 i = 0; len <= PEEK_BITS && i < n; i++) {
      u32 symbol = h->sym[at + i], size = symbol & 15;
      u32 spare = (u32)(PEEK_BITS - len), lo = (code + i) << spare;
      for (u32 tail = 0; tail < (1u << spare); tail++) {
        u32 e = symbol | (u32)len << 8;
        if (is_ac && size && size <= spare) {
          u32 extra = tail >> (spare - size);
          e |= ((u32)len + size) << 12 | (u32)extend(extra, (int)size) << 16;
        }
        h->peek[lo + tail] = e;
      }
    }
    code = (code + n) << 1;
    at += n;
  }
  h->defined = 1;
  return 1;
}

static int parse_dht(u32 p, u32 end) {
  while (p < end) {
    if (p + 17 > end) return 0;
    int tc = src[p] >> 4, th = src[p] & 15;
    if (tc > 1 || th > 3) return 0;
    const u8 *counts = src + p + 1;
    int total = 0;
    for (int i = 0; i < 16; i++) total += counts[i];
    if (total > 256 || p + 17 + (u32)total > end) return 0;
    if (!build_huff(tc ? &hac[th] : &hdc[th], counts, src + p + 17, total, tc)) return 0;
    p += 17 + (u32)total;
  }
  return 1;
}

static int parse_dqt(u32 p, u32 end) {
  while (p < end) {
    int pq = src[p] >> 4, tq = src[p] & 15;
    if (pq > 1 || tq > 3) return 0;
    u32 n = pq ? 128 : 64;
    if (p + 1 + n > end) return 0;
    for (int i = 0; i < 64; i++) {
      u32 v = pq ? be16(p + 1 + 2 * (u32)i) : src[p + 1 + (u32)i];
      if (v == 0) v = 1;
      if (v > 32767) v = 32767;
      qt[tq][zz[i]] = (u16)v;
    }
    qt_defined[tq] = 1;
    p += 1 + n;
  }
  return 1;
}

static int parse_sof(u32 p, u32 end, int marker) {
  if (frame_seen) return 0;
  if (end - p < 6) return 0;
  int precision = src[p];
  height = (int)be16(p + 1);
  width = (int)be16(p + 3);
  ncomp = src[p + 5];
  frame_seen = 1;
  frame_type = marker;
  progressive = marker == 0xC2;
  if (ncomp < 1 || ncomp > 4 || end - p < 6 + 3 * (u32)ncomp) {
    if (ncomp == 0 || end - p < 6 + 3 * (u32)(ncomp > 4 ? 4 : ncomp)) return 0;
    unsupported = UR_COMPONENTS;
    ncomp = 0;
    return 1;
  }
  if (precision != 8 && !unsupported) unsupported = UR_PRECISION;
  if (width == 0) return 0;
  if (height == 0 && !unsupported) unsupported = UR_DNL;
  if (ncomp == 2 && !unsupported) unsupported = UR_COMPONENTS;
  hmax = vmax = 1;
  for (int i = 0; i < ncomp; i++) {
    Comp *c = &comp[i];
    __builtin_memset(c, 0, sizeof(Comp));
    c->id = src[p + 6 + 3 * i];
    c->h = src[p + 7 + 3 * i] >> 4;
    c->v = src[p + 7 + 3 * i] & 15;
    c->tq = src[p + 8 + 3 * i];
    if (c->h < 1 || c->h > 4 || c->v < 1 || c->v > 4 || c->tq > 3) return 0;
    if (c->h > hmax) hmax = c->h;
    if (c->v > vmax) vmax = c->v;
  }
  if (ncomp == 1) { comp[0].h = comp[0].v = 1; hmax = vmax = 1; }
  for (int i = 0; i < ncomp; i++) {
    int rh = hmax / comp[i].h, rv = vmax / comp[i].v;
    if (hmax % comp[i].h || vmax % comp[i].v || (rh & (rh - 1)) || (rv & (rv - 1))) {
      if (!unsupported) unsupported = UR_SAMPLING;
    }
  }
  return 1;
}

static void parse_app14(u32 p, u32 end) {
  if (end - p >= 12 && src[p] == 'A' && src[p + 1] == 'd' && src[p + 2] == 'o' && src[p + 3] == 'b' &&
      src[p + 4] == 'e') {
    adobe = 1;
    adobe_transform = src[p + 11];
  }
}

static void parse_app0(u32 p, u32 end) {
  if (end - p >= 5 && src[p] == 'J' && src[p + 1] == 'F' && src[p + 2] == 'I' && src[p + 3] == 'F' && src[p + 4] == 0)
    jfif = 1;
}

static void decide_color(void) {
  if (ncomp == 1) color = CS_GRAY;
  else if (ncomp == 3) {
    if (adobe) color = adobe_transform == 0 ? CS_RGB : CS_YCBCR;
    else if (jfif) color = CS_YCBCR;
    else if (comp[0].id == 'R' && comp[1].id == 'G' && comp[2].id == 'B') color = CS_RGB;
    else color = CS_YCBCR;
  } else if (ncomp == 4) {
    if (!adobe) { if (!unsupported) unsupported = UR_CMYK_NO_ADOBE; color = CS_CMYK; }
    else color = adobe_transform == 2 ? CS_YCCK : CS_CMYK;
  }
}

static void reset_state(const u8 *data, u32 len) {
  init_tables();
  src = data;
  src_len = len;
  pos = 0;
  reset_bits();
  corrupt = dead = 0;
  for (int i = 0; i < 4; i++) { hdc[i].defined = hac[i].defined = 0; qt_defined[i] = 0; }
  ncomp = width = height = progressive = frame_seen = frame_type = 0;
  restart_interval = 0;
  adobe = adobe_transform = jfif = 0;
  unsupported = UR_NONE;
  color = 0;
  out = 0;
  out_w = out_h = 0;
  eobrun = 0;
  scans = 0;
}

/* Position of the next marker code byte at or after p (skips entropy data); src_len if none. */
static u32 next_marker(u32 p) {
  while (p + 1 < src_len) {
    if (src[p] == 0xFF) {
      u8 m = src[p + 1];
      if (m != 0 && m != 0xFF && !(m >= 0xD0 && m <= 0xD7)) return p + 1;
      p += (m == 0xFF) ? 1 : 2;
    } else {
      p++;
    }
  }
  return src_len;
}

/* Reads marker segments from pos until SOS (returns 1, pos after the SOS header, scan info
 * in sos_*), EOI (returns 0) or an error (<0). */
static int sos_ns, sos_ss, sos_se, sos_ah, sos_al, sos_comp[4];

static int read_markers(void) {
  for (;;) {
    /* find 0xFF */
    while (pos < src_len && src[pos] != 0xFF) pos++;
    while (pos < src_len && src[pos] == 0xFF) pos++;
    if (pos >= src_len) return ER_TRUNCATED;
    int m = src[pos++];
    if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;
    if (m == 0xD9) return 0;
    if (pos + 2 > src_len) return ER_TRUNCATED;
    u32 seglen = be16(pos);
    if (seglen < 2) return ER_BAD_HEADER;
    u32 p = pos + 2, end = pos + seglen;
    if (end > src_len) return ER_TRUNCATED; /* a segment cut off, whatever its kind */
    switch (m) {
      case 0xC0: case 0xC1: case 0xC2:
        if (!parse_sof(p, end, m)) return ER_BAD_HEADER;
        break;
      case 0xC3: case 0xC5: case 0xC6: case 0xC7: case 0xCB: case 0xCD: case 0xCE: case 0xCF:
        if (!frame_seen) { frame_seen = 1; frame_type = m; if (end - p >= 5) { height = (int)be16(p + 1); width = (int)be16(p + 3); ncomp = src[p + 5] <= 4 ? src[p + 5] : 0; } }
        unsupported = UR_LOSSLESS_OR_HIERARCHICAL;
        if (m == 0xCB || m == 0xCD || m == 0xCE || m == 0xCF) unsupported = UR_ARITHMETIC;
        break;
      case 0xC9: case 0xCA:
        if (!frame_seen) { frame_seen = 1; frame_type = m; if (end - p >= 5) { height = (int)be16(p + 1); width = (int)be16(p + 3); ncomp = src[p + 5] <= 4 ? src[p + 5] : 0; } }
        unsupported = UR_ARITHMETIC;
        break;
      case 0xCC:
        unsupported = UR_ARITHMETIC;
        break;
      case 0xC4:
        if (!parse_dht(p, end)) return ER_BAD_HEADER;
        break;
      case 0xDB:
        if (!parse_dqt(p, end)) return ER_BAD_HEADER;
        break;
      case 0xDD:
        if (end - p < 2) return ER_BAD_HEADER;
        restart_interval = (int)be16(p);
        break;
      case 0xE0:
        parse_app0(p, end);
        break;
      case 0xEE:
        parse_app14(p, end);
        break;
      case 0xDC: /* DNL */
        if (!unsupported) unsupported = UR_DNL;
        break;
      case 0xDA: {
        if (end - p < 1) return ER_BAD_HEADER;
        int ns = src[p];
        if (ns < 1 || ns > 4 || end - p < 4 + 2 * (u32)ns) return ER_BAD_HEADER;
        sos_ns = ns;
        for (int i = 0; i < ns; i++) {
          int cid = src[p + 1 + 2 * i], t = src[p + 2 + 2 * i];
          int ci = -1;
          for (int j = 0; j < ncomp; j++) if (comp[j].id == cid) { ci = j; break; }
          if (ci < 0) return ER_BAD_HEADER;
          for (int j = 0; j < i; j++) if (sos_comp[j] == ci) return ER_BAD_HEADER;
          sos_comp[i] = ci;
          comp[ci].td = t >> 4;
          comp[ci].ta = t & 15;
          if (comp[ci].td > 3 || comp[ci].ta > 3) return ER_BAD_HEADER;
        }
        u32 q = p + 1 + 2 * (u32)ns;
        sos_ss = src[q];
        sos_se = src[q + 1];
        sos_ah = src[q + 2] >> 4;
        sos_al = src[q + 2] & 15;
        pos = end;
        return 1;
      }
      default:
        break;
    }
    pos = end;
  }
}

/* ---------------------------------------------------------------- header API */
EXPORT(jpeg_header) int jpeg_header(const u8 *data, u32 len) {
  reset_state(data, len);
  if (len < 4 || data[0] != 0xFF || data[1] != 0xD8) return ER_NOT_JPEG;
  pos = 2;
  int r = read_markers();
  if (r == 1 && !frame_seen) r = ER_BAD_HEADER; /* a SOS before the frame header */
  if (!frame_seen) { if (!unsupported) unsupported = UR_NO_FRAME; return (r < 0 ? r : ER_TRUNCATED); }
  decide_color();
  if (r == 1) return ST_OK;
  /* frame known, no scan: probe succeeds, decode will fail */
  return (r < 0 && r != ER_TRUNCATED) ? r : ST_OK;
}
EXPORT(jpeg_width) int jpeg_width(void) { return width; }
EXPORT(jpeg_height) int jpeg_height(void) { return height; }
EXPORT(jpeg_components) int jpeg_components(void) { return ncomp; }
EXPORT(jpeg_progressive) int jpeg_progressive(void) { return progressive; }
EXPORT(jpeg_color) int jpeg_color(void) { return color; }
EXPORT(jpeg_frame_type) int jpeg_frame_type(void) { return frame_type; }
EXPORT(jpeg_unsupported_reason) int jpeg_unsupported_reason(void) { return unsupported; }
EXPORT(jpeg_status) int jpeg_status(void) { return status; }
EXPORT(jpeg_out_width) int jpeg_out_width(void) { return out_w; }
EXPORT(jpeg_out_height) int jpeg_out_height(void) { return out_h; }
EXPORT(jpeg_sampling) int jpeg_sampling(void) {
  int r = 0;
  for (int i = 0; i < ncomp && i < 4; i++) r |= ((comp[i].h << 4) | comp[i].v) << (8 * i);
  return r;
}

/* ---------------------------------------------------------------- IDCT
 * T.81 A.3.3: s(y,x) = 1/4 sum_u sum_v C(u) C(v) S(v,u) cos((2x+1)u pi/16) cos((2y+1)v pi/16),
 * C(0) = 1/sqrt(2), C(u) = 1 otherwise. It is separable: an 8-point pass down the columns, then
 * one along the rows, with the 1/4 applied to the input. One pass, f(x) = sum_u C(u) F(u)
 * cos((2x+1)u pi/16) for x = 0..7, is split into even and odd u: since
 * cos((2(7-x)+1)u pi/16) = cos(u pi - (2x+1)u pi/16) = (-1)^u cos((2x+1)u pi/16),
 *   f(x) = e(x) + o(x),  f(7-x) = e(x) - o(x)   (x = 0..3),
 * e summing the even u, o the odd u. With ck = cos(k pi/16) (so C(0) = c4):
 *   e is a 4-point transform of F0, F2, F4, F6, split again the same way: a0 = (F0 + F4) c4,
 *   a1 = (F0 - F4) c4, b0 = F2 c2 + F6 c6, b1 = F2 c6 - F6 c2; e(0) = a0 + b0, e(3) = a0 - b0,
 *   e(1) = a1 + b1, e(2) = a1 - b1;
 *   o(x) = sum over u = 1, 3, 5, 7 of F(u) cos((2x+1)u pi/16), each cosine reducing to
 *   +-c1, c3, c5 or c7 (e.g. o(1) = F1 c3 - F3 c7 - F5 c1 - F7 c5).
 * idct1d_v runs this pass on four columns at once. */
#define C1 0.98078528040323044913f
#define C2 0.92387953251128675613f
#define C3 0.83146961230254523708f
#define C4 0.70710678118654752440f
#define C5 0.55557023301960222474f
#define C6 0.38268343236508977173f
#define C7 0.19509032201612826785f

static inline void idct1d_v(v128_t *v) {
  const v128_t c1 = wasm_f32x4_splat(C1), c2 = wasm_f32x4_splat(C2), c3 = wasm_f32x4_splat(C3),
               c4 = wasm_f32x4_splat(C4), c5 = wasm_f32x4_splat(C5), c6 = wasm_f32x4_splat(C6),
               c7 = wasm_f32x4_splat(C7);
  v128_t a0 = wasm_f32x4_mul(wasm_f32x4_add(v[0], v[4]), c4);
  v128_t a1 = wasm_f32x4_mul(wasm_f32x4_sub(v[0], v[4]), c4);
  v128_t b0 = wasm_f32x4_add(wasm_f32x4_mul(v[2], c2), wasm_f32x4_mul(v[6], c6));
  v128_t b1 = wasm_f32x4_sub(wasm_f32x4_mul(v[2], c6), wasm_f32x4_mul(v[6], c2));
  v128_t e0 = wasm_f32x4_add(a0, b0), e3 = wasm_f32x4_sub(a0, b0);
  v128_t e1 = wasm_f32x4_add(a1, b1), e2 = wasm_f32x4_sub(a1, b1);
  v128_t o0 = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(v[1], c1), wasm_f32x4_mul(v[3], c3)),
                             wasm_f32x4_add(wasm_f32x4_mul(v[5], c5), wasm_f32x4_mul(v[7], c7)));
  v128_t o1 = wasm_f32x4_sub(wasm_f32x4_sub(wasm_f32x4_mul(v[1], c3), wasm_f32x4_mul(v[3], c7)),
                             wasm_f32x4_add(wasm_f32x4_mul(v[5], c1), wasm_f32x4_mul(v[7], c5)));
  v128_t o2 = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(v[1], c5), wasm_f32x4_mul(v[3], c1)),
                             wasm_f32x4_add(wasm_f32x4_mul(v[5], c7), wasm_f32x4_mul(v[7], c3)));
  v128_t o3 = wasm_f32x4_sub(wasm_f32x4_add(wasm_f32x4_mul(v[1], c7), wasm_f32x4_mul(v[5], c3)),
                             wasm_f32x4_add(wasm_f32x4_mul(v[3], c5), wasm_f32x4_mul(v[7], c1)));
  v[0] = wasm_f32x4_add(e0, o0); v[7] = wasm_f32x4_sub(e0, o0);
  v[1] = wasm_f32x4_add(e1, o1); v[6] = wasm_f32x4_sub(e1, o1);
  v[2] = wasm_f32x4_add(e2, o2); v[5] = wasm_f32x4_sub(e2, o2);
  v[3] = wasm_f32x4_add(e3, o3); v[4] = wasm_f32x4_sub(e3, o3);
}

static inline void transpose4(v128_t *a, v128_t *b, v128_t *c, v128_t *d) {
  v128_t t0 = wasm_i32x4_shuffle(*a, *b, 0, 4, 1, 5);
  v128_t t1 = wasm_i32x4_shuffle(*a, *b, 2, 6, 3, 7);
  v128_t t2 = wasm_i32x4_shuffle(*c, *d, 0, 4, 1, 5);
  v128_t t3 = wasm_i32x4_shuffle(*c, *d, 2, 6, 3, 7);
  *a = wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5);
  *b = wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7);
  *c = wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5);
  *d = wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7);
}

/* lo[r] = columns 0..3 of row r, hi[r] = columns 4..7 */
static inline void transpose8(v128_t *lo, v128_t *hi) {
  transpose4(&lo[0], &lo[1], &lo[2], &lo[3]);
  transpose4(&lo[4], &lo[5], &lo[6], &lo[7]);
  transpose4(&hi[0], &hi[1], &hi[2], &hi[3]);
  transpose4(&hi[4], &hi[5], &hi[6], &hi[7]);
  /* swap the off-diagonal 4x4 blocks: new lo[4..7] = old hi[0..3], new hi[0..3] = old lo[4..7] */
  for (int i = 0; i < 4; i++) {
    v128_t t = hi[i];
    hi[i] = lo[4 + i];
    lo[4 + i] = t;
  }
}

/* Full 8x8 IDCT; blk is dequantized, natural order. */
static void idct8(const i32 *blk, u8 *dst, int stride) {
  v128_t lo[8], hi[8];
  const v128_t quarter = wasm_f32x4_splat(0.25f);
  for (int r = 0; r < 8; r++) {
    lo[r] = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_v128_load(blk + 8 * r)), quarter);
    hi[r] = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_v128_load(blk + 8 * r + 4)), quarter);
  }
  idct1d_v(lo);
  idct1d_v(hi);
  transpose8(lo, hi);
  idct1d_v(lo);
  idct1d_v(hi);
  transpose8(lo, hi);
  const v128_t bias = wasm_f32x4_splat(128.5f);
  for (int r = 0; r < 8; r += 2) {
    v128_t a = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_add(lo[r], bias));
    v128_t b = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_add(hi[r], bias));
    v128_t c = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_add(lo[r + 1], bias));
    v128_t d = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_add(hi[r + 1], bias));
    v128_t ab = wasm_i16x8_narrow_i32x4(a, b);
    v128_t cd = wasm_i16x8_narrow_i32x4(c, d);
    v128_t px = wasm_u8x16_narrow_i16x8(ab, cd);
    wasm_v128_store64_lane(dst + (size_t)r * stride, px, 0);
    wasm_v128_store64_lane(dst + (size_t)(r + 1) * stride, px, 1);
  }
}

static inline u8 clamp_px(float x) {
  x += 128.5f;
  if (x < 0.0f) return 0;
  if (x > 255.0f) return 255;
  return (u8)(int)x;
}

/* 4x4 from the top-left 4x4 coefficients: x(y) = 1/2 sum C(u) F(u) cos((2y+1)u pi / 8) per axis */
static void idct4(const i32 *blk, u8 *dst, int stride) {
  float t[16];
  for (int c = 0; c < 4; c++) {
    float f0 = (float)blk[c] * 0.5f, f1 = (float)blk[8 + c] * 0.5f, f2 = (float)blk[16 + c] * 0.5f,
          f3 = (float)blk[24 + c] * 0.5f;
    float e0 = (f0 + f2) * C4, e1 = (f0 - f2) * C4;
    float o0 = f1 * C2 + f3 * C6, o1 = f1 * C6 - f3 * C2;
    t[c] = e0 + o0; t[12 + c] = e0 - o0; t[4 + c] = e1 + o1; t[8 + c] = e1 - o1;
  }
  for (int r = 0; r < 4; r++) {
    float f0 = t[4 * r] * 0.5f, f1 = t[4 * r + 1] * 0.5f, f2 = t[4 * r + 2] * 0.5f, f3 = t[4 * r + 3] * 0.5f;
    float e0 = (f0 + f2) * C4, e1 = (f0 - f2) * C4;
    float o0 = f1 * C2 + f3 * C6, o1 = f1 * C6 - f3 * C2;
    u8 *d = dst + (size_t)r * stride;
    d[0] = clamp_px(e0 + o0); d[3] = clamp_px(e0 - o0); d[1] = clamp_px(e1 + o1); d[2] = clamp_px(e1 - o1);
  }
}

static void idct2(const i32 *blk, u8 *dst, int stride) {
  /* x0 = (F0 + F1) C4 / 2, x1 = (F0 - F1) C4 / 2 per axis -> 2D factor 1/8 */
  float a = (float)blk[0], b = (float)blk[1], c = (float)blk[8], d = (float)blk[9];
  float s = 0.125f;
  dst[0] = clamp_px((a + b + c + d) * s);
  dst[1] = clamp_px((a - b + c - d) * s);
  dst[stride] = clamp_px((a + b - c - d) * s);
  dst[stride + 1] = clamp_px((a - b - c + d) * s);
}

static inline u8 dc_px(i32 dc) {
  i32 v = ((dc + 4) >> 3) + 128;
  return (u8)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void idct_block(int kc, const i32 *blk, u8 *dst, int stride, int dc_only) {
  if (dc_only) {
    u8 v = dc_px(blk[0]);
    switch (kc) {
      case 8: {
        u64 p = 0x0101010101010101ull * v;
        for (int r = 0; r < 8; r++) __builtin_memcpy(dst + (size_t)r * stride, &p, 8);
        break;
      }
      case 4: {
        u32 p = 0x01010101u * v;
        for (int r = 0; r < 4; r++) __builtin_memcpy(dst + (size_t)r * stride, &p, 4);
        break;
      }
      case 2:
        dst[0] = dst[1] = dst[stride] = dst[stride + 1] = v;
        break;
      default:
        dst[0] = v;
        break;
    }
    return;
  }
  switch (kc) {
    case 8: idct8(blk, dst, stride); break;
    case 4: idct4(blk, dst, stride); break;
    case 2: idct2(blk, dst, stride); break;
    default: dst[0] = dc_px(blk[0]); break;
  }
}

/* ---------------------------------------------------------------- geometry */
static void setup_geometry(void) {
  kout = 8 >> scale_shift;
  mcusx = (width + 8 * hmax - 1) / (8 * hmax);
  mcusy = (height + 8 * vmax - 1) / (8 * vmax);
  for (int i = 0; i < ncomp; i++) {
    Comp *c = &comp[i];
    /* A component sampled hmax/h times more coarsely across (a power of two, else the file
     * is unsupported) needs hmax/h * kout output samples per block across, likewise down.
     * Its IDCT makes kc of them per block, both ways: as many as are needed, at most the 8 of
     * the block itself; upsampling by rh (across) and rv (down) makes the rest. */
    int across = hmax / c->h * kout, down = vmax / c->v * kout;
    int kc = across < down ? across : down;
    if (kc > 8) kc = 8;
    c->kc = kc;
    c->rh = across / kc;
    c->rv = down / kc;
    c->bw = mcusx * c->h;
    c->bh = mcusy * c->v;
    int sw = (int)(((i64)width * c->h + hmax - 1) / hmax), sh = (int)(((i64)height * c->v + vmax - 1) / vmax);
    c->sbw = (sw + 7) / 8;
    c->sbh = (sh + 7) / 8;
    c->cw = (int)(((i64)width * c->h * kc + (i64)hmax * 8 - 1) / ((i64)hmax * 8));
    c->ch = (int)(((i64)height * c->v * kc + (i64)vmax * 8 - 1) / ((i64)vmax * 8));
    if (c->cw < 1) c->cw = 1;
    if (c->ch < 1) c->ch = 1;
    c->stride = c->bw * kc;
    c->grows = c->v * kc;
    c->ncoef = kc * kc;
    c->zmap = zmaps[kc == 1 ? 0 : kc == 2 ? 1 : kc == 4 ? 2 : 3];
  }
  for (int z = 0; z < 4; z++) {
    int kc = 1 << z;
    for (int i = 0; i < 64; i++) {
      int n = zz[i], r = n >> 3, cc = n & 7;
      zmaps[z][i] = (r < kc && cc < kc) ? (u8)(r * kc + cc) : 255;
    }
  }
  out_w = (int)(((i64)width + (1 << scale_shift) - 1) >> scale_shift);
  out_h = (int)(((i64)height + (1 << scale_shift) - 1) >> scale_shift);
}

static int alloc_row_buffers(void) {
  for (int i = 0; i < ncomp; i++) {
    Comp *c = &comp[i];
    for (int j = 0; j < 3; j++) {
      c->rowbuf[j] = (u8 *)arena_calloc((u64)c->stride * (u64)c->grows + 16);
      if (!c->rowbuf[j]) return 0;
    }
    c->up = (u8 *)arena_alloc((u64)out_w + (u64)c->cw * 4 + 64);
    c->tbuf = (i16 *)arena_calloc(((u64)c->cw + 32) * 2);
    if (!c->up || !c->tbuf) return 0;
  }
  return 1;
}

/* ---------------------------------------------------------------- upsampling + colour */
static const u8 *comp_row(Comp *c, int iy) {
  if (iy < 0) iy = 0;
  if (iy > c->ch - 1) iy = c->ch - 1;
  int g = iy / c->grows;
  if (g > last_group) { g = last_group; iy = g * c->grows + c->grows - 1; }
  if (g < last_group - 2) { g = last_group - 2; iy = g * c->grows; }
  if (g < 0) { g = 0; iy = 0; }
  return c->rowbuf[g % 3] + (size_t)(iy - g * c->grows) * (size_t)c->stride;
}

/* Chroma upsampling by 2 along either axis or both, by linear interpolation between sample
 * centres.
 *
 * Derivation. With centred chroma siting (JFIF, T.871), chroma sample i of a half-resolution
 * axis lies midway between the full-resolution samples 2i and 2i+1, whose centres are therefore
 * a quarter of a chroma sample before and after it. Interpolating linearly between the two
 * chroma samples around each output centre gives
 *   output 2i   = 3/4 s[i] + 1/4 s[i-1]
 *   output 2i+1 = 3/4 s[i] + 1/4 s[i+1],
 * that is 3/4 for the nearest input sample and 1/4 for the next nearest, per axis; an edge
 * sample stands in for its missing neighbour. Doubling both axes applies this once per axis,
 * and the weights multiply: 9/16 nearest, 3/16 for each of the two next nearest along one axis,
 * 1/16 diagonal. In integers the sums are 3a + b (quarters) for one axis and
 * 3 (3a + b) + (3c + d) (sixteenths) for two, divided by a shift.
 *
 * Rounding. A sum of quarters is an exact half when its remainder is 2: adding 2 before the
 * shift rounds such halves up, adding 1 rounds them down (in sixteenths: 8 up, 7 down). The
 * rounding term alternates between the two output phases (even and odd outputs) of the axis
 * rounded: 1 and 2 of 4 for one axis (by row parity down, by column parity across); 8 and 7 of
 * 16 by column parity for both, where the vertical step is exact and only the horizontal one
 * rounds. Half the ties go each way, so rounding does not bias the image.
 *
 * This is the rounding of the "fancy upsampling" in libjpeg's jdsample.c (libjpeg-turbo's h2v1,
 * h1v2 and h2v2 cases, which mozjpeg, the JPEG library of sharp's libvips, shares); the tests
 * compare our pixels with sharp's, so we match it on purpose. The code is ours: a vertical pass
 * into 16-bit sums (column_sums), then a rounding shift (round_row) or a horizontal doubling
 * (double_row). */

/* w[i] for i < cw, eight at a time: closer_row[i] alone (other_row 0: no vertical step), or
 * 3 closer_row[i] + other_row[i], the vertical 3:1 weights in quarters. Row buffers have room
 * for the last step's reads; w has room for its writes. */
static void column_sums(i16 *w, const u8 *closer_row, const u8 *other_row, int cw) {
  for (int i = 0; i < cw; i += 8) {
    v128_t sum = wasm_u16x8_extend_low_u8x16(wasm_v128_load64_zero(closer_row + i));
    if (other_row) {
      v128_t other = wasm_u16x8_extend_low_u8x16(wasm_v128_load64_zero(other_row + i));
      sum = wasm_i16x8_add(wasm_i16x8_add(wasm_i16x8_shl(sum, 1), sum), other);
    }
    wasm_v128_store(w + i, sum);
  }
}

/* up[i] = (w[i] + rounding) >> shift for i < cw, eight at a time (up has room past cw). */
static void round_row(const i16 *w, int cw, u8 *up, int rounding, int shift) {
  const v128_t r = wasm_i16x8_splat((i16)rounding);
  for (int i = 0; i < cw; i += 8) {
    v128_t v = wasm_u16x8_shr(wasm_i16x8_add(wasm_v128_load(w + i), r), shift);
    wasm_v128_store64_lane(up + i, wasm_u8x16_narrow_i16x8(v, v), 0);
  }
}

/* Doubling a row horizontally: w[0..cw-1] holds the row in units of 1/scale (1, or 4 after a
 * vertical step); output 2i = (3 w[i] + w[i-1] + even_rounding) >> shift, output 2i+1 =
 * (3 w[i] + w[i+1] + odd_rounding) >> shift. w[-1] and w[cw] are written here (the edge
 * samples). Eight inputs, sixteen outputs per step: up[] and w[] have room past 2 cw and cw for
 * the last step. */
static void double_row(i16 *w, int cw, u8 *up, int even_rounding, int odd_rounding, int shift) {
  w[-1] = w[0];
  w[cw] = w[cw - 1];
  const v128_t re = wasm_i16x8_splat((i16)even_rounding), ro = wasm_i16x8_splat((i16)odd_rounding);
  for (int i = 0; i < cw; i += 8) {
    v128_t mid = wasm_v128_load(w + i), left = wasm_v128_load(w + i - 1), right = wasm_v128_load(w + i + 1);
    v128_t mid3 = wasm_i16x8_add(wasm_i16x8_shl(mid, 1), mid);
    v128_t even = wasm_u16x8_shr(wasm_i16x8_add(wasm_i16x8_add(mid3, left), re), shift);
    v128_t odd = wasm_u16x8_shr(wasm_i16x8_add(wasm_i16x8_add(mid3, right), ro), shift);
    v128_t first8 = wasm_i16x8_shuffle(even, odd, 0, 8, 1, 9, 2, 10, 3, 11);
    v128_t next8 = wasm_i16x8_shuffle(even, odd, 4, 12, 5, 13, 6, 14, 7, 15);
    wasm_v128_store(up + 2 * i, wasm_u8x16_narrow_i16x8(first8, next8));
  }
}

/* Output row y of component c at the output resolution: the component's own row when it needs
 * no upsampling; linear interpolation (above) for a factor of 2 across and/or down (not at 1/8
 * scale, where each sample is the mean of a whole block); sample replication otherwise. */
static const u8 *upsample_row(Comp *c, int y) {
  int rh = c->rh, rv = c->rv, cw = c->cw;
  u8 *up = c->up;
  if (rh == 1 && rv == 1) return comp_row(c, y);
  if (kout > 1 && rh <= 2 && rv <= 2) {
    i16 *w = c->tbuf + 8;
    const u8 *closer_row = comp_row(c, y / rv), *other_row = 0;
    /* doubled vertically: output row y lies a quarter of a sample row from chroma row y/2,
     * towards the row before it when y is even, the row after it when y is odd */
    if (rv == 2) other_row = comp_row(c, (y >> 1) + ((y & 1) ? 1 : -1));
    column_sums(w, closer_row, other_row, cw);
    if (rh == 1) round_row(w, cw, up, 1 + (y & 1), 2);  /* down only: quarters, 1 or 2 by row parity */
    else if (rv == 1) double_row(w, cw, up, 1, 2, 2);   /* across only: quarters, 1 and 2 by column parity */
    else double_row(w, cw, up, 8, 7, 4);                /* both: sixteenths, 8 and 7 by column parity */
    return up;
  }
  const u8 *s = comp_row(c, y / rv);
  int shift = rh == 2 ? 1 : rh == 4 ? 2 : rh == 8 ? 3 : 0;
  for (int i = 0; i < out_w; i++) {
    int j = i >> shift;
    up[i] = s[j < cw ? j : cw - 1];
  }
  return up;
}

static inline u8 clamp255(int v) { return (u8)(v < 0 ? 0 : v > 255 ? 255 : v); }

static inline v128_t load4u8(const u8 *p) {
  return wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(p)));
}

/* YCbCr -> RGB, T.871 (JFIF) section 7: R = Y + 1.402 (Cr - 128), G = Y - 0.344136 (Cb - 128)
 * - 0.714136 (Cr - 128), B = Y + 1.772 (Cb - 128), the factors in 16.16 fixed point
 * (91881, 22554, 46802, 116130), rounded to nearest. `which` picks R, G or B. */
static inline v128_t ycc_q(v128_t y, v128_t cb, v128_t cr, int which) {
  const v128_t half = wasm_i32x4_splat(32768);
  v128_t t;
  if (which == 0) t = wasm_i32x4_mul(cr, wasm_i32x4_splat(91881));
  else if (which == 1) t = wasm_i32x4_add(wasm_i32x4_mul(cb, wasm_i32x4_splat(-22554)), wasm_i32x4_mul(cr, wasm_i32x4_splat(-46802)));
  else t = wasm_i32x4_mul(cb, wasm_i32x4_splat(116130));
  return wasm_i32x4_add(y, wasm_i32x4_shr(wasm_i32x4_add(t, half), 16));
}

/* 16 pixels of YCbCr -> RGBA; narrowing saturates, which is the clamp to 0..255 */
static inline void ycc16(const u8 *Y, const u8 *Cb, const u8 *Cr, u8 *dst) {
  const v128_t k128 = wasm_i16x8_splat(128);
  v128_t y = wasm_v128_load(Y), cb = wasm_v128_load(Cb), cr = wasm_v128_load(Cr);
  v128_t y16[2] = {wasm_u16x8_extend_low_u8x16(y), wasm_u16x8_extend_high_u8x16(y)};
  v128_t cb16[2] = {wasm_i16x8_sub(wasm_u16x8_extend_low_u8x16(cb), k128), wasm_i16x8_sub(wasm_u16x8_extend_high_u8x16(cb), k128)};
  v128_t cr16[2] = {wasm_i16x8_sub(wasm_u16x8_extend_low_u8x16(cr), k128), wasm_i16x8_sub(wasm_u16x8_extend_high_u8x16(cr), k128)};
  v128_t ch[3];
  for (int w = 0; w < 3; w++) {
    v128_t h16[2];
    for (int hlf = 0; hlf < 2; hlf++) {
      v128_t ylo = wasm_i32x4_extend_low_i16x8(y16[hlf]), yhi = wasm_i32x4_extend_high_i16x8(y16[hlf]);
      v128_t blo = wasm_i32x4_extend_low_i16x8(cb16[hlf]), bhi = wasm_i32x4_extend_high_i16x8(cb16[hlf]);
      v128_t rlo = wasm_i32x4_extend_low_i16x8(cr16[hlf]), rhi = wasm_i32x4_extend_high_i16x8(cr16[hlf]);
      h16[hlf] = wasm_i16x8_narrow_i32x4(ycc_q(ylo, blo, rlo, w), ycc_q(yhi, bhi, rhi, w));
    }
    ch[w] = wasm_u8x16_narrow_i16x8(h16[0], h16[1]);
  }
  const v128_t a = wasm_i8x16_splat((char)0xFF);
  v128_t rg_lo = wasm_i8x16_shuffle(ch[0], ch[1], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  v128_t rg_hi = wasm_i8x16_shuffle(ch[0], ch[1], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  v128_t ba_lo = wasm_i8x16_shuffle(ch[2], a, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  v128_t ba_hi = wasm_i8x16_shuffle(ch[2], a, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  wasm_v128_store(dst, wasm_i16x8_shuffle(rg_lo, ba_lo, 0, 8, 1, 9, 2, 10, 3, 11));
  wasm_v128_store(dst + 16, wasm_i16x8_shuffle(rg_lo, ba_lo, 4, 12, 5, 13, 6, 14, 7, 15));
  wasm_v128_store(dst + 32, wasm_i16x8_shuffle(rg_hi, ba_hi, 0, 8, 1, 9, 2, 10, 3, 11));
  wasm_v128_store(dst + 48, wasm_i16x8_shuffle(rg_hi, ba_hi, 4, 12, 5, 13, 6, 14, 7, 15));
}

static void color_row(const u8 *const *rows, u8 *dst, int n) {
  if (color == CS_GRAY) {
    const u8 *g = rows[0];
    for (int x = 0; x < n; x++) {
      u32 v = g[x];
      ((u32 *)dst)[x] = v | (v << 8) | (v << 16) | 0xFF000000u;
    }
    return;
  }
  if (color == CS_RGB) {
    const u8 *r = rows[0], *g = rows[1], *b = rows[2];
    for (int x = 0; x < n; x++)
      ((u32 *)dst)[x] = (u32)r[x] | ((u32)g[x] << 8) | ((u32)b[x] << 16) | 0xFF000000u;
    return;
  }
  const u8 *Y = rows[0], *Cb = rows[1], *Cr = rows[2];
  if (color == CS_YCBCR) {
    int x = 0;
    for (; x + 16 <= n; x += 16) ycc16(Y + x, Cb + x, Cr + x, dst + 4 * x);
    const v128_t k128 = wasm_i32x4_splat(128), kr = wasm_i32x4_splat(91881), kgb = wasm_i32x4_splat(-22554),
                 kgr = wasm_i32x4_splat(-46802), kb = wasm_i32x4_splat(116130), half = wasm_i32x4_splat(32768),
                 alpha = wasm_i32x4_splat((int)0xFF000000u), mask = wasm_i32x4_splat(255);
    for (; x + 4 <= n; x += 4) {
      v128_t y = load4u8(Y + x);
      v128_t cb = wasm_i32x4_sub(load4u8(Cb + x), k128);
      v128_t cr = wasm_i32x4_sub(load4u8(Cr + x), k128);
      v128_t r = wasm_i32x4_add(y, wasm_i32x4_shr(wasm_i32x4_add(wasm_i32x4_mul(cr, kr), half), 16));
      v128_t g = wasm_i32x4_add(
          y, wasm_i32x4_shr(wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_mul(cb, kgb), wasm_i32x4_mul(cr, kgr)), half), 16));
      v128_t b = wasm_i32x4_add(y, wasm_i32x4_shr(wasm_i32x4_add(wasm_i32x4_mul(cb, kb), half), 16));
      r = wasm_i32x4_min(wasm_i32x4_max(r, wasm_i32x4_splat(0)), mask);
      g = wasm_i32x4_min(wasm_i32x4_max(g, wasm_i32x4_splat(0)), mask);
      b = wasm_i32x4_min(wasm_i32x4_max(b, wasm_i32x4_splat(0)), mask);
      v128_t px = wasm_v128_or(wasm_v128_or(r, wasm_i32x4_shl(g, 8)), wasm_v128_or(wasm_i32x4_shl(b, 16), alpha));
      wasm_v128_store(dst + 4 * x, px);
    }
    for (; x < n; x++) {
      int y = Y[x], cb = Cb[x] - 128, cr = Cr[x] - 128;
      int r = y + ((91881 * cr + 32768) >> 16);
      int g = y + ((-22554 * cb - 46802 * cr + 32768) >> 16);
      int b = y + ((116130 * cb + 32768) >> 16);
      ((u32 *)dst)[x] = (u32)clamp255(r) | ((u32)clamp255(g) << 8) | ((u32)clamp255(b) << 16) | 0xFF000000u;
    }
    return;
  }
  const u8 *K = rows[3];
  for (int x = 0; x < n; x++) {
    int c0, c1, c2;
    if (color == CS_YCCK) {
      int y = Y[x], cb = Cb[x] - 128, cr = Cr[x] - 128;
      c0 = 255 - clamp255(y + ((91881 * cr + 32768) >> 16));
      c1 = 255 - clamp255(y + ((-22554 * cb - 46802 * cr + 32768) >> 16));
      c2 = 255 - clamp255(y + ((116130 * cb + 32768) >> 16));
    } else {
      c0 = Y[x]; c1 = Cb[x]; c2 = Cr[x];
    }
    int k = K[x];
    if (raw_cmyk) {
      /* ink amounts (0 = none: Adobe's inversion undone) C, M, Y, K in the R, G, B, A slots */
      ((u32 *)dst)[x] = (u32)(255 - c0) | ((u32)(255 - c1) << 8) | ((u32)(255 - c2) << 16) | ((u32)(255 - k) << 24);
      continue;
    }
    /* Adobe stores CMYK inverted: the value is 255 - ink, so R = (255 - C)(255 - K) / 255 = c * k / 255 */
    int r = (c0 * k + 127) / 255, g = (c1 * k + 127) / 255, b = (c2 * k + 127) / 255;
    ((u32 *)dst)[x] = (u32)r | ((u32)g << 8) | ((u32)b << 16) | 0xFF000000u;
  }
}

/* Streaming into the resampler (jpeg_decode_stream): rows go through `line`, never into `out`. */
static int sink;
static u8 *line;

static void emit_group(int m) {
  int R = vmax * kout;
  int y0 = m * R, y1 = y0 + R;
  if (y1 > out_h) y1 = out_h;
  const u8 *rows[4];
  for (int y = y0; y < y1; y++) {
    for (int i = 0; i < ncomp; i++) rows[i] = upsample_row(&comp[i], y);
    if (sink) {
      color_row(rows, line, out_w);
      resize_stream_push_row(line);
    } else {
      color_row(rows, out + (size_t)y * (size_t)out_w * 4, out_w);
    }
  }
}

/* ---------------------------------------------------------------- sequential (streaming) */
static i32 blk[64] __attribute__((aligned(16)));

/* decode one sequential block into blk (dequantized, natural order; only kc x kc kept).
 * returns 1 if only the DC is nonzero. */
static int decode_block_seq(Comp *c) {
  const Huff *dc = &hdc[c->td], *ac = &hac[c->ta];
  const u16 *q = qt[c->tq];
  const u8 *zm = c->zmap;
  int kc = c->kc;
  if (dead) {
    blk[0] = c->pred * q[0];
    return 1;
  }
  c->pred = (int)(i16)(c->pred + dc_diff(dc));
  blk[0] = c->pred * q[0];
  int only_dc = 1;
  for (int k = 1; k < 64; k++) {
    int v = 0, rs = ac_symbol(ac, &v);
    if ((rs & 15) == 0) {
      if (rs != 0xF0) break; /* EOB */
      k += 15;               /* ZRL: 16 zeros */
      continue;
    }
    k += rs >> 4;
    if (k > 63) { corrupt = 1; break; }
    if (kc == 8 || zm[k] != 255) { /* a coefficient the chosen IDCT size reads */
      int n = zz[k];
      blk[n] = v * q[n];
      only_dc = 0;
    }
  }
  return only_dc;
}

static void clear_blk(int kc) {
  if (kc == 8) {
    v128_t z = wasm_i32x4_splat(0);
    for (int i = 0; i < 64; i += 4) wasm_v128_store(blk + i, z);
  } else {
    for (int r = 0; r < kc; r++)
      for (int cc = 0; cc < kc; cc++) blk[r * 8 + cc] = 0;
  }
}

static int decode_streaming(void) {
  int mcus_left = restart_interval;
  int first = 1;
  for (int my = 0; my < mcusy; my++) {
    for (int mx = 0; mx < mcusx; mx++) {
      if (restart_interval) {
        if (mcus_left == 0 && !first) { process_restart(); mcus_left = restart_interval; }
        mcus_left--;
      }
      first = 0;
      for (int si = 0; si < sos_ns; si++) {
        Comp *c = &comp[sos_comp[si]];
        int kc = c->kc;
        u8 *base = c->rowbuf[my % 3];
        for (int v = 0; v < c->v; v++) {
          for (int h = 0; h < c->h; h++) {
            clear_blk(kc);
            int dco = decode_block_seq(c);
            u8 *dst = base + (size_t)(v * kc) * (size_t)c->stride + (size_t)((mx * c->h + h) * kc);
            idct_block(kc, blk, dst, c->stride, dco);
          }
        }
      }
      check_dead();
      if (dead && strict) return ER_CORRUPT_DATA;
    }
    if (corrupt && strict) return ER_CORRUPT_DATA;
    last_group = my;
    if (my >= 1) emit_group(my - 1);
  }
  if (consumed_padding()) corrupt = 1;
  emit_group(mcusy - 1);
  if (corrupt && strict) return ER_CORRUPT_DATA;
  return corrupt ? ST_WARN_CORRUPT : ST_OK;
}

/* ---------------------------------------------------------------- buffered (progressive) */
/* Every block has a 64-bit mask of its nonzero AC coefficients (bit = zigzag index): refinement
 * scans need it for the coefficients the chosen scale discards, and it lets them skip zeros. */
static inline void coef_set(Comp *c, i16 *cb, u64 *nzp, int k, int v) {
  *nzp |= 1ull << k;
  int slot = c->zmap[k];
  if (slot != 255) cb[slot] = (i16)v;
}

static void block_seq_buffered(Comp *c, i16 *cb, u64 *nzp) {
  const Huff *dc = &hdc[c->td], *ac = &hac[c->ta];
  c->pred = (int)(i16)(c->pred + dc_diff(dc));
  cb[0] = (i16)c->pred;
  for (int k = 1; k < 64; k++) {
    int v = 0, rs = ac_symbol(ac, &v);
    if ((rs & 15) == 0) {
      if (rs != 0xF0) break;
      k += 15;
      continue;
    }
    k += rs >> 4;
    if (k > 63) { corrupt = 1; break; }
    coef_set(c, cb, nzp, k, v);
  }
}

static void block_dc_first(Comp *c, i16 *cb, int al) {
  c->pred = (int)(i16)(c->pred + dc_diff(&hdc[c->td]));
  cb[0] = (i16)(int)((u32)c->pred << al);
}

static void block_dc_refine(i16 *cb, int al) {
  if (get_bit()) cb[0] = (i16)(cb[0] | (1 << al));
}

/* Progressive AC scans (T.81 G.1.2.2 first scans, G.1.2.3 refinement scans) cover the band
 * Ss..Se of one component's blocks. The symbol EOBn (run n < 15, size 0) and the n bits after
 * it give EOBRUN = 2^n + those bits (G.1.2.2, Table G.1): the number of bands, the current one
 * included, that end here. `eobrun` holds how many of them, after the current one, are still
 * to come. */

/* Zigzag positions from..to as a mask (empty when from > to). */
static inline u64 band_bits(int from, int to) {
  if (from > to) return 0;
  u64 upto = to >= 63 ? ~0ull : (1ull << (to + 1)) - 1;
  return upto & (~0ull << from);
}

static inline int eob_run_length(int n) { /* EOBRUN - 1: the bands after this one */
  return (1 << n) - 1 + (n ? (int)get_bits(n) : 0);
}

/* A first scan of one block's band (G.1.2.2): run/size symbols as in sequential mode, within
 * Ss..Se, each coefficient scaled by 2^Al (the point transform). */
static void block_ac_first(Comp *c, i16 *cb, u64 *nzp, int ss, int se, int al) {
  if (eobrun > 0) { eobrun--; return; }
  const Huff *h = &hac[c->ta];
  for (int k = ss; k <= se; k++) {
    int v = 0, rs = ac_symbol(h, &v), run = rs >> 4;
    if ((rs & 15) == 0) {
      if (run == 15) { k += 15; continue; } /* ZRL */
      eobrun = eob_run_length(run);
      break;
    }
    k += run;
    if (k > se) { corrupt = 1; break; }
    coef_set(c, cb, nzp, k, (int)((u32)v << al));
  }
}

/* Correction bits (G.1.2.3) for the coefficients at the positions in `due` (all with a nonzero
 * history), in zigzag order: each bit is the bit of weight 2^al of that coefficient's
 * magnitude. A bit is read even for a coefficient the chosen scale does not keep. */
static void add_corrections(Comp *c, i16 *cb, u64 due, int al) {
  for (; due; due &= due - 1) {
    int bit = get_bit();
    int slot = c->zmap[__builtin_ctzll(due)];
    if (bit && slot != 255) {
      int v = cb[slot];
      cb[slot] = (i16)(v >= 0 ? v | (1 << al) : -(-v | (1 << al)));
    }
  }
}

/* A refinement scan of one block's band (G.1.2.3). A coefficient with a nonzero history gets a
 * correction bit; the run/size symbols count only coefficients with a zero history: a symbol
 * with size 1 places a new coefficient of magnitude 2^al (its sign is the bit after the code,
 * 1 = positive) at the (run+1)th such position, after the correction bits of the nonzero-
 * history coefficients passed on the way; ZRL passes 16 such positions; EOBn ends the band,
 * whose remaining nonzero-history coefficients still get their correction bits. */
static void block_ac_refine(Comp *c, i16 *cb, u64 *nzp, int ss, int se, int al) {
  if (eobrun > 0) {
    eobrun--;
    add_corrections(c, cb, *nzp & band_bits(ss, se), al);
    return;
  }
  const Huff *h = &hac[c->ta];
  int k = ss; /* first position of the band not yet coded */
  while (k <= se) {
    if (bitcnt < 32) fill();
    int rs = huff_symbol(h), run = rs >> 4, size = rs & 15;
    if (size == 0 && run < 15) {
      eobrun = eob_run_length(run);
      break;
    }
    int fresh = 0;
    if (size) {
      if (size != 1) corrupt = 1;
      fresh = get_bit() ? 1 << al : -(1 << al);
    }
    u64 zero_history = ~*nzp & band_bits(k, se);
    for (int i = 0; i < run && zero_history; i++) zero_history &= zero_history - 1;
    int at = zero_history ? __builtin_ctzll(zero_history) : se + 1;
    add_corrections(c, cb, *nzp & band_bits(k, at - 1), al);
    if (size) {
      if (at <= se) coef_set(c, cb, nzp, at, fresh);
      else corrupt = 1;
    }
    k = at + 1;
  }
  add_corrections(c, cb, *nzp & band_bits(k, se), al);
}

static int alloc_coefs(void) {
  for (int i = 0; i < ncomp; i++) {
    Comp *c = &comp[i];
    u64 nblocks = (u64)c->bw * (u64)c->bh;
    c->coef = (i16 *)arena_calloc(nblocks * (u64)c->ncoef * 2ull);
    if (!c->coef) return 0;
    c->nz = (u64 *)arena_calloc(nblocks * 8ull);
    if (!c->nz) return 0;
  }
  return 1;
}

static void decode_one_buffered(Comp *c, int bx, int by, int kind) {
  size_t bi = (size_t)by * (size_t)c->bw + (size_t)bx;
  i16 *cb = c->coef + bi * (size_t)c->ncoef;
  u64 *nzp = c->nz + bi;
  switch (kind) {
    case 0: block_seq_buffered(c, cb, nzp); break;
    case 1: block_dc_first(c, cb, sos_al); break;
    case 2: block_dc_refine(cb, sos_al); break;
    case 3: block_ac_first(c, cb, nzp, sos_ss, sos_se, sos_al); break;
    default: block_ac_refine(c, cb, nzp, sos_ss, sos_se, sos_al); break;
  }
}

static int decode_scan_buffered(void) {
  int kind;
  if (!progressive) {
    kind = 0;
  } else {
    if (sos_ss > sos_se || sos_se > 63 || sos_al > 13 || sos_ah > 13) return 0;
    if (sos_ss == 0) {
      if (sos_se != 0) return 0;
      kind = sos_ah ? 2 : 1;
    } else {
      if (sos_ns != 1) return 0;
      kind = sos_ah ? 4 : 3;
    }
  }
  for (int i = 0; i < sos_ns; i++) {
    Comp *c = &comp[sos_comp[i]];
    if ((kind == 0 || kind == 1) && !hdc[c->td].defined) return 0;
    if ((kind == 0 || kind >= 3) && !hac[c->ta].defined) return 0;
    c->pred = 0;
  }
  reset_bits();
  dead = 0;
  eobrun = 0;
  int mcus_left = restart_interval, first = 1;
  if (sos_ns == 1) {
    Comp *c = &comp[sos_comp[0]];
    for (int by = 0; by < c->sbh; by++) {
      for (int bx = 0; bx < c->sbw; bx++) {
        if (restart_interval) {
          if (mcus_left == 0 && !first) { process_restart(); mcus_left = restart_interval; }
          mcus_left--;
        }
        first = 0;
        if (!dead) decode_one_buffered(c, bx, by, kind);
        check_dead();
      }
      if (dead && (strict || !restart_interval)) return 1;
    }
  } else {
    for (int my = 0; my < mcusy; my++) {
      for (int mx = 0; mx < mcusx; mx++) {
        if (restart_interval) {
          if (mcus_left == 0 && !first) { process_restart(); mcus_left = restart_interval; }
          mcus_left--;
        }
        first = 0;
        for (int si = 0; si < sos_ns; si++) {
          Comp *c = &comp[sos_comp[si]];
          for (int v = 0; v < c->v; v++)
            for (int h = 0; h < c->h; h++)
              if (!dead) decode_one_buffered(c, mx * c->h + h, my * c->v + v, kind);
        }
        check_dead();
      }
      if (dead && (strict || !restart_interval)) return 1;
    }
  }
  if (consumed_padding()) corrupt = 1;
  return 1;
}

static void output_buffered(void) {
  for (int my = 0; my < mcusy; my++) {
    for (int i = 0; i < ncomp; i++) {
      Comp *c = &comp[i];
      int kc = c->kc;
      const u16 *q = qt[c->tq];
      i32 q32[64] __attribute__((aligned(16)));
      for (int n = 0; n < 64; n++) q32[n] = q[n];
      u64 kc_mask = 0;
      for (int z = 1; z < 64; z++) if (c->zmap[z] != 255) kc_mask |= 1ull << z;
      u8 *base = c->rowbuf[my % 3];
      for (int v = 0; v < c->v; v++) {
        int by = my * c->v + v;
        for (int bx = 0; bx < c->bw; bx++) {
          size_t bi = (size_t)by * (size_t)c->bw + (size_t)bx;
          const i16 *cb = c->coef + bi * (size_t)c->ncoef;
          int any_ac = (c->nz[bi] & kc_mask) != 0;
          if (!any_ac) {
            blk[0] = cb[0] * q[0];
          } else if (kc == 8) {
            for (int n = 0; n < 64; n += 8) {
              v128_t coefs = wasm_v128_load(cb + n);
              wasm_v128_store(blk + n, wasm_i32x4_mul(wasm_i32x4_extend_low_i16x8(coefs), wasm_v128_load(q32 + n)));
              wasm_v128_store(blk + n + 4, wasm_i32x4_mul(wasm_i32x4_extend_high_i16x8(coefs), wasm_v128_load(q32 + n + 4)));
            }
          } else {
            for (int r = 0; r < kc; r++)
              for (int cc = 0; cc < kc; cc++) blk[r * 8 + cc] = cb[r * kc + cc] * q[r * 8 + cc];
          }
          u8 *dst = base + (size_t)(v * kc) * (size_t)c->stride + (size_t)(bx * kc);
          idct_block(kc, blk, dst, c->stride, !any_ac);
        }
      }
    }
    last_group = my;
    if (my >= 1) emit_group(my - 1);
  }
  emit_group(mcusy - 1);
}

/* ---------------------------------------------------------------- decode API */
#define FLAG_STRICT 1
#define FLAG_RAW_CMYK 2
#define MAX_SCANS 300

/**
 * Decode to RGBA8 at scale 1/2^shift (shift 0..3). flags bit 0: strict (corrupt or truncated
 * entropy data is an error instead of a warning); bit 1: raw CMYK (4-component files only: the
 * output holds the ink amounts C, M, Y, K, 0 = no ink, i.e. Adobe's inverted storage undone and
 * YCCK converted to CMYK, in the R, G, B, A bytes, for colour management by the caller). Returns the pixel pointer (out_width *
 * out_height * 4 bytes, in this instance's memory) or 0; jpeg_status() tells why.
 */
static u8 *decode_image(const u8 *data, u32 len, int shift, int flags) {
  status = jpeg_header(data, len);
  if (status < 0) return 0;
  if (unsupported) { status = ER_UNSUPPORTED; return 0; }
  if (shift < 0 || shift > 3) { status = ER_BAD_ARGUMENT; return 0; }
  if (ncomp < 1) { status = ER_BAD_HEADER; return 0; }
  strict = flags & FLAG_STRICT;
  raw_cmyk = (flags & FLAG_RAW_CMYK) != 0;
  scale_shift = shift;
  setup_geometry();
  if ((u64)out_w * (u64)out_h > (1ull << 28)) { status = ER_TOO_LARGE; return 0; }
  for (int i = 0; i < ncomp; i++)
    if (!qt_defined[comp[i].tq]) { status = ER_BAD_HEADER; return 0; }
  /* restart from the top and decode */
  reset_state(data, len);
  pos = 2;
  /* header again (fills the same fields) */
  int r = read_markers();
  if (r != 1) { status = r < 0 ? r : ER_TRUNCATED; return 0; }
  decide_color();
  if (unsupported) { status = ER_UNSUPPORTED; return 0; }
  scale_shift = shift;
  setup_geometry();
  if (sink) {
    line = (u8 *)arena_alloc((u64)out_w * 4ull + 64);
    out = line; /* non-zero: success is "returns non-zero" on both paths */
  } else {
    out = (u8 *)arena_alloc((u64)out_w * (u64)out_h * 4ull);
  }
  if (!out || !alloc_row_buffers()) { status = ER_NO_MEMORY; return 0; }
  last_group = -1;
  int streaming = !progressive && sos_ns == ncomp;
  if (streaming) {
    for (int i = 0; i < ncomp; i++) {
      Comp *c = &comp[i];
      if (!hdc[c->td].defined || !hac[c->ta].defined || !qt_defined[c->tq]) { status = ER_BAD_HEADER; return 0; }
      c->pred = 0;
    }
    reset_bits();
    dead = 0;
    status = decode_streaming();
    return status < 0 ? 0 : out;
  }
  if (!alloc_coefs()) { status = ER_NO_MEMORY; return 0; }
  int got_scan = 0;
  for (;;) {
    if (++scans > MAX_SCANS) { status = ER_CORRUPT_DATA; return 0; }
    for (int i = 0; i < ncomp; i++)
      if (!qt_defined[comp[i].tq]) { status = ER_BAD_HEADER; return 0; }
    if (!decode_scan_buffered()) {
      if (strict) { status = ER_CORRUPT_DATA; return 0; }
      corrupt = 1;
    } else {
      got_scan = 1;
    }
    if (corrupt && strict) { status = ER_CORRUPT_DATA; return 0; }
    /* continue after the scan's entropy data */
    u32 p = next_marker(pos);
    if (p >= src_len) break;
    pos = p - 1; /* at the 0xFF */
    r = read_markers();
    if (r == 0) break;
    if (r < 0) {
      if (strict) { status = r; return 0; }
      corrupt = 1;
      break;
    }
  }
  if (!got_scan) { status = ER_TRUNCATED; return 0; }
  output_buffered();
  status = corrupt ? ST_WARN_CORRUPT : ST_OK;
  return out;
}

EXPORT(jpeg_decode) u8 *jpeg_decode(const u8 *data, u32 len, int shift, int flags) {
  sink = 0;
  return decode_image(data, len, shift, flags);
}

/**
 * As jpeg_decode, but every decoded row (out_width pixels) is pushed into the resampling that
 * resize_stream_begin started, instead of into a full-size buffer: memory follows the output.
 * Returns 1 or 0 (jpeg_status()); then resize_stream_end() gives the output.
 */
EXPORT(jpeg_decode_stream) int jpeg_decode_stream(const u8 *data, u32 len, int shift, int flags) {
  sink = 1;
  u8 *r = decode_image(data, len, shift, flags);
  sink = 0;
  return r != 0;
}
