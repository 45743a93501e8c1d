import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProblemError } from "../../src/errors";
import type { TransformOptions } from "../../src/transform/options";
import {
  canonicalString,
  DEFAULT_TRANSFORM,
  DEFAULT_WATERMARK,
  isIdentity,
  parseTransform,
  type ParseContext,
} from "../../src/transform/params";

const PRESETS: Readonly<Record<string, string>> = {
  thumb: "w=200&h=200&fit=cover&fmt=auto&q=70",
  "hero_2x-v1": "w=1200&dpr=2",
  branded: "wm=logo&wm_pos=tile",
  nested: "p=thumb",
  signed: "sig=abc",
  bad: "w=0",
  junk: "zoom=2",
};
const resolvePreset = (name: string): string | undefined => (Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined);

function parse(query: string, ctx: ParseContext = { resolvePreset }): ReturnType<typeof parseTransform> {
  return parseTransform(new URLSearchParams(query), ctx);
}

function options(query: string): TransformOptions {
  return parse(query).options;
}

function canonical(query: string): string {
  return canonicalString(options(query));
}

/** The ProblemError thrown by `fn`; fails the test if it returns or throws anything else. */
function problemOf(fn: () => unknown): ProblemError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProblemError) return error;
    throw error;
  }
  throw new Error("expected a ProblemError, but nothing was thrown");
}

const point = (x: number, y: number): TransformOptions["gravity"] => ({ mode: "point", x, y });

describe("parseTransform: valid values and defaults", () => {
  it("gives the identity defaults for an empty query", () => {
    expect(options("")).toStrictEqual(DEFAULT_TRANSFORM);
    expect(isIdentity(options(""))).toBe(true);
  });

  const valid: ReadonlyArray<readonly [query: string, expected: Partial<TransformOptions>]> = [
    ["w=1", { width: 1 }],
    ["w=100", { width: 100 }],
    ["w=0100", { width: 100 }],
    ["h=8192", { height: 8192 }],
    ["w=100&dpr=2", { width: 200 }],
    ["w=100&h=50&dpr=1.5", { width: 150, height: 75 }],
    ["w=3&dpr=1.5", { width: 5 }], // 4.5 rounds half up
    ["w=1000&dpr=1.100000023841858", { width: 1100 }], // browsers' float ratios
    ["w=100&dpr=4", { width: 400 }],
    ["w=100&dpr=1", { width: 100 }],
    ["w=100&dpr=1.0", { width: 100 }],
    ["dpr=2", {}], // nothing to multiply
    ["fit=scale-down", { fit: "scale-down" }],
    ["fit=contain", { fit: "contain" }],
    ["fit=cover", { fit: "cover" }],
    ["fit=crop", { fit: "crop" }],
    ["fit=pad", { fit: "pad" }],
    ["fit=squeeze", { fit: "squeeze" }],
    ["g=center", { gravity: point(0.5, 0.5) }],
    ["g=top", { gravity: point(0.5, 0) }],
    ["g=bottom", { gravity: point(0.5, 1) }],
    ["g=left", { gravity: point(0, 0.5) }],
    ["g=right", { gravity: point(1, 0.5) }],
    ["g=top-left", { gravity: point(0, 0) }],
    ["g=top-right", { gravity: point(1, 0) }],
    ["g=bottom-left", { gravity: point(0, 1) }],
    ["g=bottom-right", { gravity: point(1, 1) }],
    ["g=0.25x0.7", { gravity: point(0.25, 0.7) }],
    ["g=0x1", { gravity: point(0, 1) }],
    ["g=.5x1.0", { gravity: point(0.5, 1) }],
    ["g=0.123456x0.99995", { gravity: point(0.1235, 1) }], // 4 decimals, half up
    ["g=auto", { gravity: { mode: "auto" } }],
    ["crop=0,0,1,1", { crop: { x: 0, y: 0, width: 1, height: 1 } }],
    ["crop=10,20,300,400", { crop: { x: 10, y: 20, width: 300, height: 400 } }],
    ["crop=65535,65535,65535,65535", { crop: { x: 65535, y: 65535, width: 65535, height: 65535 } }],
    ["rot=0", { rotate: 0 }],
    ["rot=90", { rotate: 90 }],
    ["rot=180", { rotate: 180 }],
    ["rot=270", { rotate: 270 }],
    ["flip=h", { flip: "h" }],
    ["flip=v", { flip: "v" }],
    ["flip=hv", { flip: "hv" }],
    ["flip=vh", { flip: "hv" }],
    ["fmt=jpeg", { format: "jpeg" }],
    ["fmt=jpg", { format: "jpeg" }],
    ["fmt=png", { format: "png" }],
    ["fmt=webp", { format: "webp" }],
    ["fmt=avif", { format: "avif" }],
    ["fmt=auto", { format: "auto" }],
    ["q=1", { quality: 1 }],
    ["q=100", { quality: 100 }],
    ["blur=0", { blur: 0 }],
    ["blur=250", { blur: 250 }],
    ["blur=2.5", { blur: 2.5 }],
    ["blur=2.45", { blur: 2.5 }], // tenths, half up on the digits
    ["blur=2.449", { blur: 2.4 }],
    ["blur=0.04", { blur: 0 }],
    ["sharpen=0", { sharpen: 0 }],
    ["sharpen=10", { sharpen: 10 }],
    ["sharpen=1.25", { sharpen: 1.3 }],
    ["bg=fff", { background: { r: 255, g: 255, b: 255, a: 255 } }],
    ["bg=000", { background: { r: 0, g: 0, b: 0, a: 255 } }],
    ["bg=%23FF8000", { background: { r: 255, g: 128, b: 0, a: 255 } }],
    ["bg=ff800080", { background: { r: 255, g: 128, b: 0, a: 128 } }],
    ["bg=%23f008", { background: { r: 255, g: 0, b: 0, a: 136 } }],
    ["wm=logo", { watermark: { imageId: "logo", ...DEFAULT_WATERMARK } }],
    ["wm=A_b-9", { watermark: { imageId: "A_b-9", ...DEFAULT_WATERMARK } }],
    [`wm=${"x".repeat(64)}`, { watermark: { imageId: "x".repeat(64), ...DEFAULT_WATERMARK } }],
    [
      "wm=logo&wm_pos=tile&wm_scale=1&wm_op=0&wm_pad=0",
      { watermark: { imageId: "logo", position: "tile", scale: 1, opacity: 0, padding: 0 } },
    ],
    [
      "wm=logo&wm_pos=top-left&wm_scale=0.001&wm_op=0.505&wm_pad=1000",
      { watermark: { imageId: "logo", position: "top-left", scale: 0.001, opacity: 0.51, padding: 1000 } },
    ],
    ["wm=logo&wm_pos=center&wm_scale=0.3333", { watermark: { ...DEFAULT_WATERMARK, imageId: "logo", position: "center", scale: 0.333 } }],
    ["w=100&w=100", { width: 100 }], // an exact repeat is harmless
  ];
  it.each(valid)("%s", (query, expected) => {
    expect(options(query)).toStrictEqual({ ...DEFAULT_TRANSFORM, ...expected });
  });

  it("accepts every watermark position", () => {
    for (const pos of ["top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom", "bottom-right", "tile"]) {
      expect(options(`wm=a&wm_pos=${pos}`).watermark?.position).toBe(pos);
    }
  });
});

describe("parseTransform: invalid values", () => {
  const invalid: ReadonlyArray<readonly [query: string, parameter: string]> = [
    ["w=0", "w"],
    ["w=-1", "w"],
    ["w=1.5", "w"],
    ["w=", "w"],
    ["w=1e3", "w"],
    ["w=0x10", "w"],
    ["w=%2010", "w"],
    ["w=Infinity", "w"],
    ["h=abc", "h"],
    ["dpr=0.5", "dpr"],
    ["dpr=4.01", "dpr"],
    ["dpr=-2", "dpr"],
    ["dpr=.", "dpr"],
    ["dpr=2x", "dpr"],
    ["dpr=NaN", "dpr"],
    ["fit=fill", "fit"],
    ["fit=COVER", "fit"],
    ["fit=constructor", "fit"],
    ["fit=__proto__", "fit"],
    ["g=middle", "g"],
    ["g=1.1x0", "g"],
    ["g=0.5", "g"],
    ["g=0.5x0.5x0.5", "g"],
    ["g=-0.1x0", "g"],
    ["g=x", "g"],
    ["g=toString", "g"],
    ["crop=1,2,3", "crop"],
    ["crop=1,2,3,4,5", "crop"],
    ["crop=1,2,0,4", "crop"],
    ["crop=1,2,3,0", "crop"],
    ["crop=-1,2,3,4", "crop"],
    ["crop=1.5,2,3,4", "crop"],
    ["crop=1,2,65536,4", "crop"],
    ["crop=,,,", "crop"],
    ["crop=1, 2,3,4", "crop"],
    ["rot=45", "rot"],
    ["rot=360", "rot"],
    ["rot=-90", "rot"],
    ["flip=x", "flip"],
    ["flip=hh", "flip"],
    ["fmt=gif", "fmt"],
    ["fmt=JPEG", "fmt"],
    ["q=0", "q"],
    ["q=101", "q"],
    ["q=50.5", "q"],
    ["blur=251", "blur"],
    ["blur=250.01", "blur"],
    ["blur=-1", "blur"],
    ["sharpen=10.1", "sharpen"],
    ["bg=ff", "bg"],
    ["bg=fffff", "bg"],
    ["bg=ggg", "bg"],
    ["bg=%23%23fff", "bg"],
    ["bg=fffffffff", "bg"],
    ["wm=", "wm"],
    ["wm=a/b", "wm"],
    ["wm=a.png", "wm"],
    [`wm=${"x".repeat(65)}`, "wm"],
    ["wm=a&wm_pos=middle", "wm_pos"],
    ["wm=a&wm_scale=0", "wm_scale"],
    ["wm=a&wm_scale=0.0009", "wm_scale"],
    ["wm=a&wm_scale=1.01", "wm_scale"],
    ["wm=a&wm_op=1.5", "wm_op"],
    ["wm=a&wm_pad=1001", "wm_pad"],
    ["wm=a&wm_pad=1.5", "wm_pad"],
    ["wm_pos=tile", "wm_pos"],
    ["wm_scale=0.5", "wm_scale"],
    ["wm_op=0.5", "wm_op"],
    ["wm_pad=4", "wm_pad"],
    ["w=100&w=200", "w"],
    ["fmt=jpg&fmt=jpeg", "fmt"],
    ["p=", "p"],
    ["p=Thumb", "p"],
    ["p=nope", "p"],
    ["p=nested", "p"],
    ["p=signed", "p"],
    ["p=bad", "w"],
    ["exp=123", "exp"],
    ["sig=abc&exp=soon", "exp"],
    ["sig=a%2Bb", "sig"],
    ["sig=", "sig"],
  ];
  it.each(invalid)("%s -> 400 naming %s", (query, parameter) => {
    const error = problemOf(() => parse(query));
    expect(error.status).toBe(400);
    expect(error.code).toBe("invalid-parameter");
    expect(error.extras.parameter).toBe(parameter);
    expect(error.detail).toMatch(/^Expected .+ for \S+ but received .+$/);
  });

  const messages: ReadonlyArray<readonly [query: string, detail: string]> = [
    ["w=spoons", 'Expected positive integer for w but received "spoons"'],
    ["dpr=5", 'Expected number from 1 to 4 for dpr but received "5"'],
    ["fit=fill", 'Expected one of scale-down, contain, cover, crop, pad, squeeze for fit but received "fill"'],
    [
      "g=up",
      'Expected one of center, top, bottom, left, right, top-left, top-right, bottom-left, bottom-right, auto, or a focal point XxY with X and Y from 0 to 1 for g but received "up"',
    ],
    ["crop=1,2", 'Expected x,y,w,h integers with x,y from 0 and w,h from 1, all at most 65535 for crop but received "1,2"'],
    ["rot=45", 'Expected one of 0, 90, 180, 270 for rot but received "45"'],
    ["flip=x", 'Expected one of h, v, hv, vh for flip but received "x"'],
    ["fmt=gif", 'Expected one of jpeg, jpg, png, webp, avif, auto for fmt but received "gif"'],
    ["q=0", 'Expected integer from 1 to 100 for q but received "0"'],
    ["blur=300", 'Expected number from 0 to 250 for blur but received "300"'],
    ["bg=red", 'Expected hex colour rgb, rgba, rrggbb or rrggbbaa for bg but received "red"'],
    ["wm=a&wm_scale=0", 'Expected number from 0.001 to 1 for wm_scale but received "0"'],
    ["wm=a&wm_pad=2000", 'Expected integer from 0 to 1000 for wm_pad but received "2000"'],
    ["wm_op=0.5", "Expected wm to be set for wm_op but received no wm"],
    ["w=100&w=200", 'Expected a single value for w but received "100" and "200"'],
    ["p=nope", 'Expected the name of a configured preset for p but received "nope"'],
    ["p=nested", 'Expected a preset without p, sig or exp for p but received "nested" which sets p'],
    ["p=bad", 'Expected positive integer for w but received "0" in preset "bad"'],
    ["exp=1", "Expected sig to be set for exp but received no sig"],
  ];
  it.each(messages)("%s -> %s", (query, detail) => {
    expect(problemOf(() => parse(query)).detail).toBe(detail);
  });

  it("puts parameter, expected and received in the problem extras", () => {
    expect(problemOf(() => parse("q=0")).extras).toStrictEqual({
      parameter: "q",
      expected: "integer from 1 to 100",
      received: '"0"',
    });
  });

  it("rejects unknown parameters, naming them and listing the known ones", () => {
    for (const query of ["zoom=2", "W=100", "width=100", "__proto__=1", "constructor=1", "=1", "w[]=1"]) {
      const error = problemOf(() => parse(query));
      expect(error.status).toBe(400);
      expect(error.code).toBe("unknown-parameter");
    }
    const error = problemOf(() => parse("w=1&zoom=2"));
    expect(error.detail).toBe(
      'Unknown parameter "zoom"; expected one of w, h, dpr, fit, g, crop, rot, flip, fmt, q, blur, sharpen, bg, wm, wm_pos, wm_scale, wm_op, wm_pad, p, sig, exp',
    );
    expect(error.extras.parameter).toBe("zoom");
  });

  it("truncates and escapes what it echoes", () => {
    const long = problemOf(() => parse(`fit=${"a".repeat(500)}`));
    expect(long.extras.received).toBe(`"${"a".repeat(64)}"...`);
    const nasty = problemOf(() => parse("fit=%3Cscript%3E%22%0A%F0%9F%98%80"));
    expect(nasty.extras.received).toBe('"\\u003cscript\\u003e\\u0022\\u000a\\ud83d\\ude00"');
    const unknown = problemOf(() => parse("%3Cb%3E=1"));
    expect(unknown.detail).toContain('"\\u003cb\\u003e"');
    expect(unknown.detail).not.toMatch(/[<>]/);
  });
});

describe("parseTransform: output size cap", () => {
  it("allows exactly maxSide and rejects one more, after dpr", () => {
    expect(options("w=8192").width).toBe(8192);
    expect(options("w=4096&dpr=2").width).toBe(8192);
    const error = problemOf(() => parse("w=8193"));
    expect(error.status).toBe(400);
    expect(error.code).toBe("output-too-large");
    expect(error.extras.parameter).toBe("w");
    expect(error.detail).toBe("Expected at most 8192 px for w but received 8193");
    expect(problemOf(() => parse("h=4097&dpr=2")).detail).toBe(
      "Expected at most 8192 px for h but received 8194 (4097 at dpr 2)",
    );
    expect(problemOf(() => parse("w=99999999999999999999999")).code).toBe("output-too-large");
  });

  it("rejects w × h over maxPixels", () => {
    expect(options("w=6250&h=8000").height).toBe(8000); // exactly 50 MP
    // Both sides are under maxSide; the area is what fails: 8000 × 8000 = 64 MP.
    const error = problemOf(() => parse("w=8000&h=8000"));
    expect(error.code).toBe("output-too-large");
    expect(error.extras.parameter).toBe("w,h");
    expect(error.detail).toBe("Expected at most 50000000 output pixels for w,h but received 8000x8000");
  });

  it("takes limits from the context", () => {
    const ctx: ParseContext = { limits: { maxSide: 1000, maxPixels: 100_000 } };
    expect(parse("w=1000", ctx).options.width).toBe(1000);
    expect(problemOf(() => parse("w=501&dpr=2", ctx)).code).toBe("output-too-large");
    expect(problemOf(() => parse("w=400&h=400", ctx)).code).toBe("output-too-large");
    expect(parse("w=4000", { limits: { maxSide: 4000 } }).options.width).toBe(4000);
    // An explicit undefined keeps the default instead of switching the cap off.
    expect(problemOf(() => parse("w=9000", { limits: { maxSide: undefined } })).code).toBe("output-too-large");
  });
});

describe("parseTransform: presets", () => {
  it("merges the preset and reports its name", () => {
    const result = parse("p=thumb");
    expect(result.preset).toBe("thumb");
    expect(result.options).toStrictEqual({
      ...DEFAULT_TRANSFORM,
      width: 200,
      height: 200,
      fit: "cover",
      format: "auto",
      quality: 70,
    });
  });

  it("lets explicit URL parameters override the preset's, dpr included", () => {
    expect(options("p=thumb&q=90&fit=contain")).toMatchObject({ quality: 90, fit: "contain", width: 200 });
    expect(options("p=thumb&dpr=2")).toMatchObject({ width: 400, height: 400 });
    expect(options("p=hero_2x-v1&dpr=1")).toMatchObject({ width: 1200 });
    expect(options("p=hero_2x-v1")).toMatchObject({ width: 2400 });
    // A URL value that fixes a preset's bad value wins before the bad value is read.
    expect(options("p=bad&w=10").width).toBe(10);
    // wm_* from the URL may complete a preset's watermark.
    expect(options("p=branded&wm_op=0.5").watermark).toStrictEqual({ ...DEFAULT_WATERMARK, imageId: "logo", position: "tile", opacity: 0.5 });
  });

  it("has the same canonical string as the spelled-out query", () => {
    expect(canonical("p=thumb")).toBe(canonical("w=200&h=200&fit=cover&fmt=auto&q=70"));
    expect(canonical("p=thumb")).toBe("fit=cover&fmt=auto&h=200&q=70&w=200");
  });

  it("rejects unknown presets, presets naming presets, and junk in presets", () => {
    expect(problemOf(() => parse("p=thumb", {})).extras.parameter).toBe("p"); // no resolver: no presets
    const junk = problemOf(() => parse("p=junk"));
    expect(junk.code).toBe("unknown-parameter");
    expect(junk.detail).toContain('in preset "junk"');
  });
});

describe("parseTransform: sig and exp pass through", () => {
  it("returns them apart from the options", () => {
    const result = parse("w=100&sig=AbC-_09&exp=1767225600");
    expect(result.signature).toStrictEqual({ sig: "AbC-_09", exp: 1767225600 });
    expect(result.options).toStrictEqual({ ...DEFAULT_TRANSFORM, width: 100 });
    expect(canonicalString(result.options)).toBe("w=100");
    expect(parse("w=100&sig=abc").signature).toStrictEqual({ sig: "abc" });
    expect(parse("w=100").signature).toBeUndefined();
  });
});

describe("canonicalString", () => {
  const equivalent: ReadonlyArray<readonly [a: string, b: string]> = [
    ["w=100&h=50&fit=cover", "fit=cover&h=50&w=100"],
    ["g=top", "g=0.5x0"],
    ["g=top-left", "g=0x0.0"],
    ["g=0.50x0.70", "g=.5x.7"],
    ["fmt=jpg", "fmt=jpeg"],
    ["dpr=2&w=100", "w=200"],
    ["w=100&h=100&dpr=1.5", "w=150&h=150"],
    ["fit=scale-down&g=center&rot=0&blur=0&sharpen=0&bg=fff", ""],
    ["bg=%23FFFFFF", "bg=ffffffff"],
    ["bg=F00", "bg=ff0000"],
    ["flip=vh", "flip=hv"],
    ["wm=a&wm_pos=bottom-right&wm_scale=0.25&wm_op=1&wm_pad=16", "wm=a"],
    ["blur=2.50", "blur=2.5"],
    ["q=050", "q=50"],
    ["dpr=3", ""],
  ];
  it.each(equivalent)("%s == %s", (a, b) => {
    expect(canonical(a)).toBe(canonical(b));
  });

  const exact: ReadonlyArray<readonly [query: string, expected: string]> = [
    ["", ""],
    ["w=100", "w=100"],
    ["h=50&w=100&dpr=2", "h=100&w=200"],
    ["g=0.5x0", "g=top"],
    ["g=0.25x0.7", "g=0.25x0.7"],
    ["g=auto", "g=auto"],
    ["fmt=auto", "fmt=auto"], // stays: the negotiated format is added to the key by the caller
    ["fmt=jpg&q=80", "fmt=jpeg&q=80"],
    ["bg=%23ff000080", "bg=ff000080"],
    ["crop=1,2,3,4&rot=90&flip=h", "crop=1,2,3,4&flip=h&rot=90"],
    ["blur=0.05&sharpen=1.04", "blur=0.1&sharpen=1"],
    [
      "wm_pad=8&wm=logo&wm_op=0.50&wm_scale=0.5&wm_pos=tile",
      "wm=logo&wm_op=0.5&wm_pad=8&wm_pos=tile&wm_scale=0.5",
    ],
    [
      "w=10&h=20&fit=pad&g=right&crop=0,0,5,5&rot=270&flip=v&fmt=webp&q=1&blur=1&sharpen=2&bg=000&wm=x&wm_pos=top",
      "bg=000000&blur=1&crop=0,0,5,5&fit=pad&flip=v&fmt=webp&g=right&h=20&q=1&rot=270&sharpen=2&w=10&wm=x&wm_pos=top",
    ],
  ];
  it.each(exact)("%s -> %s", (query, expected) => {
    expect(canonical(query)).toBe(expected);
    // The canonical string is a fixed point.
    expect(canonical(expected)).toBe(expected);
  });

  it("is empty exactly for the identity", () => {
    expect(isIdentity(options("dpr=2&rot=0"))).toBe(true);
    expect(isIdentity(options("fmt=auto"))).toBe(false);
    expect(isIdentity(options("q=80"))).toBe(false);
    expect(isIdentity(options("g=auto"))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const NAMES = [
  "w", "h", "dpr", "fit", "g", "crop", "rot", "flip", "fmt", "q", "blur", "sharpen", "bg",
  "wm", "wm_pos", "wm_scale", "wm_op", "wm_pad", "p", "sig", "exp",
] as const;

const decimalText = fc
  .tuple(fc.integer({ min: 0, max: 300 }), fc.option(fc.stringMatching(/^\d{0,6}$/), { nil: undefined }))
  .map(([whole, frac]) => (frac === undefined ? String(whole) : `${whole}.${frac}`));

/** Values that are often valid for some parameter, plus the shapes parsers trip on. */
const plausibleValue = fc.oneof(
  fc.constantFrom(
    "", "0", "1", "-1", "90", "100", "8192", "8193", "1e3", "0x10", "NaN", "Infinity", " 1", "1 ",
    "cover", "pad", "scale-down", "top", "auto", "0.5x0.5", "1x1", "h", "hv", "vh", "jpg", "avif",
    "fff", "#ffffff", "ff000080", "tile", "bottom-right", "logo", "thumb", "branded", "nested", "bad",
    "1,2,3,4", "0,0,1,1", "__proto__", "constructor", "toString", "%", "\u0000", "\ud800", "😀",
  ),
  decimalText,
  fc.integer({ min: -10, max: 20_000 }).map(String),
  fc.tuple(decimalText, decimalText).map(([x, y]) => `${x}x${y}`),
  fc.string({ maxLength: 80 }),
  fc.string({ unit: "binary", maxLength: 20 }),
);

const anyName = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...NAMES) },
  { weight: 1, arbitrary: fc.constantFrom("zoom", "W", "__proto__", "constructor", "hasOwnProperty", "") },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
);

const anyQuery = fc.oneof(
  fc.array(fc.tuple(anyName, plausibleValue), { maxLength: 8 }).map((pairs) => new URLSearchParams(pairs)),
  fc.string({ maxLength: 200 }).map((text) => new URLSearchParams(text)),
  fc.string({ unit: "binary", maxLength: 100 }).map((text) => new URLSearchParams(text)),
);

const presetTexts = fc.dictionary(
  fc.constantFrom("thumb", "a", "b-c", "x_1"),
  fc.array(fc.tuple(anyName, plausibleValue), { maxLength: 4 }).map((pairs) => new URLSearchParams(pairs).toString()),
);

/** Runs the parser and reports what happened, failing on anything but a result or a 400 ProblemError. */
function attempt(query: URLSearchParams, ctx: ParseContext): ReturnType<typeof parseTransform> | ProblemError {
  try {
    return parseTransform(query, ctx);
  } catch (error) {
    if (error instanceof ProblemError && error.status === 400) return error;
    throw error;
  }
}

describe("properties", () => {
  it("returns or throws a 400 ProblemError with a bounded, safe message, for any query", () => {
    fc.assert(
      fc.property(anyQuery, presetTexts, (query, presets) => {
        const ctx: ParseContext = { resolvePreset: (name) => (Object.hasOwn(presets, name) ? presets[name] : undefined) };
        const outcome = attempt(query, ctx);
        if (outcome instanceof ProblemError) {
          expect(["invalid-parameter", "unknown-parameter", "output-too-large"]).toContain(outcome.code);
          expect(outcome.detail).toMatch(/^[\x20-\x7e]*$/); // printable ASCII only: safe to echo
          expect(outcome.detail).not.toMatch(/[<>]/);
          expect(outcome.detail.length).toBeLessThan(1200);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("canonical string is idempotent: parse(canonical(parse(x))) equals parse(x)", () => {
    let parsed = 0;
    fc.assert(
      fc.property(anyQuery, (query) => {
        const outcome = attempt(query, { resolvePreset });
        if (outcome instanceof ProblemError) return;
        parsed += 1;
        const text = canonicalString(outcome.options);
        const again = parseTransform(new URLSearchParams(text)).options;
        expect(again).toStrictEqual(outcome.options);
        expect(canonicalString(again)).toBe(text);
      }),
      { numRuns: 3000 },
    );
    expect(parsed).toBeGreaterThan(100); // the generator does reach the success path
  });

  const grid = (places: number, min: number, max: number): fc.Arbitrary<number> =>
    fc.integer({ min: Math.round(min * 10 ** places), max: Math.round(max * 10 ** places) }).map((n) => n / 10 ** places);

  const validOptions: fc.Arbitrary<TransformOptions> = fc
    .record(
      {
        width: fc.integer({ min: 1, max: 8192 }),
        height: fc.integer({ min: 1, max: 6000 }),
        fit: fc.constantFrom("scale-down", "contain", "cover", "crop", "pad", "squeeze"),
        gravity: fc.oneof(
          fc.constant({ mode: "auto" } as const),
          fc.record({ mode: fc.constant("point" as const), x: grid(4, 0, 1), y: grid(4, 0, 1) }),
        ),
        crop: fc.record({
          x: fc.integer({ min: 0, max: 65535 }),
          y: fc.integer({ min: 0, max: 65535 }),
          width: fc.integer({ min: 1, max: 65535 }),
          height: fc.integer({ min: 1, max: 65535 }),
        }),
        rotate: fc.constantFrom(0, 90, 180, 270),
        flip: fc.constantFrom("none", "h", "v", "hv"),
        format: fc.constantFrom("jpeg", "png", "webp", "avif", "auto"),
        quality: fc.integer({ min: 1, max: 100 }),
        blur: grid(1, 0, 250),
        sharpen: grid(1, 0, 10),
        background: fc.record({
          r: fc.integer({ min: 0, max: 255 }),
          g: fc.integer({ min: 0, max: 255 }),
          b: fc.integer({ min: 0, max: 255 }),
          a: fc.integer({ min: 0, max: 255 }),
        }),
        watermark: fc.record({
          imageId: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
          position: fc.constantFrom(
            "top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom", "bottom-right", "tile",
          ),
          scale: grid(3, 0.001, 1),
          opacity: grid(2, 0, 1),
          padding: fc.integer({ min: 0, max: 1000 }),
        }),
      },
      { requiredKeys: ["fit", "gravity", "rotate", "flip", "blur", "sharpen", "background"] },
    )
    .filter((o) => o.width === undefined || o.height === undefined || o.width * o.height <= 50_000_000);

  it("every valid options object round-trips through canonicalString", () => {
    fc.assert(
      fc.property(validOptions, (opts) => {
        const text = canonicalString(opts);
        // structuredClone: fast-check builds null-prototype records, the parser plain objects.
        expect(parseTransform(new URLSearchParams(text)).options).toStrictEqual(structuredClone(opts));
        expect(isIdentity(opts)).toBe(text === "");
      }),
      { numRuns: 2000 },
    );
  });

  it("gives the same canonical string whatever the parameter order", () => {
    const validPairs = fc.uniqueArray(
      fc.constantFrom<readonly [string, string]>(
        ["w", "300"], ["h", "200"], ["dpr", "1.5"], ["fit", "cover"], ["g", "0.3x0.6"], ["crop", "1,2,3,4"],
        ["rot", "90"], ["flip", "vh"], ["fmt", "jpg"], ["q", "75"], ["blur", "1.25"], ["sharpen", "0.5"],
        ["bg", "%23abc"], ["wm", "logo"], ["wm_op", "0.5"], ["wm_pos", "tile"],
      ),
      { selector: ([name]) => name },
    );
    fc.assert(
      fc.property(validPairs.chain((pairs) => fc.tuple(fc.constant(pairs), fc.shuffledSubarray(pairs, { minLength: pairs.length }))), ([pairs, shuffled]) => {
        const withWm = (list: ReadonlyArray<readonly [string, string]>): string =>
          [...list, ...(list.some(([n]) => n.startsWith("wm_")) ? [["wm", "logo"] as const] : [])]
            .map(([n, v]) => `${n}=${v}`)
            .join("&");
        expect(canonical(withWm(shuffled))).toBe(canonical(withWm(pairs)));
      }),
      { numRuns: 300 },
    );
  });
});
