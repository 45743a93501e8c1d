/**
 * Where a PNG's pieces lie, for streaming its rows (see NativeSession.decodePngResized): the
 * IHDR fields, the palette and tRNS bodies, and the IDAT bodies in order (views of the file,
 * never copies). The walk stops at IEND or at the end of the file; lengths are bounded by the
 * file, so a damaged file gives a short IDAT list (the row stream then reports it truncated).
 */
import { ProblemError } from "../errors";

export interface PngLayout {
  readonly width: number;
  readonly height: number;
  /** PNG colour type: 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA. */
  readonly colourType: number;
  readonly bitDepth: number;
  readonly interlaced: boolean;
  /** RGB triples (PLTE body), empty when absent. */
  readonly palette: Uint8Array;
  /** tRNS body, empty when absent. */
  readonly transparency: Uint8Array;
  readonly idat: readonly Uint8Array[];
  /** Colour type 4 or 6, or a tRNS chunk. */
  readonly hasAlpha: boolean;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function invalid(detail: string): ProblemError {
  return new ProblemError(422, "invalid-image", detail);
}

export function pngLayout(bytes: Uint8Array): PngLayout {
  if (bytes.length < 33 || SIGNATURE.some((v, i) => bytes[i] !== v)) throw invalid("The file is not a PNG image.");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = (at: number): string => String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
  if (type(12) !== "IHDR" || view.getUint32(8) !== 13) throw invalid("The PNG does not start with an IHDR chunk.");
  let palette: Uint8Array = new Uint8Array(0);
  let transparency: Uint8Array = new Uint8Array(0);
  const idat: Uint8Array[] = [];
  for (let pos = 33; pos + 8 <= bytes.length; ) {
    const length = view.getUint32(pos);
    const name = type(pos + 4);
    const body = pos + 8;
    const end = Math.min(bytes.length, body + length);
    if (name === "IEND") break;
    if (name === "IDAT") idat.push(bytes.subarray(body, end));
    else if (name === "PLTE") palette = bytes.subarray(body, end - ((end - body) % 3));
    else if (name === "tRNS") transparency = bytes.subarray(body, end);
    pos = body + length + 4;
  }
  const colourType = bytes[25]!;
  return {
    width: view.getUint32(16),
    height: view.getUint32(20),
    colourType,
    bitDepth: bytes[24]!,
    interlaced: bytes[28] !== 0,
    palette,
    transparency,
    idat,
    hasAlpha: colourType === 4 || colourType === 6 || transparency.length > 0,
  };
}
