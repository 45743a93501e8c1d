/**
 * Our own JPEG decoder (wasm/jpeg/jpeg.wasm) inside workerd: the `.wasm` import gives a
 * compiled module, the wrapper instantiates it once, and it decodes at every scale.
 */
import { describe, expect, it } from "vitest";
import { ProblemError } from "../../src/errors";
import { chooseScaleShift, decodeNativeJpeg, nativeJpegMemoryBytes, probeNativeJpeg } from "../../src/codecs/native-jpeg";
import { loadCorpus, loadCorpusHead, loadImage } from "./fixtures";

describe("native JPEG decoder in workerd", () => {
  it("probes and decodes photo-small-aero1.jpg at 1/1, 1/2, 1/4 and 1/8", async () => {
    const bytes = await loadCorpus("photo-small-aero1.jpg");
    expect(probeNativeJpeg(bytes)).toMatchObject({ width: 640, height: 480, components: 3, progressive: false, color: "ycbcr", supported: true });
    const sizes: [number, number][] = [[640, 480], [320, 240], [160, 120], [80, 60]];
    let previousMean = -1;
    for (const shift of [0, 1, 2, 3] as const) {
      const image = decodeNativeJpeg(bytes, shift);
      expect([image.width, image.height]).toEqual(sizes[shift]);
      expect(image.data.length).toBe(image.width * image.height * 4);
      expect(image.complete).toBe(true);
      let sum = 0;
      let alpha = 0;
      for (let i = 0; i < image.data.length; i += 4) {
        sum += (image.data[i] ?? 0) + (image.data[i + 1] ?? 0) + (image.data[i + 2] ?? 0);
        alpha += image.data[i + 3] === 255 ? 1 : 0;
      }
      expect(alpha).toBe(image.width * image.height);
      // The mean colour hardly changes with the scale (a box-like reduction).
      const mean = sum / (image.width * image.height * 3);
      if (previousMean >= 0) expect(Math.abs(mean - previousMean)).toBeLessThan(1);
      previousMean = mean;
      image.release();
    }
    expect(nativeJpegMemoryBytes()).toBeGreaterThan(0);
    expect(nativeJpegMemoryBytes()).toBeLessThan(8 * 1024 * 1024);
  });

  it("decodes progressive and restart-marker files", async () => {
    for (const name of ["jpegtran-restart-progressive.jpg", "jpegtran-restart-baseline.jpg", "gen-progressive.jpg"]) {
      const bytes = await loadImage(name);
      const probe = probeNativeJpeg(bytes);
      expect(probe.supported).toBe(true);
      const image = decodeNativeJpeg(bytes, 1);
      expect([image.width, image.height]).toEqual([Math.ceil(probe.width / 2), Math.ceil(probe.height / 2)]);
      image.release();
    }
  });

  it("refuses truncated data with a 422 ProblemError", async () => {
    const bytes = await loadCorpusHead("photo-medium-storm.jpg", 12288);
    for (const shift of [0, 3] as const) {
      let thrown: unknown;
      try {
        decodeNativeJpeg(bytes, shift).release();
      } catch (err) {
        thrown = err;
      }
      expect(thrown, `scale 1/${1 << shift}`).toBeInstanceOf(ProblemError);
      expect(thrown, `scale 1/${1 << shift}`).toMatchObject({ status: 422, code: "invalid-image" });
    }
    const partial = decodeNativeJpeg(bytes, 3, { allowCorrupt: true });
    expect(partial.complete).toBe(false);
    partial.release();
  });

  it("picks the shrink-on-load scale like libvips", () => {
    expect(chooseScaleShift(6536, 3676, 800, 0)).toBe(3);
    expect(chooseScaleShift(640, 480, 200, 150)).toBe(1);
  });
});
