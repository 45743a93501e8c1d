/*
 * colour.c - an embedded colour profile's conversion to sRGB, applied to rows as the decoders
 * stream them into the resampler (so a converted full-size copy never exists). The tables are
 * made in JS (src/images/icc.ts) and copied into this module's memory; the arithmetic is the
 * same as applyColourTransform there, in doubles, so both paths give the same bytes.
 */
typedef unsigned char u8;

#define EXPORT(name) __attribute__((export_name(#name)))

enum { COLOUR_NONE, COLOUR_MATRIX, COLOUR_GRAY };

static int kind;
static const double *curves; /* 3 x 256: 8-bit value -> linear light, per channel */
static double m[9];          /* linear profile RGB -> linear sRGB, scaled to encode-table indices */
static const u8 *encode_table;
static int encode_max;
static const u8 *gray_table;  /* 8-bit value -> 8-bit sRGB, for R, G and B alike */

EXPORT(colour_clear) void colour_clear(void) { kind = COLOUR_NONE; }

/** curves: 768 doubles; matrix: 9 doubles, row-major; table: table_max + 1 bytes. */
EXPORT(colour_set_matrix) void colour_set_matrix(const double *curve_tables, const double *matrix, const u8 *table, int table_max) {
  curves = curve_tables;
  for (int i = 0; i < 9; i++) m[i] = matrix[i] * table_max;
  encode_table = table;
  encode_max = table_max;
  kind = COLOUR_MATRIX;
}

EXPORT(colour_set_gray) void colour_set_gray(const u8 *table) {
  gray_table = table;
  kind = COLOUR_GRAY;
}

static inline int table_index(double x, int max) { return x <= 0 ? 0 : x >= max ? max : (int)x; }

/** Converts n RGBA8 pixels in place (alpha untouched). */
void colour_row(u8 *row, int n) {
  if (kind == COLOUR_GRAY) {
    for (int i = 0; i < n * 4; i += 4) {
      row[i] = gray_table[row[i]];
      row[i + 1] = gray_table[row[i + 1]];
      row[i + 2] = gray_table[row[i + 2]];
    }
  } else if (kind == COLOUR_MATRIX) {
    const double *lr = curves, *lg = curves + 256, *lb = curves + 512;
    for (int i = 0; i < n * 4; i += 4) {
      double r = lr[row[i]], g = lg[row[i + 1]], b = lb[row[i + 2]];
      row[i] = encode_table[table_index(m[0] * r + m[1] * g + m[2] * b + 0.5, encode_max)];
      row[i + 1] = encode_table[table_index(m[3] * r + m[4] * g + m[5] * b + 0.5, encode_max)];
      row[i + 2] = encode_table[table_index(m[6] * r + m[7] * g + m[8] * b + 0.5, encode_max)];
    }
  }
}
