/**
 * Our binding to the two wasm-bindgen modules (src/codecs/wasm.ts): the JS-value table's
 * convention, and PNG encode/decode and @jsquash/resize called through it (the return area,
 * the module's error messages, many calls on one instance).
 */
import { describe, expect, it } from "vitest";
import { resize } from "../../src/codecs";
import { decodePng, encodePng } from "../../src/codecs/png";
import { JsValueTable, pngCodec, withInstance } from "../../src/codecs/wasm";
import { loadCorpus } from "./fixtures";
import { coordinates, maxChannelDifference, pixel, type Px, solidImage, synthetic } from "./image-helpers";

describe("JsValueTable", () => {
  it("holds undefined, null, true, false at 128..131 and hands out indices from 132", () => {
    const table = new JsValueTable();
    expect([128, 129, 130, 131].map((index) => table.get(index))).toEqual([undefined, null, true, false]);
    expect(table.hold("a")).toBe(132);
    expect(table.hold("b")).toBe(133);
    expect(table.get(132)).toBe("a");
    expect(table.held).toBe(2);
  });

  it("reuses released indices and never releases the fixed ones", () => {
    const table = new JsValueTable();
    const first = table.hold({ n: 1 });
    table.hold({ n: 2 });
    expect(table.release(first)).toEqual({ n: 1 });
    expect(table.held).toBe(1);
    expect(table.hold("again")).toBe(first);
    expect(table.release(130)).toBe(true);
    expect(table.get(130)).toBe(true);
    // A second release of the same index must not hand it out twice.
    table.release(first);
    table.release(first);
    expect(table.hold("x")).toBe(first);
    expect(table.hold("y")).toBe(134);
  });
});

describe("PNG through the wasm-bindgen module", () => {
  it("encodes through the return area: signature, IHDR size, and the same pixels back, many times on one instance", async () => {
    for (let round = 0; round < 20; round++) {
      const width = 7 + round;
      const height = 3 + 2 * round;
      const image = coordinates(width, height);
      const bytes = await encodePng(image, 100);
      expect(Array.from(bytes.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const header = new DataView(bytes.buffer, bytes.byteOffset + 16, 8);
      expect([header.getUint32(0), header.getUint32(4)]).toEqual([width, height]);
      const back = await decodePng(bytes);
      expect([back.width, back.height]).toEqual([width, height]);
      expect(back.data).toEqual(image.data);
      expect(back.data.buffer.byteLength).toBe(width * height * 4);
    }
  });

  it("throws the module's own message for a corrupt file, and the next call works", async () => {
    const corrupt = await loadCorpus("pngsuite-xd9n2c08.png");
    await expect(withInstance(pngCodec, (codec) => codec.decode(corrupt))).rejects.toThrow(/unwrap_throw/);
    const image = solidImage(5, 4, [9, 8, 7, 255]);
    expect((await decodePng(await encodePng(image, 100))).data).toEqual(image.data);
  });
});

describe("@jsquash/resize through the wasm-bindgen module", () => {
  // Premultiplying by alpha 128 and back rounds a channel by at most 1.
  it.each([
    ["opaque", [40, 160, 220, 255], 0],
    ["translucent (premultiplied)", [40, 160, 220, 128], 1],
  ] as Array<[string, Px, number]>)("a solid %s image stays that colour at the new size", async (_name, colour, tolerance) => {
    const out = await resize(solidImage(50, 40, colour), 30, 17, "jsquash");
    expect([out.width, out.height]).toEqual([30, 17]);
    expect(out.data).toBeInstanceOf(Uint8ClampedArray);
    expect(out.data.length).toBe(30 * 17 * 4);
    let worst = 0;
    for (let y = 0; y < 17; y++) for (let x = 0; x < 30; x++) worst = Math.max(worst, maxChannelDifference(pixel(out, x, y), colour));
    expect(worst).toBeLessThanOrEqual(tolerance);
  });

  it("keeps left and right apart (rows are not shifted or mirrored)", async () => {
    const image = synthetic(60, 20, (x) => (x < 30 ? [255, 0, 0, 255] : [0, 0, 255, 255]));
    const out = await resize(image, 36, 12, "jsquash");
    expect(pixel(out, 2, 6)).toEqual([255, 0, 0, 255]);
    expect(pixel(out, 33, 6)).toEqual([0, 0, 255, 255]);
  });
});
