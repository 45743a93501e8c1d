// CRC-32 (PNG, zlib): the standard check value, the running form, and agreement with a
// bit-at-a-time division written here from the definition.
import { describe, expect, it } from "vitest";
import { CRC32_INITIAL, crc32, crc32Final, crc32Update } from "../../src/images/crc32";
import { mulberry32 } from "../mulberry32";

/** The definition, one bit at a time: no table. */
function crc32ByDivision(bytes: Uint8Array): number {
  let register = 0xffffffff;
  for (const byte of bytes) {
    for (let bit = 0; bit < 8; bit++) {
      const feedback = (register ^ (byte >>> bit)) & 1;
      register = (register >>> 1) ^ (feedback ? 0xedb88320 : 0);
    }
  }
  return (~register) >>> 0;
}

describe("crc32", () => {
  it("gives the check value 0xCBF43926 for '123456789' and 0 for nothing", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it("gives a PNG IEND chunk's well-known CRC (0xAE426082)", () => {
    expect(crc32(new TextEncoder().encode("IEND"))).toBe(0xae426082);
  });

  it("matches the bit-at-a-time definition on random buffers, whole and fed in pieces", () => {
    const random = mulberry32(12);
    for (let round = 0; round < 50; round++) {
      const bytes = new Uint8Array(Math.floor(random() * 300));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
      const expected = crc32ByDivision(bytes);
      expect(crc32(bytes)).toBe(expected);
      const cut = Math.floor(random() * (bytes.length + 1));
      const running = crc32Update(crc32Update(CRC32_INITIAL, bytes.subarray(0, cut)), bytes.subarray(cut));
      expect(crc32Final(running)).toBe(expected);
    }
  });
});
