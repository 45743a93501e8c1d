/**
 * The transform parameter parser: query string of `GET /i/:id` -> validated, fully defaulted
 * TransformOptions, and TransformOptions -> canonical string (the cache key and the text that
 * signed URLs cover).
 *
 * Pure and data-driven, after imgproxy's options/parser: one table maps each public name to a
 * small typed applier (and to its canonical printer). Every bad input becomes a 400
 * ProblemError with sharp's "Expected X for NAME but received Y"; nothing else is thrown.
 */
import { invalidParameter, ProblemError } from "../errors";
import type { OutputFormat } from "../images/format";
import type { Fit, Gravity, Rect, Rgba, TransformOptions, WatermarkOptions, WatermarkPosition } from "./options";

// ---------------------------------------------------------------------------------------------
// Public API

export interface TransformLimits {
  /** Largest output side in device px (w × dpr, h × dpr). */
  readonly maxSide: number;
  /** Largest output area in device px (w × h, both given). */
  readonly maxPixels: number;
}

export const DEFAULT_LIMITS: TransformLimits = Object.freeze({ maxSide: 8192, maxPixels: 50_000_000 });

export interface ParseContext {
  /** Returns the query string a preset stands for, or undefined when there is no such preset. */
  readonly resolvePreset?: (name: string) => string | undefined;
  readonly limits?: Partial<TransformLimits>;
}

export interface TransformSignature {
  readonly sig: string;
  /** Expiry in Unix seconds; checked by the signature verifier, not here. */
  readonly exp?: number;
}

export interface ParsedTransform {
  readonly options: TransformOptions;
  /** The preset name given with `p`, for logging; its parameters are already merged into options. */
  readonly preset?: string;
  /** `sig`/`exp`, passed through untouched by the options and the canonical string. */
  readonly signature?: TransformSignature;
}

/** Watermark defaults; `wm_pad` is 16 output px, a common UI margin that stays clear of the edge. */
export const DEFAULT_WATERMARK: Omit<WatermarkOptions, "imageId"> = Object.freeze({
  position: "bottom-right",
  scale: 0.25,
  opacity: 1,
  padding: 16,
});

/** The identity transform: serve the original bytes. Frozen: parsed options share its objects. */
export const DEFAULT_TRANSFORM: TransformOptions = Object.freeze({
  fit: "scale-down",
  gravity: Object.freeze({ mode: "point", x: 0.5, y: 0.5 }),
  rotate: 0,
  flip: "none",
  blur: 0,
  sharpen: 0,
  background: Object.freeze({ r: 255, g: 255, b: 255, a: 255 }),
});

/**
 * Parses the query string of an image URL. Throws only ProblemError (status 400) for bad input;
 * an exception from `ctx.resolvePreset` itself is passed through.
 */
export function parseTransform(query: URLSearchParams, ctx: ParseContext = {}): ParsedTransform {
  const limits: TransformLimits = {
    maxSide: ctx.limits?.maxSide ?? DEFAULT_LIMITS.maxSide,
    maxPixels: ctx.limits?.maxPixels ?? DEFAULT_LIMITS.maxPixels,
  };
  const url = collect(query, undefined);

  // Signature fields and the preset name are not transform parameters: take them out first.
  const signature = parseSignature(url.get("sig"), url.get("exp"));
  const presetName = url.get("p");

  const given = new Map<TransformParam, GivenValue>();
  if (presetName !== undefined) {
    for (const [name, raw] of readPreset(presetName, ctx.resolvePreset)) given.set(name, { raw, preset: presetName });
  }
  // Explicit URL parameters override the preset's (imgproxy's preset semantics).
  for (const [name, raw] of url) {
    if (isTransformParam(name)) given.set(name, { raw });
  }

  return {
    options: build(given, limits),
    ...(presetName === undefined ? {} : { preset: presetName }),
    ...(signature === undefined ? {} : { signature }),
  };
}

/**
 * The canonical query string of `options`: keys sorted, defaults left out, dpr folded into w/h,
 * numbers in shortest form. Equivalent URLs give the same string; "" means identity. It parses
 * back to the same options. `fmt=auto` stays in: the caller adds the negotiated format to the key.
 */
export function canonicalString(options: TransformOptions): string {
  const parts: string[] = [];
  for (const name of CANONICAL_ORDER) {
    const value = PARAMS[name].print?.(options);
    if (value !== undefined) parts.push(`${name}=${value}`);
  }
  return parts.join("&");
}

/** True when the options ask for nothing: the original can be served as is. */
export function isIdentity(options: TransformOptions): boolean {
  return canonicalString(options) === "";
}

// ---------------------------------------------------------------------------------------------
// The parameter table

/** What the appliers fill in; turned into TransformOptions by `build` once every value is read. */
interface Draft {
  cssWidth?: number;
  cssHeight?: number;
  /** dpr in thousandths, so w × dpr rounds exactly. */
  dprMilli: number;
  fit: Fit;
  gravity: Gravity;
  crop?: Rect;
  rotate: TransformOptions["rotate"];
  flip: TransformOptions["flip"];
  format?: OutputFormat | "auto";
  quality?: number;
  blur: number;
  sharpen: number;
  background: Rgba;
  wmId?: string;
  wmPosition: WatermarkPosition;
  wmScale: number;
  wmOpacity: number;
  wmPadding: number;
}

interface Param {
  /** Validates one raw value and records it on the draft; throws invalidParameter otherwise. */
  readonly apply: (draft: Draft, raw: string) => void;
  /** The canonical value, or undefined for the default (left out). dpr has none: it is folded into w/h. */
  readonly print?: (options: TransformOptions) => string | undefined;
}

const FITS: Readonly<Record<string, Fit>> = {
  "scale-down": "scale-down",
  contain: "contain",
  cover: "cover",
  crop: "crop",
  pad: "pad",
  squeeze: "squeeze",
};

/** Named gravities are shorthands for focal points, so `g=top` and `g=0.5x0` are the same request. */
const NAMED_POINTS: Readonly<Record<string, readonly [x: number, y: number]>> = {
  center: [0.5, 0.5],
  top: [0.5, 0],
  bottom: [0.5, 1],
  left: [0, 0.5],
  right: [1, 0.5],
  "top-left": [0, 0],
  "top-right": [1, 0],
  "bottom-left": [0, 1],
  "bottom-right": [1, 1],
};

const ROTATIONS: Readonly<Record<string, TransformOptions["rotate"]>> = { "0": 0, "90": 90, "180": 180, "270": 270 };

const FLIPS: Readonly<Record<string, TransformOptions["flip"]>> = { h: "h", v: "v", hv: "hv", vh: "hv" };

const FORMATS: Readonly<Record<string, OutputFormat | "auto">> = {
  jpeg: "jpeg",
  jpg: "jpeg",
  png: "png",
  webp: "webp",
  avif: "avif",
  auto: "auto",
};

const WATERMARK_POSITIONS: Readonly<Record<string, WatermarkPosition>> = {
  "top-left": "top-left",
  top: "top",
  "top-right": "top-right",
  left: "left",
  center: "center",
  right: "right",
  "bottom-left": "bottom-left",
  bottom: "bottom",
  "bottom-right": "bottom-right",
  tile: "tile",
};

/** Sanity bound for crop coordinates: the largest JPEG side; real bounds are the source's, checked later. */
const MAX_CROP_COORD = 65535;

const IMAGE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const PRESET_NAME = /^[a-z0-9_-]{1,64}$/;
const SIGNATURE = /^[A-Za-z0-9_-]{1,256}$/;

const PARAMS = defineParams({
  w: {
    apply: (d, raw) => {
      d.cssWidth = positiveInteger("w", raw);
    },
    print: (o) => optionalNumber(o.width),
  },
  h: {
    apply: (d, raw) => {
      d.cssHeight = positiveInteger("h", raw);
    },
    print: (o) => optionalNumber(o.height),
  },
  dpr: {
    // Read to 3 decimals: browsers report ratios like 1.100000023841858.
    apply: (d, raw) => {
      d.dprMilli = Math.round(decimal("dpr", raw, 1, 4, 3) * 1000);
    },
  },
  fit: {
    apply: (d, raw) => {
      d.fit = oneOf("fit", raw, FITS);
    },
    print: (o) => unlessDefault(o.fit, DEFAULT_TRANSFORM.fit),
  },
  g: {
    apply: (d, raw) => {
      d.gravity = gravity(raw);
    },
    print: (o) => printGravity(o.gravity),
  },
  crop: {
    apply: (d, raw) => {
      d.crop = cropRect(raw);
    },
    print: (o) => (o.crop === undefined ? undefined : `${o.crop.x},${o.crop.y},${o.crop.width},${o.crop.height}`),
  },
  rot: {
    apply: (d, raw) => {
      d.rotate = oneOf("rot", raw, ROTATIONS);
    },
    print: (o) => unlessDefault(String(o.rotate), String(DEFAULT_TRANSFORM.rotate)),
  },
  flip: {
    apply: (d, raw) => {
      d.flip = oneOf("flip", raw, FLIPS);
    },
    print: (o) => unlessDefault(o.flip, DEFAULT_TRANSFORM.flip),
  },
  fmt: {
    apply: (d, raw) => {
      d.format = oneOf("fmt", raw, FORMATS);
    },
    print: (o) => o.format,
  },
  q: {
    apply: (d, raw) => {
      d.quality = integer("q", raw, 1, 100);
    },
    print: (o) => optionalNumber(o.quality),
  },
  blur: {
    // Tenths of a pixel: finer radii look the same and would only split the cache.
    apply: (d, raw) => {
      d.blur = decimal("blur", raw, 0, 250, 1);
    },
    print: (o) => unlessDefault(formatNumber(o.blur), "0"),
  },
  sharpen: {
    apply: (d, raw) => {
      d.sharpen = decimal("sharpen", raw, 0, 10, 1);
    },
    print: (o) => unlessDefault(formatNumber(o.sharpen), "0"),
  },
  bg: {
    apply: (d, raw) => {
      d.background = hexColour("bg", raw);
    },
    print: (o) => unlessDefault(printColour(o.background), printColour(DEFAULT_TRANSFORM.background)),
  },
  wm: {
    apply: (d, raw) => {
      d.wmId = matching("wm", raw, IMAGE_ID, "image id of 1 to 64 characters A-Z a-z 0-9 _ -");
    },
    print: (o) => o.watermark?.imageId,
  },
  wm_pos: {
    apply: (d, raw) => {
      d.wmPosition = oneOf("wm_pos", raw, WATERMARK_POSITIONS);
    },
    print: (o) => watermarkField(o, (w) => w.position, DEFAULT_WATERMARK.position),
  },
  wm_scale: {
    // Thousandths of the output width; 0.001 is the floor so a watermark never vanishes.
    apply: (d, raw) => {
      d.wmScale = decimal("wm_scale", raw, 0.001, 1, 3);
    },
    print: (o) => watermarkField(o, (w) => formatNumber(w.scale), formatNumber(DEFAULT_WATERMARK.scale)),
  },
  wm_op: {
    // Hundredths: finer steps are below what 8-bit alpha shows.
    apply: (d, raw) => {
      d.wmOpacity = decimal("wm_op", raw, 0, 1, 2);
    },
    print: (o) => watermarkField(o, (w) => formatNumber(w.opacity), formatNumber(DEFAULT_WATERMARK.opacity)),
  },
  wm_pad: {
    apply: (d, raw) => {
      d.wmPadding = integer("wm_pad", raw, 0, 1000);
    },
    print: (o) => watermarkField(o, (w) => String(w.padding), String(DEFAULT_WATERMARK.padding)),
  },
});

type TransformParam = keyof typeof PARAMS;

/** Keeps the literal keys (for TransformParam) while typing every entry as a Param. */
function defineParams<K extends string>(table: Record<K, Param>): Readonly<Record<K, Param>> {
  return table;
}

/** Parameters that are not transforms but may appear in the URL. */
const PASSTHROUGH = ["p", "sig", "exp"] as const;

const WATERMARK_PARAMS = ["wm_pos", "wm_scale", "wm_op", "wm_pad"] as const;

const CANONICAL_ORDER: readonly TransformParam[] = (Object.keys(PARAMS) as TransformParam[]).sort();

const KNOWN_NAMES = [...Object.keys(PARAMS), ...PASSTHROUGH].join(", ");

function isTransformParam(name: string): name is TransformParam {
  return Object.hasOwn(PARAMS, name);
}

// ---------------------------------------------------------------------------------------------
// Collecting, presets, building

/**
 * Reads the raw pairs: unknown names and a name repeated with different values are errors
 * (which value would win is a guess we refuse to make); exact repeats are harmless.
 */
function collect(query: URLSearchParams, preset: string | undefined): Map<string, string> {
  const given = new Map<string, string>();
  for (const [name, raw] of query) {
    if (!isTransformParam(name) && !(PASSTHROUGH as readonly string[]).includes(name)) {
      throw inPreset(
        new ProblemError(400, "unknown-parameter", `Unknown parameter ${quote(name)}; expected one of ${KNOWN_NAMES}`, {
          parameter: quote(name).slice(1, -1),
          expected: `one of ${KNOWN_NAMES}`,
          received: quote(name),
        }),
        preset,
      );
    }
    const previous = given.get(name);
    if (previous !== undefined && previous !== raw) {
      throw inPreset(invalidParameter(name, "a single value", `${quote(previous)} and ${quote(raw)}`), preset);
    }
    given.set(name, raw);
  }
  return given;
}

/** A raw value and, when it came from a preset, the preset's name (for error messages). */
interface GivenValue {
  readonly raw: string;
  readonly preset?: string;
}

function readPreset(name: string, resolvePreset: ParseContext["resolvePreset"]): Map<TransformParam, string> {
  matching("p", name, PRESET_NAME, "preset name of 1 to 64 characters a-z 0-9 _ -");
  const text = resolvePreset?.(name);
  if (text === undefined) throw invalidParameter("p", "the name of a configured preset", quote(name));
  const params = new Map<TransformParam, string>();
  for (const [key, raw] of collect(new URLSearchParams(text), name)) {
    // Only p/sig/exp fail this: presets cannot name presets, and a signature belongs to a URL.
    if (!isTransformParam(key)) throw invalidParameter("p", "a preset without p, sig or exp", `${quote(name)} which sets ${key}`);
    params.set(key, raw);
  }
  return params;
}

function build(given: ReadonlyMap<TransformParam, GivenValue>, limits: TransformLimits): TransformOptions {
  const draft: Draft = {
    dprMilli: 1000,
    fit: DEFAULT_TRANSFORM.fit,
    gravity: DEFAULT_TRANSFORM.gravity,
    rotate: DEFAULT_TRANSFORM.rotate,
    flip: DEFAULT_TRANSFORM.flip,
    blur: DEFAULT_TRANSFORM.blur,
    sharpen: DEFAULT_TRANSFORM.sharpen,
    background: DEFAULT_TRANSFORM.background,
    wmPosition: DEFAULT_WATERMARK.position,
    wmScale: DEFAULT_WATERMARK.scale,
    wmOpacity: DEFAULT_WATERMARK.opacity,
    wmPadding: DEFAULT_WATERMARK.padding,
  };
  for (const [name, { raw, preset }] of given) {
    try {
      PARAMS[name].apply(draft, raw);
    } catch (error) {
      // Name the preset when the bad value came from it rather than from the URL.
      throw error instanceof ProblemError ? inPreset(error, preset) : error;
    }
  }

  if (draft.wmId === undefined) {
    const stray = WATERMARK_PARAMS.find((name) => given.has(name));
    if (stray !== undefined) throw invalidParameter(stray, "wm to be set", "no wm");
  }

  const width = devicePixels("w", draft.cssWidth, draft.dprMilli, limits);
  const height = devicePixels("h", draft.cssHeight, draft.dprMilli, limits);
  if (width !== undefined && height !== undefined && width * height > limits.maxPixels) {
    throw new ProblemError(
      400,
      "output-too-large",
      `Expected at most ${limits.maxPixels} output pixels for w,h but received ${width}x${height}`,
      { parameter: "w,h", expected: `at most ${limits.maxPixels} output pixels`, received: `${width}x${height}` },
    );
  }

  return {
    ...(width === undefined ? {} : { width }),
    ...(height === undefined ? {} : { height }),
    fit: draft.fit,
    gravity: draft.gravity,
    ...(draft.crop === undefined ? {} : { crop: draft.crop }),
    rotate: draft.rotate,
    flip: draft.flip,
    ...(draft.format === undefined ? {} : { format: draft.format }),
    ...(draft.quality === undefined ? {} : { quality: draft.quality }),
    blur: draft.blur,
    sharpen: draft.sharpen,
    background: draft.background,
    ...(draft.wmId === undefined
      ? {}
      : {
          watermark: {
            imageId: draft.wmId,
            position: draft.wmPosition,
            scale: draft.wmScale,
            opacity: draft.wmOpacity,
            padding: draft.wmPadding,
          },
        }),
  };
}

/** CSS px × dpr, rounded half up, within the output cap. */
function devicePixels(name: "w" | "h", css: number | undefined, dprMilli: number, limits: TransformLimits): number | undefined {
  if (css === undefined) return undefined;
  // Integer arithmetic is exact for any css below 2^53 / 4000, far beyond any cap.
  const device = Math.floor((css * dprMilli + 500) / 1000);
  if (device > limits.maxSide) {
    const received = dprMilli === 1000 ? `${device}` : `${device} (${css} at dpr ${formatNumber(dprMilli / 1000)})`;
    throw new ProblemError(400, "output-too-large", `Expected at most ${limits.maxSide} px for ${name} but received ${received}`, {
      parameter: name,
      expected: `at most ${limits.maxSide} px`,
      received,
    });
  }
  return device;
}

function parseSignature(sig: string | undefined, exp: string | undefined): TransformSignature | undefined {
  if (sig === undefined) {
    if (exp !== undefined) throw invalidParameter("exp", "sig to be set", "no sig");
    return undefined;
  }
  matching("sig", sig, SIGNATURE, "signature of 1 to 256 characters A-Z a-z 0-9 _ -");
  if (exp === undefined) return { sig };
  return { sig, exp: integer("exp", exp, 0, Number.MAX_SAFE_INTEGER, "expiry time in Unix seconds") };
}

function inPreset(error: ProblemError, preset: string | undefined): ProblemError {
  if (preset === undefined) return error;
  return new ProblemError(error.status, error.code, `${error.detail} in preset ${quote(preset)}`, {
    ...error.extras,
    preset: quote(preset),
  });
}

// ---------------------------------------------------------------------------------------------
// Value readers: each returns a typed value or throws invalidParameter naming the parameter.

function positiveInteger(name: string, raw: string): number {
  // No upper bound here: the output cap reports oversize w/h with a better message.
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw invalidParameter(name, "positive integer", quote(raw));
  return Number(raw);
}

function integer(name: string, raw: string, min: number, max: number, expected = `integer from ${min} to ${max}`): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) throw invalidParameter(name, expected, quote(raw));
  return value;
}

/**
 * A plain decimal (`2`, `2.5`, `.5`; no sign, exponent or hex) within [min, max] as written,
 * rounded half up to `places` decimals on its digits, so `0.50` and `0.5` are one value and
 * binary floating point never decides a tie.
 */
function decimal(name: string, raw: string, min: number, max: number, places: number): number {
  const match = /^(\d*)(?:\.(\d*))?$/.exec(raw);
  const value = Number(raw);
  if (match === null || !/\d/.test(raw) || value < min || value > max) {
    throw invalidParameter(name, `number from ${min} to ${max}`, quote(raw));
  }
  const whole = Number(match[1] === undefined || match[1] === "" ? "0" : match[1]);
  const fraction = (match[2] ?? "").padEnd(places + 1, "0");
  const scale = 10 ** places;
  const units = whole * scale + Number(fraction.slice(0, places) || "0") + (Number(fraction.charAt(places)) >= 5 ? 1 : 0);
  return units / scale;
}

function oneOf<T>(name: string, raw: string, table: Readonly<Record<string, T>>): T {
  // hasOwn, not `in`: `fit=constructor` must not find Object.prototype.
  const value = Object.hasOwn(table, raw) ? table[raw] : undefined;
  if (value === undefined) throw invalidParameter(name, `one of ${Object.keys(table).join(", ")}`, quote(raw));
  return value;
}

function matching(name: string, raw: string, pattern: RegExp, expected: string): string {
  if (!pattern.test(raw)) throw invalidParameter(name, expected, quote(raw));
  return raw;
}

const GRAVITY_EXPECTED = `one of ${Object.keys(NAMED_POINTS).join(", ")}, auto, or a focal point XxY with X and Y from 0 to 1`;

function gravity(raw: string): Gravity {
  if (raw === "auto") return { mode: "auto" };
  const named = Object.hasOwn(NAMED_POINTS, raw) ? NAMED_POINTS[raw] : undefined;
  if (named !== undefined) return { mode: "point", x: named[0], y: named[1] };
  const parts = raw.split("x");
  if (parts.length !== 2) throw invalidParameter("g", GRAVITY_EXPECTED, quote(raw));
  try {
    // Ten-thousandths: under a pixel even at 8192 px.
    return { mode: "point", x: decimal("g", parts[0] ?? "", 0, 1, 4), y: decimal("g", parts[1] ?? "", 0, 1, 4) };
  } catch {
    throw invalidParameter("g", GRAVITY_EXPECTED, quote(raw));
  }
}

function printGravity(g: Gravity): string | undefined {
  if (g.mode === "auto") return "auto";
  if (g.x === 0.5 && g.y === 0.5) return undefined;
  // Print the name when there is one: shorter and readable in logs.
  for (const [name, [x, y]] of Object.entries(NAMED_POINTS)) {
    if (g.x === x && g.y === y) return name;
  }
  return `${formatNumber(g.x)}x${formatNumber(g.y)}`;
}

const CROP_EXPECTED = `x,y,w,h integers with x,y from 0 and w,h from 1, all at most ${MAX_CROP_COORD}`;

function cropRect(raw: string): Rect {
  const parts = raw.split(",");
  const numbers = parts.map(Number);
  const [x, y, width, height] = numbers;
  if (
    parts.length !== 4 ||
    !parts.every((part) => /^\d+$/.test(part)) ||
    x === undefined ||
    y === undefined ||
    width === undefined ||
    height === undefined ||
    width < 1 ||
    height < 1 ||
    numbers.some((n) => n > MAX_CROP_COORD)
  ) {
    throw invalidParameter("crop", CROP_EXPECTED, quote(raw));
  }
  return { x, y, width, height };
}

/** `rgb`, `rgba`, `rrggbb` or `rrggbbaa`, with or without `#` (sent as %23). */
function hexColour(name: string, raw: string): Rgba {
  const hex = raw.startsWith("#") ? raw.slice(1) : raw;
  if (!/^(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/.test(hex)) {
    throw invalidParameter(name, "hex colour rgb, rgba, rrggbb or rrggbbaa", quote(raw));
  }
  const full = hex.length <= 4 ? [...hex].map((c) => c + c).join("") : hex;
  const byte = (i: number): number => parseInt(full.slice(i * 2, i * 2 + 2), 16);
  return { r: byte(0), g: byte(1), b: byte(2), a: full.length === 8 ? byte(3) : 255 };
}

function printColour(c: Rgba): string {
  const hex = (n: number): string => n.toString(16).padStart(2, "0");
  return hex(c.r) + hex(c.g) + hex(c.b) + (c.a === 255 ? "" : hex(c.a));
}

// ---------------------------------------------------------------------------------------------
// Printing helpers

/** Shortest decimal form; values are already rounded to a few places, so never an exponent. */
function formatNumber(n: number): string {
  return String(n);
}

function optionalNumber(n: number | undefined): string | undefined {
  return n === undefined ? undefined : formatNumber(n);
}

function unlessDefault(value: string, defaultValue: string): string | undefined {
  return value === defaultValue ? undefined : value;
}

function watermarkField(
  o: TransformOptions,
  read: (w: WatermarkOptions) => string,
  defaultValue: string,
): string | undefined {
  return o.watermark === undefined ? undefined : unlessDefault(read(o.watermark), defaultValue);
}

const MAX_ECHO = 64;

/** A received value made safe to echo: truncated, quoted, anything but plain ASCII escaped. */
function quote(raw: string): string {
  const cut = raw.length > MAX_ECHO ? raw.slice(0, MAX_ECHO) : raw;
  const escaped = cut.replace(/[^\x20-\x7e]|["\\<>&]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return `"${escaped}"${cut.length < raw.length ? "..." : ""}`;
}

// ---------------------------------------------------------------------------------------------
// For the API reference (src/http/openapi.ts): the names and words above, so the docs cannot drift.

/** Every query parameter an image URL accepts: the transforms, then `p`, `sig` and `exp`. */
export type TransformQueryName = TransformParam | (typeof PASSTHROUGH)[number];

export const TRANSFORM_QUERY_NAMES: readonly TransformQueryName[] = [...(Object.keys(PARAMS) as TransformParam[]), ...PASSTHROUGH];

/** The accepted words of the enumerated parameters (`g` also takes a focal point `XxY`). */
export const TRANSFORM_CHOICES = {
  fit: Object.keys(FITS),
  g: [...Object.keys(NAMED_POINTS), "auto"],
  rot: Object.keys(ROTATIONS),
  flip: Object.keys(FLIPS),
  fmt: Object.keys(FORMATS),
  wm_pos: Object.keys(WATERMARK_POSITIONS),
} as const satisfies Partial<Record<TransformParam, readonly string[]>>;
