// The editor's model: a plain state object <-> the transform query string of README.md, and the
// output size the server will produce (the server's own resize maths, imported as is).
import { computeOutputGeometry } from "../../src/pipeline/geometry";

export const FITS = ["scale-down", "contain", "cover", "crop", "pad", "squeeze"] as const;
export type Fit = (typeof FITS)[number];

export const GRAVITIES = ["center", "top", "bottom", "left", "right", "top-left", "top-right", "bottom-left", "bottom-right", "auto", "focal"] as const;
export type GravityChoice = (typeof GRAVITIES)[number];

export const FORMATS = ["", "auto", "jpeg", "png", "webp", "avif"] as const;
export type FormatChoice = (typeof FORMATS)[number];

export const WM_POSITIONS = ["top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom", "bottom-right", "tile"] as const;
export type WatermarkPosition = (typeof WM_POSITIONS)[number];

export type Rotation = 0 | 90 | 180 | 270;

export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface Point {
  readonly x: number;
  readonly y: number;
}

export interface EditorState {
  /** Source pixels after EXIF orientation; null = the whole image. */
  readonly crop: Rect | null;
  readonly rot: Rotation;
  readonly flipH: boolean;
  readonly flipV: boolean;
  readonly w: number | null;
  readonly h: number | null;
  readonly dpr: number;
  readonly fit: Fit;
  readonly gravity: GravityChoice;
  /** The focal point for gravity "focal", in 0..1 of the image reaching the resize (after crop and rotate). */
  readonly focal: Point;
  readonly fmt: FormatChoice;
  readonly q: number | null;
  readonly blur: number;
  readonly sharpen: number;
  /** rrggbb, no '#'. */
  readonly bg: string;
  readonly wm: string | null;
  readonly wmPos: WatermarkPosition;
  readonly wmScale: number;
  readonly wmOp: number;
  readonly wmPad: number;
}

export const DEFAULT_STATE: EditorState = Object.freeze({
  crop: null,
  rot: 0,
  flipH: false,
  flipV: false,
  w: null,
  h: null,
  dpr: 1,
  fit: "scale-down",
  gravity: "center",
  focal: { x: 0.5, y: 0.5 },
  fmt: "auto",
  q: null,
  blur: 0,
  sharpen: 0,
  bg: "ffffff",
  wm: null,
  wmPos: "bottom-right",
  wmScale: 0.25,
  wmOp: 1,
  wmPad: 16,
});

const trimNumber = (n: number, places: number): string => String(Number(n.toFixed(places)));

/** True when the crop covers the whole image (then it is left out). */
export const isFullCrop = (crop: Rect | null, width: number, height: number): boolean =>
  crop === null || (crop.x === 0 && crop.y === 0 && crop.width === width && crop.height === height);

/** The transform query string (no leading '?'), defaults left out; "" is the original. */
export function toQuery(state: EditorState, source: { width: number; height: number }): string {
  const parts: string[] = [];
  if (state.w !== null) parts.push(`w=${state.w}`);
  if (state.h !== null) parts.push(`h=${state.h}`);
  if (state.dpr !== 1 && (state.w !== null || state.h !== null)) parts.push(`dpr=${trimNumber(state.dpr, 3)}`);
  if (state.fit !== "scale-down") parts.push(`fit=${state.fit}`);
  if (state.gravity === "focal") parts.push(`g=${trimNumber(state.focal.x, 3)}x${trimNumber(state.focal.y, 3)}`);
  else if (state.gravity !== "center") parts.push(`g=${state.gravity}`);
  if (state.crop && !isFullCrop(state.crop, source.width, source.height)) {
    const c = state.crop;
    parts.push(`crop=${c.x},${c.y},${c.width},${c.height}`);
  }
  if (state.rot !== 0) parts.push(`rot=${state.rot}`);
  const flip = `${state.flipH ? "h" : ""}${state.flipV ? "v" : ""}`;
  if (flip) parts.push(`flip=${flip}`);
  if (state.fmt) parts.push(`fmt=${state.fmt}`);
  if (state.q !== null) parts.push(`q=${state.q}`);
  if (state.blur > 0) parts.push(`blur=${trimNumber(state.blur, 1)}`);
  if (state.sharpen > 0) parts.push(`sharpen=${trimNumber(state.sharpen, 1)}`);
  if (state.bg.toLowerCase() !== "ffffff") parts.push(`bg=${state.bg.toLowerCase()}`);
  if (state.wm) {
    parts.push(`wm=${state.wm}`);
    if (state.wmPos !== DEFAULT_STATE.wmPos) parts.push(`wm_pos=${state.wmPos}`);
    if (state.wmScale !== DEFAULT_STATE.wmScale) parts.push(`wm_scale=${trimNumber(state.wmScale, 3)}`);
    if (state.wmOp !== DEFAULT_STATE.wmOp) parts.push(`wm_op=${trimNumber(state.wmOp, 2)}`);
    if (state.wmPad !== DEFAULT_STATE.wmPad) parts.push(`wm_pad=${state.wmPad}`);
  }
  return parts.join("&");
}

const NAMED: Readonly<Record<string, Point>> = {
  center: { x: 0.5, y: 0.5 },
  top: { x: 0.5, y: 0 },
  bottom: { x: 0.5, y: 1 },
  left: { x: 0, y: 0.5 },
  right: { x: 1, y: 0.5 },
  "top-left": { x: 0, y: 0 },
  "top-right": { x: 1, y: 0 },
  "bottom-left": { x: 0, y: 1 },
  "bottom-right": { x: 1, y: 1 },
};

const includes = <T extends string>(list: readonly T[], value: string): value is T => (list as readonly string[]).includes(value);

function positiveInt(raw: string | null): number | null {
  if (raw === null || !/^\d+$/.test(raw)) return null;
  const n = Number(raw);
  return n >= 1 ? n : null;
}

function numberIn(raw: string | null, min: number, max: number): number | null {
  if (raw === null || raw.trim() === "") return null;
  const n = Number(raw);
  return Number.isFinite(n) && n >= min && n <= max ? n : null;
}

/** Reads a query string back into state; values it does not understand are left at their defaults. */
export function fromQuery(query: string, source: { width: number; height: number }): EditorState {
  const params = new URLSearchParams(query);
  // A fresh editor starts at fmt=auto; a URL given without fmt keeps the original format.
  if ([...params.keys()].length === 0) return DEFAULT_STATE;
  let state: EditorState = DEFAULT_STATE;
  const set = (change: Partial<EditorState>): void => void (state = { ...state, ...change });
  const w = positiveInt(params.get("w"));
  const h = positiveInt(params.get("h"));
  set({ w, h });
  const dpr = numberIn(params.get("dpr"), 1, 4);
  if (dpr !== null) set({ dpr });
  const fit = params.get("fit");
  if (fit && includes(FITS, fit)) set({ fit });
  const g = params.get("g");
  if (g) {
    if (g === "auto" || Object.hasOwn(NAMED, g)) set({ gravity: g as GravityChoice });
    else {
      const [x, y] = g.split("x").map((part) => numberIn(part, 0, 1));
      if (x !== null && x !== undefined && y !== null && y !== undefined) set({ gravity: "focal", focal: { x, y } });
    }
  }
  const crop = params.get("crop")?.split(",").map((part) => (/^\d+$/.test(part) ? Number(part) : NaN));
  if (crop && crop.length === 4 && crop.every(Number.isFinite)) {
    set({ crop: clampCrop({ x: crop[0]!, y: crop[1]!, width: crop[2]!, height: crop[3]! }, source.width, source.height) });
  }
  const rot = params.get("rot");
  if (rot === "90" || rot === "180" || rot === "270") set({ rot: Number(rot) as Rotation });
  const flip = params.get("flip") ?? "";
  set({ flipH: flip.includes("h"), flipV: flip.includes("v") });
  const fmt = params.get("fmt");
  set({ fmt: fmt !== null && includes(FORMATS, fmt) ? fmt : "" });
  const q = numberIn(params.get("q"), 1, 100);
  if (q !== null) set({ q: Math.round(q) });
  set({ blur: numberIn(params.get("blur"), 0, 250) ?? 0, sharpen: numberIn(params.get("sharpen"), 0, 10) ?? 0 });
  const bg = params.get("bg");
  if (bg && /^#?[0-9a-fA-F]{6}$/.test(bg)) set({ bg: bg.replace("#", "").toLowerCase() });
  const wm = params.get("wm");
  if (wm && /^[A-Za-z0-9_-]{1,64}$/.test(wm)) {
    const pos = params.get("wm_pos");
    set({
      wm,
      wmPos: pos && includes(WM_POSITIONS, pos) ? pos : DEFAULT_STATE.wmPos,
      wmScale: numberIn(params.get("wm_scale"), 0.001, 1) ?? DEFAULT_STATE.wmScale,
      wmOp: numberIn(params.get("wm_op"), 0, 1) ?? DEFAULT_STATE.wmOp,
      wmPad: numberIn(params.get("wm_pad"), 0, 1000) ?? DEFAULT_STATE.wmPad,
    });
  }
  return state;
}

/** Integer crop inside the image, at least 1 px. */
export function clampCrop(crop: Rect, width: number, height: number): Rect {
  const w = Math.max(1, Math.min(Math.round(crop.width), width));
  const h = Math.max(1, Math.min(Math.round(crop.height), height));
  const x = Math.max(0, Math.min(Math.round(crop.x), width - w));
  const y = Math.max(0, Math.min(Math.round(crop.y), height - h));
  return { x, y, width: w, height: h };
}

/** The largest rect of the aspect ratio inside `within`, centred on it. */
export function fitAspect(within: Rect, ratio: number): Rect {
  let width = within.width;
  let height = width / ratio;
  if (height > within.height) {
    height = within.height;
    width = height * ratio;
  }
  return { x: within.x + (within.width - width) / 2, y: within.y + (within.height - height) / 2, width, height };
}

/** Size of the image reaching the resize step: the crop, turned by the rotation. */
export function rotatedSize(state: EditorState, source: { width: number; height: number }): { width: number; height: number } {
  const crop = state.crop ?? { x: 0, y: 0, width: source.width, height: source.height };
  return state.rot === 90 || state.rot === 270 ? { width: crop.height, height: crop.width } : { width: crop.width, height: crop.height };
}

/** Device pixels, rounded as the server does (CSS px × dpr, half up at thousandths). */
const devicePixels = (css: number | null, dpr: number): number | undefined => (css === null ? undefined : Math.floor((css * Math.round(dpr * 1000) + 500) / 1000));

export function gravityPoint(state: EditorState): Point | null {
  if (state.gravity === "auto") return null;
  if (state.gravity === "focal") return state.focal;
  return NAMED[state.gravity] ?? NAMED["center"]!;
}

/** The server's resize plan for this state (gravity auto is shown as centre). */
export function outputGeometry(state: EditorState, source: { width: number; height: number }) {
  const size = rotatedSize(state, source);
  const width = devicePixels(state.w, state.dpr);
  const height = devicePixels(state.h, state.dpr);
  const point = gravityPoint(state) ?? { x: 0.5, y: 0.5 };
  return {
    input: size,
    ...computeOutputGeometry(size.width, size.height, {
      ...(width === undefined ? {} : { width }),
      ...(height === undefined ? {} : { height }),
      fit: state.fit,
      gravity: { mode: "point", x: point.x, y: point.y },
    }),
  };
}

/**
 * A point in 0..1 of the crop (before flip and rotate) -> 0..1 of the image after them.
 * Flip first, then rotate clockwise, as the server does.
 */
export function toRotated(point: Point, state: Pick<EditorState, "flipH" | "flipV" | "rot">): Point {
  let { x, y } = point;
  if (state.flipH) x = 1 - x;
  if (state.flipV) y = 1 - y;
  switch (state.rot) {
    case 90:
      return { x: 1 - y, y: x };
    case 180:
      return { x: 1 - x, y: 1 - y };
    case 270:
      return { x: y, y: 1 - x };
    default:
      return { x, y };
  }
}

/** The inverse of toRotated. */
export function fromRotated(point: Point, state: Pick<EditorState, "flipH" | "flipV" | "rot">): Point {
  let { x, y } = point;
  switch (state.rot) {
    case 90:
      [x, y] = [y, 1 - x];
      break;
    case 180:
      [x, y] = [1 - x, 1 - y];
      break;
    case 270:
      [x, y] = [1 - y, x];
      break;
    default:
      break;
  }
  if (state.flipH) x = 1 - x;
  if (state.flipV) y = 1 - y;
  return { x, y };
}
