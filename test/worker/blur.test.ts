// The Gaussian blur's box cascade: its variance matches sigma^2, checked on the radii and on the
// pixels an impulse spreads into (second moment of the blurred image).
import { describe, expect, it } from "vitest";
import { boxRadii, gaussianBlur } from "../../src/pipeline/ops/blur";

function cascadeVariance(radii: number[]): number {
  return radii.reduce((sum, r) => sum + (r * (r + 1)) / 3, 0);
}

describe("boxRadii", () => {
  it("gives radii that differ by at most one and whose summed variance is the nearest to sigma^2", () => {
    for (let sigma = 0.3; sigma < 120; sigma *= 1.07) {
      const radii = boxRadii(sigma, 3);
      expect(radii).toHaveLength(3);
      const small = Math.min(...radii);
      expect(Math.max(...radii) - small).toBeLessThanOrEqual(1);
      // One swap small -> small + 1 moves the variance by 2(small + 1)/3: the choice is within half of it.
      expect(Math.abs(cascadeVariance(radii) - sigma * sigma)).toBeLessThanOrEqual((small + 1) / 3 + 1e-9);
    }
  });

  it("meets sigma^2 exactly where whole radii can: 6 -> [2, 2, 2], 8 -> [2, 2, 3]", () => {
    // sigma^2 = 6 is met exactly by three radius-2 boxes (each 2 * 3 / 3 = 2).
    expect(boxRadii(Math.sqrt(6), 3)).toEqual([2, 2, 2]);
    // sigma^2 = 8: two radius-2 boxes (4) and one radius-3 box (4).
    expect(boxRadii(Math.sqrt(8), 3)).toEqual([2, 2, 3]);
  });
});

describe("gaussianBlur", () => {
  it("spreads a line with the variance of its box cascade (within 5%), close to sigma^2", () => {
    const size = 121;
    const centre = 60;
    const data = new Uint8ClampedArray(size * size * 4);
    for (let i = 3; i < data.length; i += 4) data[i] = 255;
    // A bright column: the blur along x of a vertical line is then a 1-D profile in every row.
    for (let y = 0; y < size; y++) data[(y * size + centre) * 4] = 255;
    for (const sigma of [2, 5, 9]) {
      const out = gaussianBlur({ width: size, height: size, data: data.slice(), hasAlpha: false }, sigma);
      const row = (centre * size) * 4;
      let mass = 0;
      let moment = 0;
      for (let x = 0; x < size; x++) {
        const v = out.data[row + x * 4]!;
        mass += v;
        moment += v * (x - centre) ** 2;
      }
      const expected = cascadeVariance(boxRadii(sigma, 3));
      expect(moment / mass / expected).toBeGreaterThan(0.95);
      expect(moment / mass / expected).toBeLessThan(1.05);
      expect(Math.abs(expected - sigma * sigma) / (sigma * sigma)).toBeLessThan(0.2);
    }
  });
});
