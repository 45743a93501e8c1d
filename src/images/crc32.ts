/**
 * CRC-32 as PNG chunks (PNG specification §5.5), zlib and gzip use it: the generator polynomial
 * of ISO 3309 / ITU-T V.42, x^32 + x^26 + x^23 + x^22 + x^16 + x^12 + x^11 + x^10 + x^8 + x^7 +
 * x^5 + x^4 + x^2 + x + 1, with bits taken least significant first (so the polynomial's bits
 * appear reversed, 0xEDB88320), the register starting at all ones and inverted at the end.
 * Check value: crc32("123456789") = 0xCBF43926.
 *
 * One table lookup per byte. The table holds, for each byte value, what remains after that
 * byte has been shifted through the register. Division by the polynomial is linear over GF(2),
 * so a byte's entry is the XOR of the entries of its set bits: only the eight one-bit entries
 * need the division (the top bit meets the polynomial after its eighth shift, giving the
 * polynomial itself; each lower bit needs one more shift than the bit above it), and every
 * other entry is the XOR of two entries already known.
 */
const REFLECTED_POLYNOMIAL = 0xedb88320;

/** One more step of division by the polynomial, least significant bit first. */
function shiftOnce(register: number): number {
  return (register & 1 ? (register >>> 1) ^ REFLECTED_POLYNOMIAL : register >>> 1) >>> 0;
}

const BYTE_REMAINDERS = (() => {
  const remainders = new Uint32Array(256);
  let oneBit = REFLECTED_POLYNOMIAL;
  for (let bit = 0x80; bit >= 1; bit >>= 1) {
    remainders[bit] = oneBit;
    oneBit = shiftOnce(oneBit);
  }
  for (let value = 3; value < 256; value++) {
    const lowestBit = value & -value;
    if (lowestBit !== value) remainders[value] = remainders[lowestBit]! ^ remainders[value ^ lowestBit]!;
  }
  return remainders;
})();

/** The register before any byte: all ones. */
export const CRC32_INITIAL = 0xffffffff;

/** Feeds `bytes` through a running register (start from CRC32_INITIAL; finish with crc32Final). */
export function crc32Update(register: number, bytes: Uint8Array): number {
  let r = register;
  for (const byte of bytes) r = BYTE_REMAINDERS[(r ^ byte) & 0xff]! ^ (r >>> 8);
  return r >>> 0;
}

/** The checksum from a running register: its bits inverted. */
export function crc32Final(register: number): number {
  return (register ^ 0xffffffff) >>> 0;
}

/** CRC-32 of a whole buffer. */
export function crc32(bytes: Uint8Array): number {
  return crc32Final(crc32Update(CRC32_INITIAL, bytes));
}
