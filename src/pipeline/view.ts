/**
 * Lossless geometry as a "view" of the decoded pixels: a rectangle of the image after one
 * of the 8 flips/rotations (the dihedral group D4: EXIF orientations, rot, flip). Orient,
 * crop, flip and rotate only change the view; `materialize` then produces its pixels in a
 * single pass (one index remap, or row copies when nothing turns), so any combination of
 * the four costs at most one copy of the pixels that survive the crop.
 */
import type { Rect } from "../transform/options";
import type { RgbaImage } from "../codecs/types";

/**
 * A signed permutation matrix acting on pixel positions: x' = a·x + b·y, y' = c·x + d·y,
 * each -1 counted from the far edge (x' = W - 1 - x). Exactly one of a/b and one of c/d is
 * non-zero. Composition is matrix multiplication.
 */
export interface Turn {
  readonly a: -1 | 0 | 1;
  readonly b: -1 | 0 | 1;
  readonly c: -1 | 0 | 1;
  readonly d: -1 | 0 | 1;
}

export const IDENTITY: Turn = { a: 1, b: 0, c: 0, d: 1 };
export const MIRROR_X: Turn = { a: -1, b: 0, c: 0, d: 1 };
export const MIRROR_Y: Turn = { a: 1, b: 0, c: 0, d: -1 };
export const ROTATE_180: Turn = { a: -1, b: 0, c: 0, d: -1 };
/** 90° clockwise: the top-left corner goes to the top-right. */
export const ROTATE_90: Turn = { a: 0, b: -1, c: 1, d: 0 };
export const ROTATE_270: Turn = { a: 0, b: 1, c: -1, d: 0 };
export const TRANSPOSE: Turn = { a: 0, b: 1, c: 1, d: 0 };
export const TRANSVERSE: Turn = { a: 0, b: -1, c: -1, d: 0 };

/** What turns stored pixels upright for each EXIF orientation (0 and unknown values = 1). */
export const EXIF_ORIENTATION: Readonly<Record<number, Turn>> = {
  1: IDENTITY,
  2: MIRROR_X,
  3: ROTATE_180,
  4: MIRROR_Y,
  5: TRANSPOSE,
  6: ROTATE_90,
  7: TRANSVERSE,
  8: ROTATE_270,
};

/** `second` after `first`. */
export function compose(second: Turn, first: Turn): Turn {
  return {
    a: sign(second.a * first.a + second.b * first.c),
    b: sign(second.a * first.b + second.b * first.d),
    c: sign(second.c * first.a + second.d * first.c),
    d: sign(second.c * first.b + second.d * first.d),
  };
}

export function isIdentity(turn: Turn): boolean {
  return turn.a === 1 && turn.d === 1;
}

/** True when the turn swaps width and height. */
export function swapsAxes(turn: Turn): boolean {
  return turn.a === 0;
}

/** Where pixel (x, y) of a W x H frame lands. */
function mapPoint(turn: Turn, x: number, y: number, w: number, h: number): [number, number] {
  const nx = turn.a === 1 ? x : turn.a === -1 ? w - 1 - x : turn.b === 1 ? y : h - 1 - y;
  const ny = turn.c === 1 ? x : turn.c === -1 ? w - 1 - x : turn.d === 1 ? y : h - 1 - y;
  return [nx, ny];
}

function inverse(turn: Turn): Turn {
  // Orthogonal: the inverse is the transpose.
  return { a: turn.a, b: turn.c, c: turn.b, d: turn.d };
}

/** A rectangle of the stored image after `turn`; width/height are the view's size. */
export interface View {
  /** Size of the stored (decoded) image. */
  readonly sourceWidth: number;
  readonly sourceHeight: number;
  readonly turn: Turn;
  /** In the turned frame. */
  readonly rect: Rect;
}

export function fullView(width: number, height: number): View {
  return { sourceWidth: width, sourceHeight: height, turn: IDENTITY, rect: { x: 0, y: 0, width, height } };
}

/** Size of the whole turned frame the view's rect lies in. */
function frameSize(view: View): [number, number] {
  return swapsAxes(view.turn) ? [view.sourceHeight, view.sourceWidth] : [view.sourceWidth, view.sourceHeight];
}

/** The view turned by `turn` (applied to what the view shows). */
export function turnView(view: View, turn: Turn): View {
  if (isIdentity(turn)) return view;
  // Turning the cropped view = turning the whole frame, then taking the image of the rect.
  const [fw, fh] = frameSize(view);
  const { x, y, width, height } = view.rect;
  const [x0, y0] = mapPoint(turn, x, y, fw, fh);
  const [x1, y1] = mapPoint(turn, x + width - 1, y + height - 1, fw, fh);
  return {
    ...view,
    turn: compose(turn, view.turn),
    rect: { x: Math.min(x0, x1), y: Math.min(y0, y1), width: Math.abs(x1 - x0) + 1, height: Math.abs(y1 - y0) + 1 },
  };
}

/** The part `rect` (in the view's own pixels, already validated to lie inside) of the view. */
export function cropView(view: View, rect: Rect): View {
  return { ...view, rect: { x: view.rect.x + rect.x, y: view.rect.y + rect.y, width: rect.width, height: rect.height } };
}

/**
 * Index arithmetic of a view: the stored pixel shown at view position (u, v) is
 * `base + u * stepU + v * stepV` (in pixels, not bytes).
 */
export interface ViewIndex {
  readonly base: number;
  readonly stepU: number;
  readonly stepV: number;
}

export function viewIndex(view: View): ViewIndex {
  const [fw, fh] = frameSize(view);
  const back = inverse(view.turn);
  const at = (u: number, v: number): number => {
    const [sx, sy] = mapPoint(back, view.rect.x + u, view.rect.y + v, fw, fh);
    return sy * view.sourceWidth + sx;
  };
  const base = at(0, 0);
  return { base, stepU: at(1, 0) - base, stepV: at(0, 1) - base };
}

/** The rectangle of the stored image that the view shows (stored pixels). */
export function storedRect(view: View): Rect {
  const [fw, fh] = frameSize(view);
  const back = inverse(view.turn);
  const { x, y, width, height } = view.rect;
  const [x0, y0] = mapPoint(back, x, y, fw, fh);
  const [x1, y1] = mapPoint(back, x + width - 1, y + height - 1, fw, fh);
  return { x: Math.min(x0, x1), y: Math.min(y0, y1), width: Math.abs(x1 - x0) + 1, height: Math.abs(y1 - y0) + 1 };
}

/** A rectangle with fractional edges. */
export interface RectF {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/**
 * Where a view of the full-resolution image lies in a copy decoded at 1/`shrink` (JPEG
 * shrink-on-load: stored pixel i of the copy covers full-resolution pixels i*shrink ..
 * (i+1)*shrink - 1, so its size is ceil(W / shrink) x ceil(H / shrink)), in the copy's own
 * (stored, unturned) frame: `window`, the outward-rounded rectangle of the decoded image, and
 * `region`, the exact rectangle (fractional) within the window that the view covers.
 */
export function scaledStoredRegion(view: View, shrink: number, decodedWidth: number, decodedHeight: number): { window: Rect; region: RectF } {
  const stored = storedRect(view);
  const sx = stored.x / shrink;
  const sy = stored.y / shrink;
  const sw = stored.width / shrink;
  const sh = stored.height / shrink;
  const x0 = Math.min(decodedWidth - 1, Math.floor(sx));
  const y0 = Math.min(decodedHeight - 1, Math.floor(sy));
  const x1 = Math.max(x0 + 1, Math.min(decodedWidth, Math.ceil(sx + sw - 1e-9)));
  const y1 = Math.max(y0 + 1, Math.min(decodedHeight, Math.ceil(sy + sh - 1e-9)));
  const ww = x1 - x0;
  const wh = y1 - y0;
  const ox = sx - x0;
  const oy = sy - y0;
  return {
    window: { x: x0, y: y0, width: ww, height: wh },
    region: { x: ox, y: oy, width: Math.min(sw, ww - ox), height: Math.min(sh, wh - oy) },
  };
}

/**
 * `scaledStoredRegion` seen through the view's turn: `window`, the outward-rounded view of the
 * decoded image (same turn), and `region`, the exact rectangle (fractional) within the window's
 * own frame that the full-resolution view covers.
 */
export function scaledView(view: View, shrink: number, decodedWidth: number, decodedHeight: number): { window: View; region: RectF } {
  const { window: stored, region: r } = scaledStoredRegion(view, shrink, decodedWidth, decodedHeight);
  const ww = stored.width;
  const wh = stored.height;
  const window = turnView({ sourceWidth: decodedWidth, sourceHeight: decodedHeight, turn: IDENTITY, rect: stored }, view.turn);
  // The fractional rectangle, turned like the window (continuous coordinates: x -> W - x).
  const t = view.turn;
  const map = (px: number, py: number): [number, number] => [
    t.a === 1 ? px : t.a === -1 ? ww - px : t.b === 1 ? py : wh - py,
    t.c === 1 ? px : t.c === -1 ? ww - px : t.d === 1 ? py : wh - py,
  ];
  const [ax, ay] = map(r.x, r.y);
  const [bx, by] = map(r.x + r.width, r.y + r.height);
  return {
    window,
    region: { x: Math.min(ax, bx), y: Math.min(ay, by), width: Math.abs(bx - ax), height: Math.abs(by - ay) },
  };
}

/**
 * The view's pixels. Returns `image` itself when the view is all of it, unturned; copies rows
 * when it is only cropped; otherwise remaps every pixel once (32-bit moves).
 */
export function materialize(image: RgbaImage, view: View): RgbaImage {
  if (image.width !== view.sourceWidth || image.height !== view.sourceHeight) {
    throw new RangeError("view does not belong to this image");
  }
  const { width, height } = view.rect;
  if (isIdentity(view.turn) && view.rect.x === 0 && view.rect.y === 0 && width === image.width && height === image.height) {
    return image;
  }
  const out = new Uint8ClampedArray(width * height * 4);
  const { base, stepU, stepV } = viewIndex(view);
  if (stepU === 1) {
    // Unturned or mirrored vertically only: whole rows are contiguous.
    for (let v = 0; v < height; v++) {
      const start = (base + v * stepV) * 4;
      out.set(image.data.subarray(start, start + width * 4), v * width * 4);
    }
  } else if (image.data.byteOffset % 4 === 0) {
    const src = new Uint32Array(image.data.buffer, image.data.byteOffset, image.data.length >>> 2);
    const dst = new Uint32Array(out.buffer);
    let o = 0;
    for (let v = 0; v < height; v++) {
      let i = base + v * stepV;
      for (let u = 0; u < width; u++, i += stepU) dst[o++] = src[i]!;
    }
  } else {
    const src = image.data;
    let o = 0;
    for (let v = 0; v < height; v++) {
      let i = base + v * stepV;
      for (let u = 0; u < width; u++, i += stepU, o += 4) {
        const s = i * 4;
        out[o] = src[s]!;
        out[o + 1] = src[s + 1]!;
        out[o + 2] = src[s + 2]!;
        out[o + 3] = src[s + 3]!;
      }
    }
  }
  return { width, height, data: out, hasAlpha: image.hasAlpha };
}

function sign(n: number): -1 | 0 | 1 {
  return n > 0 ? 1 : n < 0 ? -1 : 0;
}
