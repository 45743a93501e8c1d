// The web editor's pure model (web/src/transform.ts, web/src/crop.ts): the query strings it writes
// are what the server parses, its predicted size is the server's, and its crop maths stay in bounds.
import { describe, expect, it } from "vitest";
import { canonicalString, parseTransform } from "../../src/transform/params";
import { resizeCrop } from "../../web/src/crop";
import { DEFAULT_STATE, fromQuery, fromRotated, outputGeometry, toQuery, toRotated, type EditorState } from "../../web/src/transform";

const SOURCE = { width: 1800, height: 1200 };

const STATES: EditorState[] = [
  DEFAULT_STATE,
  { ...DEFAULT_STATE, crop: { x: 162, y: 0, width: 1620, height: 720 }, rot: 90, w: 300 },
  { ...DEFAULT_STATE, w: 600, h: 300, fit: "cover", gravity: "focal", focal: { x: 0.25, y: 0.9 }, fmt: "webp", q: 70 },
  { ...DEFAULT_STATE, w: 400, h: 400, fit: "pad", bg: "112233", flipH: true, flipV: true, rot: 270, dpr: 2, blur: 2.5, sharpen: 1 },
  { ...DEFAULT_STATE, w: 800, wm: "abc123", wmPos: "tile", wmScale: 0.1, wmOp: 0.5, wmPad: 4, fmt: "" },
];

describe("web editor model", () => {
  it("writes query strings the server accepts, and reads them back to the same state", () => {
    for (const state of STATES) {
      const query = toQuery(state, SOURCE);
      expect(() => parseTransform(new URLSearchParams(query))).not.toThrow();
      expect(fromQuery(query, SOURCE)).toEqual(state);
    }
  });

  it("writes the same transform whatever the parameter order (one canonical form on the server)", () => {
    for (const state of STATES) {
      const query = toQuery(state, SOURCE);
      const reversed = query.split("&").reverse().join("&");
      expect(canonicalString(parseTransform(new URLSearchParams(reversed)).options)).toBe(canonicalString(parseTransform(new URLSearchParams(query)).options));
    }
  });

  it("predicts the output size of crop + rotate + resize", () => {
    const geometry = outputGeometry(STATES[1]!, SOURCE); // 1620x720 crop, turned: 720x1620, 300 wide
    expect([geometry.canvasWidth, geometry.canvasHeight]).toEqual([300, 675]);
    const padded = outputGeometry(STATES[3]!, SOURCE); // dpr 2: a 800x800 canvas
    expect([padded.canvasWidth, padded.canvasHeight]).toEqual([800, 800]);
  });

  it("maps focal points through flip and rotation and back", () => {
    for (const rot of [0, 90, 180, 270] as const) {
      for (const [flipH, flipV] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        const point = { x: 0.2, y: 0.7 };
        const there = toRotated(point, { rot, flipH, flipV });
        const back = fromRotated(there, { rot, flipH, flipV });
        expect(back.x).toBeCloseTo(point.x, 9);
        expect(back.y).toBeCloseTo(point.y, 9);
      }
    }
    expect(toRotated({ x: 0, y: 0 }, { rot: 90, flipH: false, flipV: false })).toEqual({ x: 1, y: 0 }); // top-left goes top-right
  });

  it("resizes the crop inside the image, keeping a locked aspect ratio", () => {
    const start = { x: 300, y: 0, width: 1200, height: 1200 };
    for (const handle of ["n", "s", "e", "w", "ne", "nw", "se", "sw"] as const) {
      for (const [dx, dy] of [[-5000, -5000], [5000, 5000], [-300, 120], [250, -40]] as const) {
        const free = resizeCrop(start, handle, dx, dy, null, SOURCE.width, SOURCE.height);
        const square = resizeCrop(start, handle, dx, dy, 1, SOURCE.width, SOURCE.height);
        for (const crop of [free, square]) {
          expect(crop.x).toBeGreaterThanOrEqual(0);
          expect(crop.y).toBeGreaterThanOrEqual(0);
          expect(crop.x + crop.width).toBeLessThanOrEqual(SOURCE.width);
          expect(crop.y + crop.height).toBeLessThanOrEqual(SOURCE.height);
          expect(crop.width).toBeGreaterThanOrEqual(1);
        }
        expect(Math.abs(square.width - square.height)).toBeLessThanOrEqual(1);
      }
    }
  });
});
