// Pixel tests of the transform URLs against an independent decoder and resizer (sharp/libvips,
// plus a plain Lanczos3 in ./image-compare), over HTTP against a real `wrangler dev`, as a client
// would see them: sizes of every fit mode, EXIF orientation, crop/rotate/flip placing the right
// pixels, watermark position and blending, similarity to sharp's output (PSNR/SSIM table on
// stdout), centred resampling, and metadata stripping. Needs ../shared/corpus.
import sharp, { type Sharp } from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseUrl, createTenant, type UploadJson } from "./api-client";
import { corpusFiles, readCorpus } from "./corpus";
import {
  changedBox,
  colourDistance,
  containsAscii,
  decodeRgba,
  encodePng,
  extract,
  jpegSegments,
  lanczos3Resize,
  maxAbsDiff,
  meanColour,
  mirrorError,
  noise,
  pixel,
  pngChunks,
  psnr,
  type RawImage,
  type Rgba,
  sharpFromRaw,
  ssim,
  synthesize,
  webpChunks,
} from "./image-compare";

// ---------------------------------------------------------------------------------------------
// Thresholds (stated once, used everywhere)

/** Same picture through two Lanczos3 implementations, lossless PNG output: resampling differences only. */
const MIN_PSNR_DB = 30;
/** Windowed luma SSIM (8x8 windows, stride 4) for the same comparisons. */
const MIN_SSIM = 0.95;
/** Orientation N against orientation 1 (separately encoded JPEGs of the same photo, digit area left out). */
const MIN_PSNR_SAME_PICTURE_DB = 28;
/** Colour tolerance (max channel difference) for region means of lossless output. */
const LOSSLESS_TOLERANCE = 2;
/** Colour tolerance for region means after a JPEG round trip (q 95, 4:2:0). */
const JPEG_TOLERANCE = 24;

// ---------------------------------------------------------------------------------------------
// Client helpers

let apiKey = "";
const ids = new Map<string, string>();

/** A corpus file (real photos, the EXIF orientation set, the metadata samples); throws naming the path when absent. */
function corpusBytes(name: string): Uint8Array {
  return readCorpus(name);
}

/** Uploads once per label (PUT /v1/images with the raw bytes); returns the image id. */
async function upload(label: string, bytes: Uint8Array): Promise<string> {
  const known = ids.get(label);
  if (known !== undefined) return known;
  const response = await fetch(`${baseUrl()}/v1/images?filename=${encodeURIComponent(label)}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/octet-stream" },
    body: bytes.slice(), // Uint8Array<ArrayBuffer>, as BodyInit wants
  });
  if (response.status !== 201) throw new Error(`upload of ${label} failed: ${response.status} ${await response.text()}`);
  const id = ((await response.json()) as UploadJson).images[0]!.id;
  ids.set(label, id);
  return id;
}

const uploadCorpus = (name: string): Promise<string> => upload(name, corpusBytes(name));

interface Transformed {
  readonly url: string;
  readonly bytes: Uint8Array;
  readonly contentType: string;
  readonly image: RawImage;
}

/** Request count, wall time and the service's own render time (Server-Timing), for the summary line. */
const requestStats = { count: 0, wallMs: 0, renderMs: 0 };

/** GET /i/:id?query, expecting 200; decodes the body with sharp. */
async function transform(id: string, query: string): Promise<Transformed> {
  const url = `${baseUrl()}/i/${id}?${query}`;
  const started = performance.now();
  const response = await fetch(url);
  const bytes = new Uint8Array(await response.arrayBuffer());
  requestStats.count++;
  requestStats.wallMs += performance.now() - started;
  for (const match of (response.headers.get("server-timing") ?? "").matchAll(/dur=([\d.]+)/g)) requestStats.renderMs += Number(match[1]);
  if (response.status !== 200) throw new Error(`GET ${url} -> ${response.status} ${new TextDecoder().decode(bytes)}`);
  return { url, bytes, contentType: response.headers.get("content-type") ?? "", image: await decodeRgba(bytes) };
}

/** sharp's output of a pipeline built on `input`, decoded the same way as ours. */
function reference(input: Uint8Array, build: (s: Sharp) => Sharp): Promise<RawImage> {
  return decodeRgba(build(sharp(input)));
}

beforeAll(async () => {
  apiKey = (await createTenant("pixels")).key;
});

afterAll(() => {
  console.log(
    `[pixels] ${requestStats.count} transform requests: ${(requestStats.wallMs / 1000).toFixed(1)} s waiting for responses, ` +
      `${(requestStats.renderMs / 1000).toFixed(1)} s of it rendering (Server-Timing)`,
  );
});

// ---------------------------------------------------------------------------------------------
// 1. Output sizes

describe("output sizes of every fit mode", () => {
  // aero1: 640x480. panorama: 3088x386 (8:1).
  const AERO = "photo-small-aero1.jpg";
  const PANO = "photo-panorama-8to1-aitzgorri.jpg";
  const cases: Array<[file: string, query: string, width: number, height: number]> = [
    [AERO, "w=200", 200, 150],
    [AERO, "h=120", 160, 120],
    [AERO, "w=1000", 640, 480], // scale-down never enlarges
    [AERO, "h=960", 640, 480],
    [AERO, "w=200&h=200", 200, 150],
    [AERO, "w=2000&h=2000", 640, 480],
    [AERO, "w=200&h=200&fit=contain", 200, 150],
    [AERO, "w=1000&h=1000&fit=contain", 1000, 750], // contain enlarges
    [AERO, "h=960&fit=contain", 1280, 960],
    [AERO, "w=200&h=200&fit=cover", 200, 200],
    [AERO, "w=1000&h=100&fit=cover", 1000, 100], // cover enlarges to fill
    [AERO, "w=320&fit=cover", 320, 240], // one side: cover = contain
    [AERO, "w=200&h=200&fit=crop", 200, 200],
    [AERO, "w=1000&h=1000&fit=crop", 640, 480], // crop never enlarges: cut to at most w x h
    [AERO, "w=800&h=300&fit=crop", 640, 300],
    [AERO, "w=1000&fit=crop", 640, 480], // one side: crop = scale-down
    [AERO, "w=300&h=300&fit=pad", 300, 300],
    [AERO, "h=240&fit=pad", 320, 240], // one side: nothing to pad
    [AERO, "w=100&h=300&fit=squeeze", 100, 300],
    [AERO, "w=100&dpr=2", 200, 150],
    [AERO, "w=100&h=100&fit=cover&dpr=1.5", 150, 150],
    [AERO, "w=300&dpr=3", 640, 480], // 900 device px, still never enlarged
    [AERO, "w=300&dpr=3&fit=contain", 900, 675],
    [PANO, "w=800", 800, 100],
    [PANO, "h=50", 400, 50],
    [PANO, "w=300&h=300", 300, 38], // 37.5 rounds half up
    [PANO, "w=300&h=300&fit=contain", 300, 38],
    [PANO, "w=300&h=300&fit=cover", 300, 300],
    [PANO, "w=100&h=100&fit=crop&g=left", 100, 100],
    [PANO, "w=4000&h=500&fit=crop", 3088, 386],
    [PANO, "w=300&h=300&fit=pad", 300, 300],
    [PANO, "w=200&h=1000&fit=squeeze", 200, 1000],
    [PANO, "h=100&dpr=2", 1600, 200],
  ];

  it.each(cases)("%s ?%s -> %i x %i", async (file, query, width, height) => {
    const out = await transform(await uploadCorpus(file), `${query}&fmt=png`);
    expect(out.contentType).toBe("image/png");
    expect([out.image.width, out.image.height], out.url).toEqual([width, height]);
  });

  it("pad fills exactly w x h, the bg colour around a centred image (aero1 300x300, bg ff0000)", async () => {
    const out = await transform(await uploadCorpus(AERO), "w=300&h=300&fit=pad&bg=ff0000&fmt=png");
    expect([out.image.width, out.image.height]).toEqual([300, 300]);
    // 640x480 -> 300x225, centred: rows 0..36 and 263..299 are padding (one row of slack at each seam).
    const red: Rgba = [255, 0, 0, 255];
    expect(colourDistance(meanColour(out.image, 0, 0, 300, 36), red)).toBeLessThanOrEqual(LOSSLESS_TOLERANCE);
    expect(colourDistance(meanColour(out.image, 0, 264, 300, 36), red)).toBeLessThanOrEqual(LOSSLESS_TOLERANCE);
    for (const [x, y] of [[0, 0], [299, 0], [0, 299], [299, 299], [150, 10], [150, 290]] as const) {
      expect(pixel(out.image, x, y), `pad pixel ${x},${y}`).toEqual(red);
    }
    // The photo occupies the middle band: no red rows there, and full width.
    const box = changedBox(out.image, red, 40);
    expect(box).not.toBeNull();
    expect(box!.x0).toBe(0);
    expect(box!.x1).toBe(300);
    expect(Math.abs(box!.y0 - 37)).toBeLessThanOrEqual(1);
    expect(Math.abs(box!.y1 - 262)).toBeLessThanOrEqual(1);
  });

  it("pad on the 8:1 panorama puts the bg above and below a 300x38 strip; a translucent bg stays translucent", async () => {
    const id = await uploadCorpus(PANO);
    const out = await transform(id, "w=300&h=300&fit=pad&bg=00ff00&fmt=png");
    const green: Rgba = [0, 255, 0, 255];
    expect(colourDistance(meanColour(out.image, 0, 0, 300, 130), green)).toBe(0);
    expect(colourDistance(meanColour(out.image, 0, 170, 300, 130), green)).toBe(0);
    const box = changedBox(out.image, green, 40)!;
    expect(Math.abs(box.y0 - 131)).toBeLessThanOrEqual(1);
    expect(Math.abs(box.y1 - 169)).toBeLessThanOrEqual(1);

    const clear = await transform(id, "w=300&h=300&fit=pad&bg=0000ff80&fmt=png");
    expect(pixel(clear.image, 5, 5)).toEqual([0, 0, 255, 128]);
    expect(pixel(clear.image, 150, 150)[3]).toBe(255);
  });

  it("cover gravity picks the named end of the panorama (compared with sharp's extract + resize)", async () => {
    const bytes = corpusBytes(PANO);
    const id = await uploadCorpus(PANO);
    for (const [g, left] of [["left", 0], ["right", 3088 - 386], ["center", Math.round((3088 - 386) / 2)]] as const) {
      const out = await transform(id, `w=300&h=300&fit=cover&g=${g}&fmt=png`);
      const ref = await reference(bytes, (s) => s.extract({ left, top: 0, width: 386, height: 386 }).resize(300, 300, { fit: "fill" }));
      const db = psnr(out.image, ref);
      expect(db, `g=${g}: ${db.toFixed(1)} dB`).toBeGreaterThanOrEqual(MIN_PSNR_DB);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 2. EXIF orientation

describe("EXIF orientations come out upright", () => {
  const names = corpusFiles((name) => /^orientation-(landscape|portrait)-[0-8]\.jpg$/.test(name)).names;
  const outputs = new Map<string, RawImage>();
  const figures = new Map<string, { vsSharp: number; vsUpright?: number }>();

  afterAll(() => {
    if (figures.size === 0) return;
    console.log(
      [
        `[pixels] EXIF orientation, ?w=300&fmt=png: PSNR vs sharp auto-orient + resize (>= ${MIN_PSNR_DB} dB) and vs orientation 1 outside the digit (>= ${MIN_PSNR_SAME_PICTURE_DB} dB)`,
        ...[...figures].map(([name, f]) => `${name.padEnd(30)} ${f.vsSharp.toFixed(2).padStart(6)} dB  ${f.vsUpright === undefined ? "     -" : f.vsUpright.toFixed(2).padStart(6)} dB`),
      ].join("\n"),
    );
  });

  it("the corpus has the 18 orientation files", () => {
    expect(names).toHaveLength(18);
  });

  it.each(names)("%s ?w=300 matches sharp's auto-orient + resize", async (name) => {
    const bytes = corpusBytes(name);
    const out = await transform(await uploadCorpus(name), "w=300&fmt=png");
    const landscape = name.includes("landscape");
    expect([out.image.width, out.image.height]).toEqual(landscape ? [300, 200] : [300, 450]);
    const ref = await reference(bytes, (s) => s.rotate().resize(300, landscape ? 200 : 450, { fit: "fill", fastShrinkOnLoad: false }));
    const db = psnr(out.image, ref);
    figures.set(name, { vsSharp: db });
    expect(db, `${name}: ${db.toFixed(1)} dB vs sharp`).toBeGreaterThanOrEqual(MIN_PSNR_DB);
    outputs.set(name, out.image);
  });

  it.each(names.filter((name) => !name.endsWith("-1.jpg")))("%s shows the same picture as orientation 1", (name) => {
    const family = name.includes("landscape") ? "landscape" : "portrait";
    const mine = outputs.get(name);
    const upright = outputs.get(`orientation-${family}-1.jpg`);
    if (!mine || !upright) throw new Error("the orientation outputs were not fetched (see the test above)");
    // Each file shows its own digit in the middle: leave that out.
    const { width, height } = mine;
    const digit = { x0: Math.floor(width * 0.4), y0: Math.floor(height * 0.4), x1: Math.ceil(width * 0.6), y1: Math.ceil(height * 0.6) };
    const db = psnr(mine, upright, digit);
    const entry = figures.get(name);
    if (entry) entry.vsUpright = db;
    expect(db, `${name} vs orientation 1: ${db.toFixed(1)} dB`).toBeGreaterThanOrEqual(MIN_PSNR_SAME_PICTURE_DB);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. crop / rotate / flip

const RED: Rgba = [220, 30, 30, 255];
const GREEN: Rgba = [30, 200, 30, 255];
const BLUE: Rgba = [30, 30, 220, 255];
const YELLOW: Rgba = [230, 220, 40, 255];

/** 240x160, quadrants red | green over blue | yellow. */
function quadrants(width = 240, height = 160): RawImage {
  return synthesize(width, height, (x, y) => (y < height / 2 ? (x < width / 2 ? RED : GREEN) : x < width / 2 ? BLUE : YELLOW));
}

/** Mean colours of the centres of the four quadrants: [top-left, top-right, bottom-left, bottom-right]. */
function quadrantColours(image: RawImage): Rgba[] {
  const { width: w, height: h } = image;
  const size = Math.max(1, Math.floor(Math.min(w, h) / 8));
  return [
    [w / 4, h / 4],
    [(3 * w) / 4, h / 4],
    [w / 4, (3 * h) / 4],
    [(3 * w) / 4, (3 * h) / 4],
  ].map(([x, y]) => meanColour(image, Math.floor(x! - size / 2), Math.floor(y! - size / 2), size, size));
}

function expectQuadrants(image: RawImage, expected: Rgba[], tolerance: number, label: string): void {
  const actual = quadrantColours(image);
  for (let q = 0; q < 4; q++) {
    const d = colourDistance(actual[q]!, expected[q]!);
    expect(d, `${label}: quadrant ${["TL", "TR", "BL", "BR"][q]} is ${actual[q]!.join(",")}, want ${expected[q]!.join(",")}`).toBeLessThanOrEqual(tolerance);
  }
}

describe("crop, rotate and flip put the right pixels in the right place", () => {
  // What each request does to the quadrants [TL, TR, BL, BR] (flip first, then rotate clockwise).
  const geometry: Array<[query: string, size: [number, number], colours: Rgba[]]> = [
    ["rot=90", [160, 240], [BLUE, RED, YELLOW, GREEN]],
    ["rot=180", [240, 160], [YELLOW, BLUE, GREEN, RED]],
    ["rot=270", [160, 240], [GREEN, YELLOW, RED, BLUE]],
    ["flip=h", [240, 160], [GREEN, RED, YELLOW, BLUE]],
    ["flip=v", [240, 160], [BLUE, YELLOW, RED, GREEN]],
    ["flip=hv", [240, 160], [YELLOW, BLUE, GREEN, RED]],
    ["flip=h&rot=90", [160, 240], [YELLOW, GREEN, BLUE, RED]],
    ["flip=v&rot=90", [160, 240], [RED, BLUE, GREEN, YELLOW]],
    ["crop=60,40,120,80", [120, 80], [RED, GREEN, BLUE, YELLOW]],
    ["crop=0,0,120,160&rot=90", [160, 120], [BLUE, RED, BLUE, RED]],
    ["crop=120,0,120,160&flip=h", [120, 160], [GREEN, GREEN, YELLOW, YELLOW]],
    ["rot=90&w=80", [80, 120], [BLUE, RED, YELLOW, GREEN]],
  ];

  it.each(geometry)("quadrants PNG ?%s", async (query, size, colours) => {
    const id = await upload("quadrants.png", await encodePng(quadrants()));
    const out = await transform(id, query);
    expect(out.contentType).toBe("image/png");
    expect([out.image.width, out.image.height]).toEqual(size);
    expectQuadrants(out.image, colours, LOSSLESS_TOLERANCE, query);
  });

  // Pixel-exact against sharp on a noise image: any off-by-one or wrong mirror shows up.
  const exact: Array<[query: string, steps: Array<(s: Sharp) => Sharp>]> = [
    ["crop=7,5,31,17", [(s) => s.extract({ left: 7, top: 5, width: 31, height: 17 })]],
    ["rot=90", [(s) => s.rotate(90)]],
    ["rot=180", [(s) => s.rotate(180)]],
    ["rot=270", [(s) => s.rotate(270)]],
    ["flip=h", [(s) => s.flop()]],
    ["flip=v", [(s) => s.flip()]],
    ["flip=hv", [(s) => s.flop(), (s) => s.flip()]],
    ["flip=h&rot=270", [(s) => s.flop(), (s) => s.rotate(270)]],
    ["crop=7,5,31,17&rot=90", [(s) => s.extract({ left: 7, top: 5, width: 31, height: 17 }), (s) => s.rotate(90)]],
    ["crop=3,11,40,20&flip=v&rot=90", [(s) => s.extract({ left: 3, top: 11, width: 40, height: 20 }), (s) => s.flip(), (s) => s.rotate(90)]],
  ];

  it.each(exact)("noise PNG ?%s equals sharp's result exactly", async (query, steps) => {
    const source = noise(61, 43);
    const id = await upload("noise.png", await encodePng(source));
    const out = await transform(id, query);
    let expected = source;
    for (const step of steps) expected = await decodeRgba(step(sharpFromRaw(expected)));
    expect([out.image.width, out.image.height]).toEqual([expected.width, expected.height]);
    expect(maxAbsDiff(out.image, expected), query).toBe(0);
  });

  describe("with EXIF orientation 6 (JPEG stored sideways: upright = stored turned 90° clockwise)", () => {
    // Stored 240x160 quadrants; displayed upright 160x240 as [BLUE, RED, YELLOW, GREEN].
    const jpegWithOrientation = async (): Promise<Uint8Array> =>
      new Uint8Array(await sharpFromRaw(quadrants()).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer());

    const cases: Array<[query: string, size: [number, number], colours: Rgba[], sharpSteps: Array<(s: Sharp) => Sharp>]> = [
      ["fmt=png", [160, 240], [BLUE, RED, YELLOW, GREEN], []],
      ["rot=90&fmt=png", [240, 160], [YELLOW, BLUE, GREEN, RED], [(s) => s.rotate(90)]],
      ["flip=h&fmt=png", [160, 240], [RED, BLUE, GREEN, YELLOW], [(s) => s.flop()]],
      // crop is in upright coordinates: the top half of the upright image is blue | red.
      ["crop=0,0,160,120&fmt=png", [160, 120], [BLUE, RED, BLUE, RED], [(s) => s.extract({ left: 0, top: 0, width: 160, height: 120 })]],
      ["crop=80,0,80,240&rot=270&fmt=png", [240, 80], [RED, GREEN, RED, GREEN], [(s) => s.extract({ left: 80, top: 0, width: 80, height: 240 }), (s) => s.rotate(270)]],
      ["w=80&fmt=png", [80, 120], [BLUE, RED, YELLOW, GREEN], [(s) => s.resize(80, 120, { fit: "fill" })]],
    ];

    it.each(cases)("?%s", async (query, size, colours, steps) => {
      const bytes = await jpegWithOrientation();
      expect((await sharp(bytes).metadata()).orientation).toBe(6);
      const out = await transform(await upload("quadrants-exif6.jpg", bytes), query);
      expect([out.image.width, out.image.height]).toEqual(size);
      expectQuadrants(out.image, colours, JPEG_TOLERANCE, query);
      let expected = await decodeRgba(sharp(bytes).rotate());
      for (const step of steps) expected = await decodeRgba(step(sharpFromRaw(expected)));
      const db = psnr(out.image, expected);
      expect(db, `${query}: ${db.toFixed(1)} dB vs sharp`).toBeGreaterThanOrEqual(MIN_PSNR_DB);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// 4. Watermark

describe("watermark placement and blending", () => {
  const BASE: Rgba = [40, 90, 160, 255];
  const INNER: Rgba = [230, 20, 20, 255];
  const BORDER: Rgba = [250, 220, 0, 128];
  /** 100x50: an opaque red core inside a 10 px half-transparent yellow border. */
  const mark = (): RawImage => synthesize(100, 50, (x, y) => (x < 10 || y < 10 || x >= 90 || y >= 40 ? BORDER : INNER));
  const base = (): RawImage => synthesize(400, 300, () => BASE);

  const blend = (wm: Rgba, opacity: number): number[] => {
    const a = (wm[3] / 255) * opacity;
    return [0, 1, 2].map((c) => BASE[c]! * (1 - a) + wm[c]! * a);
  };

  async function watermarkIds(): Promise<{ baseId: string; markId: string }> {
    return { baseId: await upload("wm-base.png", await encodePng(base())), markId: await upload("wm-mark.png", await encodePng(mark())) };
  }

  // wm_scale 0.25 of a 400 px output = 100 px: the mark is drawn at its own size.
  const placements: Array<[position: string, pad: number, x: number, y: number]> = [
    ["top-left", 12, 12, 12],
    ["bottom-right", 12, 400 - 100 - 12, 300 - 50 - 12],
    ["center", 30, 150, 125],
    ["top-right", 0, 300, 0],
    ["bottom", 5, 150, 245],
  ];

  it.each(placements)("wm_pos=%s wm_pad=%i at wm_op=0.5: box and blend", async (position, pad, x, y) => {
    const { baseId, markId } = await watermarkIds();
    const out = await transform(baseId, `w=400&fmt=png&wm=${markId}&wm_pos=${position}&wm_scale=0.25&wm_op=0.5&wm_pad=${pad}`);
    expect([out.image.width, out.image.height]).toEqual([400, 300]);
    const box = changedBox(out.image, BASE, 3);
    expect(box, "watermark drawn").not.toBeNull();
    for (const [got, want] of [[box!.x0, x], [box!.y0, y], [box!.x1, x + 100], [box!.y1, y + 50]] as const) {
      expect(Math.abs(got - want), `box ${JSON.stringify(box)} vs ${x},${y} 100x50`).toBeLessThanOrEqual(1);
    }
    // Under the opaque core: base·(1 - op) + wm·op. Under the border: alpha 128/255 × op.
    expect(colourDistance(pixel(out.image, x + 50, y + 25), blend(INNER, 0.5))).toBeLessThanOrEqual(LOSSLESS_TOLERANCE);
    expect(colourDistance(pixel(out.image, x + 4, y + 25), blend(BORDER, 0.5))).toBeLessThanOrEqual(LOSSLESS_TOLERANCE);
    expect(pixel(out.image, x + 50, y + 25)[3]).toBe(255);
  });

  it("default opacity 1 shows the opaque core as is; wm_scale 0.5 doubles the mark (bottom-right, pad 0)", async () => {
    const { baseId, markId } = await watermarkIds();
    const out = await transform(baseId, `w=400&fmt=png&wm=${markId}&wm_scale=0.5&wm_pad=0`);
    const box = changedBox(out.image, BASE, 3)!;
    expect(box).toEqual({ x0: 200, y0: 200, x1: 400, y1: 300 });
    expect(colourDistance(pixel(out.image, 300, 250), INNER)).toBeLessThanOrEqual(LOSSLESS_TOLERANCE);
    expect(colourDistance(pixel(out.image, 205, 250), blend(BORDER, 1))).toBeLessThanOrEqual(6);
  });

  it("wm_pos=tile repeats the mark on a grid that covers the image", async () => {
    const { baseId, markId } = await watermarkIds();
    const out = await transform(baseId, `w=400&fmt=png&wm=${markId}&wm_pos=tile&wm_scale=0.25&wm_op=0.5&wm_pad=10`);
    // Copies at x = 10, 120, 230, 340 and y = 10, 70, 130, 190, 250; the last column is cut by the edge.
    const core = blend(INNER, 0.5);
    for (const x of [10, 120, 230, 340]) {
      for (const y of [10, 70, 130, 190, 250]) {
        expect(colourDistance(pixel(out.image, x + 50, y + 25), core), `copy at ${x},${y}`).toBeLessThanOrEqual(LOSSLESS_TOLERANCE);
      }
    }
    // Gaps between copies keep the base.
    expect(pixel(out.image, 115, 35)).toEqual(BASE);
    expect(pixel(out.image, 60, 65)).toEqual(BASE);
    expect(pixel(out.image, 5, 5)).toEqual(BASE);
    expect(changedBox(out.image, BASE, 3)).toEqual({ x0: 10, y0: 10, x1: 400, y1: 300 });
  });

  it("the corpus logo (788x256 palette PNG with tRNS) lands inside its centred box", async () => {
    const { baseId } = await watermarkIds();
    const logoId = await uploadCorpus("png-alpha-watermark-debian.png");
    const out = await transform(baseId, `w=400&fmt=png&wm=${logoId}&wm_pos=center&wm_scale=0.5`);
    // 200 px wide, 256 * 200 / 788 = 65 px high, centred: x 100..300, y 118..183.
    const box = changedBox(out.image, BASE, 8)!;
    expect(box).not.toBeNull();
    expect(box.x0).toBeGreaterThanOrEqual(99);
    expect(box.y0).toBeGreaterThanOrEqual(117);
    expect(box.x1).toBeLessThanOrEqual(301);
    expect(box.y1).toBeLessThanOrEqual(184);
    expect(box.x1 - box.x0).toBeGreaterThanOrEqual(150);
    // Outside the box the base is untouched.
    expect(pixel(out.image, 50, 150)).toEqual(BASE);
    expect(pixel(out.image, 350, 150)).toEqual(BASE);
  });
});

// ---------------------------------------------------------------------------------------------
// 5. Perceptual similarity to sharp

/**
 * How the reference decodes the source before resizing. sharp applies embedded ICC profiles and
 * converts CMYK through an ICC profile ("colour-managed"); the service does neither (see the
 * known-gap tests below), so those two files are also compared with a reference that decodes
 * the way the service documents.
 */
type Decoding = "colour-managed" | "icc-ignored" | "naive-cmyk";

/** The geometry a request asks for, derived from the parameter contract: a source region and its output size. */
interface Plan {
  readonly region: readonly [x: number, y: number, w: number, h: number];
  readonly width: number;
  readonly height: number;
}

interface SimilarityOp {
  readonly name: string;
  readonly query: string;
  readonly plan: (width: number, height: number) => Plan;
}

interface Row {
  readonly file: string;
  readonly decoding: Decoding;
  readonly op: string;
  readonly size: string;
  readonly upscale: boolean;
  /** Against sharp's resize (libvips shrink + Lanczos3 reduce) of the same region. */
  readonly sharpPsnr: number;
  readonly sharpSsim: number;
  /** Against a plain Lanczos3 resize (image-compare.ts) of sharp's decoded pixels. */
  readonly lanczosPsnr: number;
  readonly lanczosSsim: number;
}

const SIMILARITY_OPS: readonly SimilarityOp[] = [
  {
    name: "w=400",
    query: "w=400",
    // scale-down: never enlarged.
    plan: (w, h) => (w <= 400 ? { region: [0, 0, w, h], width: w, height: h } : { region: [0, 0, w, h], width: 400, height: Math.round((h * 400) / w) }),
  },
  {
    name: "cover 300x300",
    query: "w=300&h=300&fit=cover",
    // Centre gravity: the centred square (offsets rounded half up), scaled to 300x300. (sharp's own
    // fit=cover crops after resizing, in whole output pixels: up to 0.5 output px off centre, which
    // alone costs ~25 dB on detailed photos, so the reference crops the source instead.)
    plan: (w, h) => {
      const side = Math.min(w, h);
      return { region: [Math.round((w - side) / 2), Math.round((h - side) / 2), side, side], width: 300, height: 300 };
    },
  },
  {
    name: "contain 300x300",
    query: "w=300&h=300&fit=contain",
    plan: (w, h) =>
      w >= h
        ? { region: [0, 0, w, h], width: 300, height: Math.round((h * 300) / w) }
        : { region: [0, 0, w, h], width: Math.round((w * 300) / h), height: 300 },
  },
];

const rows: Row[] = [];
const decodedCache = new Map<string, RawImage>();

async function decodeUpright(file: string, decoding: Decoding): Promise<RawImage> {
  const key = `${file}|${decoding}`;
  const cached = decodedCache.get(key);
  if (cached) return cached;
  const bytes = corpusBytes(file);
  let image: RawImage;
  if (decoding === "naive-cmyk") {
    // sharp's CMYK samples (Adobe inversion undone), converted with R = (255 - C)(255 - K) / 255.
    const { data, info } = await sharp(bytes).pipelineColourspace("cmyk").toColourspace("cmyk").raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 4) throw new Error(`expected CMYK samples, got ${info.channels} channels`);
    const rgba = new Uint8Array(info.width * info.height * 4);
    for (let p = 0; p < info.width * info.height; p++) {
      const k = 255 - data[p * 4 + 3]!;
      for (let c = 0; c < 3; c++) rgba[p * 4 + c] = Math.round(((255 - data[p * 4 + c]!) * k) / 255);
      rgba[p * 4 + 3] = 255;
    }
    image = { width: info.width, height: info.height, data: rgba };
  } else {
    image = await decodeRgba(sharp(bytes, { ignoreIcc: decoding === "icc-ignored" }).rotate());
  }
  decodedCache.set(key, image);
  return image;
}

const measuredCache = new Map<string, Row>();

/** Fetches each op as PNG and compares it with both references; returns the rows (also kept for the table). */
async function measure(file: string, decoding: Decoding, ops: readonly SimilarityOp[]): Promise<Row[]> {
  const id = await uploadCorpus(file);
  const decoded = await decodeUpright(file, decoding);
  const measured: Row[] = [];
  for (const op of ops) {
    const key = `${file}|${decoding}|${op.name}`;
    const known = measuredCache.get(key);
    if (known) {
      measured.push(known);
      continue;
    }
    const { region, width, height } = op.plan(decoded.width, decoded.height);
    const [x, y, w, h] = region;
    const out = await transform(id, `${op.query}&fmt=png`);
    expect([out.image.width, out.image.height], `${file} ?${op.query}`).toEqual([width, height]);
    const cut = extract(decoded, x, y, w, h);
    const sameSize = w === width && h === height;
    const bySharp = sameSize ? cut : await decodeRgba(sharpFromRaw(cut).resize(width, height, { fit: "fill", kernel: "lanczos3" }));
    const byLanczos = sameSize ? cut : lanczos3Resize(cut, width, height);
    const row: Row = {
      file,
      decoding,
      op: op.name,
      size: `${width}x${height}`,
      upscale: width > w || height > h,
      sharpPsnr: psnr(out.image, bySharp),
      sharpSsim: ssim(out.image, bySharp),
      lanczosPsnr: psnr(out.image, byLanczos),
      lanczosSsim: ssim(out.image, byLanczos),
    };
    measuredCache.set(key, row);
    measured.push(row);
    rows.push(row);
  }
  return measured;
}

/**
 * Rows below the thresholds. Downscales must match both sharp and the plain Lanczos3; upscales
 * only the plain Lanczos3, because libvips' upscale is not centred (a mirror-symmetric 61x41
 * image upscaled to 100x67 by sharp differs from its mirror by up to ~195 levels; see the
 * "resampling is centred" tests).
 */
function belowThreshold(measured: readonly Row[]): string[] {
  const failures: string[] = [];
  for (const r of measured) {
    if (r.lanczosPsnr < MIN_PSNR_DB || r.lanczosSsim < MIN_SSIM) {
      failures.push(`${r.op}: vs Lanczos3 PSNR ${r.lanczosPsnr.toFixed(2)} dB, SSIM ${r.lanczosSsim.toFixed(4)}`);
    }
    if (!r.upscale && (r.sharpPsnr < MIN_PSNR_DB || r.sharpSsim < MIN_SSIM)) {
      failures.push(`${r.op}: vs sharp PSNR ${r.sharpPsnr.toFixed(2)} dB, SSIM ${r.sharpSsim.toFixed(4)}`);
    }
  }
  return failures;
}

describe("similarity to sharp's output for the same operations (fmt=png)", () => {
  // w=400 and cover 300x300 everywhere; contain (the same resampling as w=400 at another
  // scale) on a few, to stay within the time budget.
  const [WIDTH_400, COVER_300, CONTAIN_300] = SIMILARITY_OPS;
  const bothOps = [WIDTH_400!, COVER_300!];
  const allOps = [WIDTH_400!, COVER_300!, CONTAIN_300!];
  const photos: Array<[file: string, ops: SimilarityOp[]]> = [
    ["photo-small-aero1.jpg", allOps],
    ["photo-medium-storm.jpg", allOps],
    ["photo-4mp-eveningglow.jpg", bothOps],
    ["jpeg-progressive-picture1a.jpg", allOps],
    ["png-interlaced-photo-kite.png", bothOps],
    ["webp-lossy-photo-bythewater.webp", bothOps],
    ["avif-photo-kite.avif", bothOps],
    ["png-16bit-rgb-imagemagick.png", allOps],
    // Non-interlaced PNGs stream their rows into the resampler (8.3 MP, palette, grey).
    ["png-large-cascade.png", bothOps],
    ["png-palette-photo-building.png", bothOps],
    ["png-gray-basketball.png", bothOps],
    ["jpeg-grayscale-grey.jpg", bothOps],
    ["gif-animated-photo-pan.gif", allOps], // sharp reads the first frame; 300x300 cover enlarges it
  ];

  it.each(photos)("%s", async (file, ops) => {
    const measured = await measure(file, "colour-managed", ops);
    expect(belowThreshold(measured), `${file} below PSNR ${MIN_PSNR_DB} dB / SSIM ${MIN_SSIM}`).toEqual([]);
  });

  it("upscaling (aero1 to 1000 px, the GIF to 600 px) matches the plain Lanczos3", async () => {
    const contain = (side: number): SimilarityOp => ({
      name: `contain ${side}x${side}`,
      query: `w=${side}&h=${side}&fit=contain`,
      plan: (w, h) => (w >= h ? { region: [0, 0, w, h], width: side, height: Math.round((h * side) / w) } : { region: [0, 0, w, h], width: Math.round((w * side) / h), height: side }),
    });
    const measured = [
      ...(await measure("photo-small-aero1.jpg", "colour-managed", [contain(1000)])),
      ...(await measure("gif-animated-photo-pan.gif", "colour-managed", [contain(600)])),
    ];
    expect(measured.every((r) => r.upscale)).toBe(true);
    expect(belowThreshold(measured)).toEqual([]);
  });

  it("jpeg-cmyk.jpg (no embedded profile) matches the standard CMYK conversion of sharp's CMYK samples", async () => {
    expect(belowThreshold(await measure("jpeg-cmyk.jpg", "naive-cmyk", SIMILARITY_OPS.slice(0, 2)))).toEqual([]);
  });

  // RGB matrix/TRC profiles (Adobe RGB, Display P3) are converted to sRGB (src/pipeline/steps/colour.ts).
  it("jpeg-icc-adobergb.jpg is colour-managed like sharp (ICC profile applied)", async () => {
    const managed = await measure("jpeg-icc-adobergb.jpg", "colour-managed", SIMILARITY_OPS.slice(0, 2));
    const ignored = await measure("jpeg-icc-adobergb.jpg", "icc-ignored", SIMILARITY_OPS.slice(0, 1));
    expect(belowThreshold(managed)).toEqual([]);
    expect(managed[0]!.lanczosPsnr, "closer to the colour-managed decode than to the unmanaged one").toBeGreaterThan(ignored[0]!.lanczosPsnr);
  });

  // Known gap: this CMYK file embeds no profile. sharp assumes libvips' built-in CMYK profile;
  // we ship no third-party profile, so untagged CMYK keeps the standard inverted-CMYK formula.
  // CMYK files that embed a profile are converted through it (test/worker/colour.test.ts).
  it.fails("KNOWN GAP jpeg-cmyk.jpg converts CMYK like sharp (through a CMYK ICC profile)", async () => {
    const managed = await measure("jpeg-cmyk.jpg", "colour-managed", SIMILARITY_OPS.slice(0, 2));
    const naive = await measure("jpeg-cmyk.jpg", "naive-cmyk", SIMILARITY_OPS.slice(0, 1));
    expect(belowThreshold(managed)).toEqual([]);
    expect(managed[0]!.lanczosPsnr, "closer to the ICC conversion than to the naive one").toBeGreaterThan(naive[0]!.lanczosPsnr);
  });

  afterAll(() => {
    if (rows.length === 0) return;
    const cell = (p: number, s: number): string => `${(p === Infinity ? "inf" : p.toFixed(2)).padStart(6)} ${s.toFixed(4)}`;
    const lines = [
      `[pixels] service output (fmt=png) vs sharp ${sharp.versions.sharp} / libvips ${sharp.versions.vips} resize, and vs a plain Lanczos3 of sharp's decode;` +
        ` thresholds PSNR >= ${MIN_PSNR_DB} dB, SSIM >= ${MIN_SSIM} (windowed luma SSIM, 8x8, stride 4); up = upscale (sharp column not asserted)`,
      `${"file".padEnd(33)} ${"decoded as".padEnd(14)} ${"op".padEnd(17)} ${"size".padEnd(9)} ${"vs sharp dB / SSIM".padEnd(19)} ${"vs Lanczos3 dB / SSIM"}`,
      ...rows.map(
        (r) =>
          `${r.file.padEnd(33)} ${r.decoding.padEnd(14)} ${r.op.padEnd(17)} ${(r.size + (r.upscale ? " up" : "")).padEnd(9)} ` +
          `${cell(r.sharpPsnr, r.sharpSsim).padEnd(19)} ${cell(r.lanczosPsnr, r.lanczosSsim)}${belowThreshold([r]).length > 0 ? "  BELOW" : ""}`,
      ),
    ];
    console.log(lines.join("\n"));
  });
});

describe("resampling is centred: a left-right symmetric source gives a symmetric output", () => {
  /** White middle half on black: symmetric when the width is a multiple of 4. */
  const band = (width: number, height: number): RawImage =>
    synthesize(width, height, (x) => (x >= width / 4 && x < (3 * width) / 4 ? [255, 255, 255, 255] : [0, 0, 0, 255]));
  const mirroredNoise = (width: number, height: number): RawImage => {
    const n = noise(width, height);
    return synthesize(width, height, (x, y) => pixel(n, Math.min(x, width - 1 - x), y));
  };
  const cases: Array<[label: string, make: () => RawImage, query: string]> = [
    ["2400x160 band ?w=400 (box pre-shrink 3 divides 2400)", () => band(2400, 160), "w=400"],
    ["2000x160 band ?w=500 (pre-shrink 2)", () => band(2000, 160), "w=500"],
    ["2560x160 band ?w=400 (pre-shrink 3, 2560 = 3 x 853 + 1)", () => band(2560, 160), "w=400"],
    ["4004x100 band ?w=400 (pre-shrink 5, 4004 = 5 x 800 + 4)", () => band(4004, 100), "w=400"],
    ["61x41 mirrored noise ?w=100&fit=contain (upscale)", () => mirroredNoise(61, 41), "w=100&fit=contain"],
  ];

  it("(about the reference) libvips does not upscale symmetrically, so upscales are judged against the plain Lanczos3 only", async () => {
    const source = mirroredNoise(61, 41);
    const bySharp = await decodeRgba(sharpFromRaw(source).resize(100, 67, { fit: "fill", kernel: "lanczos3" }));
    const byLanczos = lanczos3Resize(source, 100, 67);
    expect(mirrorError(byLanczos).error).toBeLessThanOrEqual(1);
    // If this starts failing, sharp upscales centred now: assert the sharp column for upscales too.
    expect(mirrorError(bySharp).error).toBeGreaterThan(20);
  });

  it.each(cases)("%s", async (label, make, query) => {
    const id = await upload(`mirror-${label.split(" ")[0]}.png`, await encodePng(make()));
    const out = await transform(id, `${query}&fmt=png`);
    const worst = mirrorError(out.image);
    const { width } = out.image;
    const around = (x: number): string => [x - 1, x, x + 1].filter((u) => u >= 0 && u < width).map((u) => pixel(out.image, u, worst.y)[0]).join(",");
    const detail =
      worst.error === 0
        ? "symmetric"
        : `pixel ${worst.x},${worst.y} differs from its mirror ${width - 1 - worst.x},${worst.y} by ${worst.error} ` +
          `(R around them: ${around(worst.x)} | ${around(width - 1 - worst.x)})`;
    expect(worst.error, `${out.url}: ${detail}`).toBeLessThanOrEqual(2);
  });
});

// ---------------------------------------------------------------------------------------------
// 6. Metadata stripping

describe("outputs carry no metadata from the source", () => {
  const files = ["jpeg-gps-real-colorfulcups.jpg", "hostile-php-in-exif.jpg"];
  const formats: Array<[query: string, type: string]> = [
    ["w=300", "image/jpeg"],
    ["w=300&fmt=png", "image/png"],
    ["w=300&fmt=webp", "image/webp"],
  ];

  it.each(files)("%s: the source has EXIF (and the payloads); its outputs have none", async (file) => {
    const source = corpusBytes(file);
    const sourceMeta = await sharp(source).metadata();
    expect(sourceMeta.exif, "the source should carry EXIF").toBeDefined();
    if (file.startsWith("hostile-")) expect(containsAscii(source, "<?php")).toBe(true);

    const id = await uploadCorpus(file);
    // JPEG (the source format) for both; PNG and WebP too for the small hostile file.
    for (const [query, type] of file.startsWith("hostile-") ? formats : formats.slice(0, 1)) {
      const out = await transform(id, query);
      expect(out.contentType, query).toBe(type);
      const meta = await sharp(out.bytes).metadata();
      expect(meta.exif, `${query}: exif`).toBeUndefined();
      expect(meta.xmp, `${query}: xmp`).toBeUndefined();
      expect(meta.iptc, `${query}: iptc`).toBeUndefined();
      expect(meta.icc, `${query}: icc`).toBeUndefined();
      expect(meta.comments ?? [], `${query}: comments`).toEqual([]);
      for (const needle of ["<?php", "<script", "Exif\0\0", "http://ns.adobe.com/xap", "GPSInfo"]) {
        expect(containsAscii(out.bytes, needle), `${query}: contains ${JSON.stringify(needle)}`).toBe(false);
      }
      if (type === "image/jpeg") {
        const segments = jpegSegments(out.bytes);
        const appOrCom = segments.markers.filter((m) => (m >= 0xe1 && m <= 0xef) || m === 0xfe);
        expect(appOrCom.map((m) => m.toString(16)), `${query}: APP1-15/COM segments ${segments.identifiers.join(", ")}`).toEqual([]);
        expect(segments.trailingBytes, `${query}: bytes after EOI`).toBe(0);
      } else if (type === "image/png") {
        expect(pngChunks(out.bytes).filter((t) => ["eXIf", "tEXt", "zTXt", "iTXt", "iCCP", "tIME"].includes(t))).toEqual([]);
      } else {
        expect(webpChunks(out.bytes).filter((t) => !["VP8 ", "VP8L", "VP8X", "ALPH"].includes(t))).toEqual([]);
      }
    }
  });
});
