/**
 * Our JPEG decoder's Huffman tables (wasm/jpeg/jpeg.c, build_huff): a DHT segment that gives
 * more codes of one length than that length can hold is refused before anything is stored.
 * An earlier version filled its lookup table first and checked afterwards, so 255 codes of
 * length 1 wrote far past the table into the module's static data, and the next image decoded
 * by the same (shared) instance came out wrong.
 */
import { describe, expect, it } from "vitest";
import { ProblemError } from "../../src/errors";
import { decodeNativeJpeg } from "../../src/codecs/native-jpeg";
import { loadCorpus } from "./fixtures";

/** `jpeg` with a DHT segment inserted after SOI: table class tc, id th, 255 codes of length 1. */
function withOversubscribedDht(jpeg: Uint8Array, tc: number, th: number): Uint8Array {
  const length = 2 + 17 + 255;
  const segment = new Uint8Array(2 + length);
  segment.set([0xff, 0xc4, length >> 8, length & 255, (tc << 4) | th, 255]);
  for (let i = 0; i < 255; i++) segment[2 + 2 + 17 + i] = i;
  const out = new Uint8Array(jpeg.length + segment.length);
  out.set(jpeg.subarray(0, 2));
  out.set(segment, 2);
  out.set(jpeg.subarray(2), 2 + segment.length);
  return out;
}

describe("native JPEG decoder: over-subscribed Huffman tables", () => {
  it("refuses the file with a 422 and decodes the next image exactly as before", async () => {
    const good = await loadCorpus("photo-small-aero1.jpg");
    const first = decodeNativeJpeg(good, 0);
    const reference = first.data.slice();
    first.release();
    for (const [tc, th] of [[0, 0], [1, 0], [1, 3]] as const) {
      let thrown: unknown;
      try {
        decodeNativeJpeg(withOversubscribedDht(good, tc, th), 0).release();
      } catch (err) {
        thrown = err;
      }
      expect(thrown, `class ${tc}, table ${th}`).toBeInstanceOf(ProblemError);
      expect(thrown, `class ${tc}, table ${th}`).toMatchObject({ status: 422 });
      const again = decodeNativeJpeg(good, 0);
      const same = again.data.length === reference.length && again.data.every((v, i) => v === reference[i]);
      again.release();
      expect(same, `the decode after class ${tc}, table ${th}`).toBe(true);
    }
  });
});
