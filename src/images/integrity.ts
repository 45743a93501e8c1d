import { ProblemError } from "../errors";
import { CRC32_INITIAL, crc32Final, crc32Update } from "./crc32";
import type { ImageFormat } from "./format";

/**
 * Checks, as the bytes stream past, that an upload is a whole file of its format: a JPEG
 * reaches its end-of-image marker after the scan data, a PNG its IEND chunk, a GIF its
 * trailer, a WebP its RIFF length, an AVIF ends on a box boundary. Bytes after the end
 * (camera trailers, motion photos) are allowed. Only structure is walked, no pixels decoded;
 * memory is a few bytes whatever the file size.
 */
export interface IntegrityCheck {
  push(chunk: Uint8Array): void;
  /** Throws a 422 problem when the file ended before its format says it should. */
  finish(): void;
}

export function integrityCheck(format: ImageFormat): IntegrityCheck {
  switch (format) {
    case "jpeg":
      return new JpegWalker();
    case "png":
      return new PngWalker();
    case "gif":
      return new GifWalker();
    case "webp":
      return new RiffWalker();
    case "avif":
      return new BoxWalker();
  }
}

function truncated(format: string, why: string): ProblemError {
  return new ProblemError(422, "invalid-image", `The ${format} file is truncated or malformed: ${why}.`);
}

/** Reads fixed-size headers and skips bodies across chunk boundaries; subclasses say what comes next. */
abstract class StructureWalker implements IntegrityCheck {
  protected need: number;
  protected skip = 0;
  protected complete = false;
  protected failure: string | undefined;
  private readonly header = new Uint8Array(16);
  private have = 0;

  protected constructor(
    private readonly format: string,
    firstHeader: number,
  ) {
    this.need = firstHeader;
  }

  push(chunk: Uint8Array): void {
    let pos = 0;
    while (pos < chunk.length && !this.complete && this.failure === undefined) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - pos);
        this.onSkip(chunk.subarray(pos, pos + n));
        this.skip -= n;
        pos += n;
        continue;
      }
      if (this.scanning()) {
        pos = this.scan(chunk, pos);
        continue;
      }
      const n = Math.min(this.need - this.have, chunk.length - pos);
      this.header.set(chunk.subarray(pos, pos + n), this.have);
      this.have += n;
      pos += n;
      if (this.have === this.need) {
        this.have = 0;
        this.onHeader(this.header.subarray(0, this.need));
      }
    }
  }

  finish(): void {
    if (this.failure !== undefined) throw truncated(this.format, this.failure);
    if (!this.complete && !this.completeAtEnd(this.have === 0 && this.skip === 0)) {
      throw truncated(this.format, this.missingEnd());
    }
  }

  protected scanning(): boolean {
    return false;
  }

  /** Bytes passed over by `skip` (a chunk's data), for walkers that check them. */
  protected onSkip(_bytes: Uint8Array): void {}

  protected scan(chunk: Uint8Array, _pos: number): number {
    return chunk.length;
  }

  /** Whether ending here is fine (for formats whose end is a boundary, not a marker). */
  protected completeAtEnd(_atBoundary: boolean): boolean {
    return false;
  }

  protected abstract onHeader(header: Uint8Array): void;
  protected abstract missingEnd(): string;
}

const u16 = (b: Uint8Array, i: number): number => ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
const u32 = (b: Uint8Array, i: number): number => u16(b, i) * 65536 + u16(b, i + 2);
const u32le = (b: Uint8Array, i: number): number => ((b[i] ?? 0) | ((b[i + 1] ?? 0) << 8) | ((b[i + 2] ?? 0) << 16)) + (b[i + 3] ?? 0) * 16777216;

class JpegWalker extends StructureWalker {
  private state: "soi" | "marker-ff" | "marker-code" | "length" | "entropy" = "soi";
  private marker = 0;
  private sawScan = false;
  private pendingFF = false;

  constructor() {
    super("JPEG", 2);
  }

  protected override scanning(): boolean {
    return this.state === "entropy";
  }

  /** Entropy-coded data: only FF 00 (stuffing), FF D0-D7 (restarts) and fill FFs may appear before the next marker. */
  protected override scan(chunk: Uint8Array, start: number): number {
    let pos = start;
    while (pos < chunk.length) {
      if (!this.pendingFF) {
        const ff = chunk.indexOf(0xff, pos);
        if (ff < 0) return chunk.length;
        this.pendingFF = true;
        pos = ff + 1;
        continue;
      }
      const byte = chunk[pos++] ?? 0;
      if (byte === 0xff) continue;
      this.pendingFF = false;
      if (byte === 0x00 || (byte >= 0xd0 && byte <= 0xd7)) continue;
      this.onMarker(byte); // another segment between scans (progressive: DHT, SOS, ...) or the end
      return pos;
    }
    return pos;
  }

  protected onHeader(header: Uint8Array): void {
    switch (this.state) {
      case "soi":
        if (header[0] !== 0xff || header[1] !== 0xd8) this.failure = "no start-of-image marker";
        this.expectMarker();
        return;
      case "marker-ff":
        if (header[0] !== 0xff) this.failure = "stray bytes between segments";
        this.state = "marker-code";
        return;
      case "marker-code":
        if (header[0] !== 0xff) this.onMarker(header[0] ?? 0); // 0xFF is fill: read the next byte
        return;
      case "length": {
        const length = u16(header, 0);
        if (length < 2) {
          this.failure = "a segment length below 2";
          return;
        }
        this.skip = length - 2;
        if (this.marker === 0xda) {
          this.sawScan = true;
          this.state = "entropy";
        } else {
          this.expectMarker();
        }
        return;
      }
      case "entropy":
        return;
    }
  }

  private expectMarker(): void {
    this.state = "marker-ff";
    this.need = 1;
  }

  private onMarker(marker: number): void {
    if (marker === 0xd9) {
      if (this.sawScan) this.complete = true;
      else this.failure = "it ends before any image data";
      return;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      this.expectMarker();
      return;
    }
    this.marker = marker;
    this.state = "length";
    this.need = 2;
  }

  protected missingEnd(): string {
    return this.sawScan ? "the image data stops before the end-of-image marker" : "it ends before any image data";
  }
}

/**
 * PNG: chunk by chunk to IEND. The CRC of every critical chunk (IHDR, PLTE, IDAT, IEND: an
 * uppercase first letter) is checked as its bytes pass, as libpng does: a file damaged inside
 * its image data would be stored and served but could never be decoded. Ancillary chunks with a
 * bad CRC are ignored by decoders, so they pass here too.
 */
class PngWalker extends StructureWalker {
  private sawSignature = false;
  private sawIend = false;
  /** The chunk whose data is being skipped and whose CRC comes next, if it is checked. */
  private checking: string | undefined;
  private awaitingCrc = false;
  private crc = 0;

  constructor() {
    super("PNG", 8);
  }

  protected override onSkip(bytes: Uint8Array): void {
    if (this.checking !== undefined) this.crc = crc32Update(this.crc, bytes);
  }

  protected onHeader(header: Uint8Array): void {
    if (this.sawIend && !this.awaitingCrc) {
      this.complete = true; // a byte after IEND's CRC: a trailer, allowed
      return;
    }
    if (!this.sawSignature) {
      this.sawSignature = true;
      return; // the probe has checked the signature; next: chunk headers (length, type)
    }
    if (this.awaitingCrc) {
      this.awaitingCrc = false;
      if (this.checking !== undefined && crc32Final(this.crc) !== u32(header, 0)) {
        this.failure = `the ${this.checking} chunk is damaged (its CRC does not match)`;
        return;
      }
      this.checking = undefined;
      this.need = this.sawIend ? 1 : 8; // after IEND: one byte would be a trailer
      return;
    }
    const length = u32(header, 0);
    const type = String.fromCharCode(header[4] ?? 0, header[5] ?? 0, header[6] ?? 0, header[7] ?? 0);
    if (length > 0x7fffffff) {
      this.failure = "a chunk length over 2^31";
      return;
    }
    const critical = (header[4] ?? 0) >= 0x41 && (header[4] ?? 0) <= 0x5a;
    this.checking = critical ? type : undefined;
    this.crc = critical ? crc32Update(CRC32_INITIAL, header.subarray(4, 8)) : 0;
    this.skip = length; // data; then the CRC as a 4-byte header
    this.awaitingCrc = true;
    this.need = 4;
    if (type === "IEND") this.sawIend = true; // whole once its CRC has arrived
  }

  protected override completeAtEnd(atBoundary: boolean): boolean {
    return this.sawIend && !this.awaitingCrc && atBoundary;
  }

  protected missingEnd(): string {
    return "it stops before the IEND chunk";
  }
}

class GifWalker extends StructureWalker {
  private state: "screen" | "block" | "label" | "descriptor" | "lzw" | "sub-size" = "screen";

  constructor() {
    super("GIF", 13);
  }

  protected onHeader(header: Uint8Array): void {
    switch (this.state) {
      case "screen":
      case "descriptor": {
        const flags = header[this.state === "screen" ? 10 : 8] ?? 0;
        if (flags & 0x80) this.skip = 3 * 2 ** ((flags & 0x07) + 1); // colour table
        this.state = this.state === "screen" ? "block" : "lzw";
        this.need = 1;
        return;
      }
      case "block": {
        const introducer = header[0];
        if (introducer === 0x3b) this.complete = true;
        else if (introducer === 0x21) this.state = "label";
        else if (introducer === 0x2c) {
          this.state = "descriptor";
          this.need = 9;
        } else this.failure = "an unknown block type";
        return;
      }
      case "label":
      case "lzw":
        this.state = "sub-size";
        return;
      case "sub-size": {
        const size = header[0] ?? 0;
        if (size === 0) this.state = "block";
        else this.skip = size;
        return;
      }
    }
  }

  protected missingEnd(): string {
    return "it stops before the GIF trailer";
  }
}

class RiffWalker extends StructureWalker {
  private expected = Infinity;
  private seen = 0;

  constructor() {
    super("WebP", 12);
  }

  override push(chunk: Uint8Array): void {
    this.seen += chunk.byteLength;
    super.push(chunk);
  }

  protected onHeader(header: Uint8Array): void {
    this.expected = u32le(header, 4) + 8;
    this.skip = Number.MAX_SAFE_INTEGER; // nothing more to walk: only the length counts
  }

  protected override completeAtEnd(): boolean {
    return this.seen >= this.expected;
  }

  protected missingEnd(): string {
    return "it is shorter than its RIFF header says";
  }
}

class BoxWalker extends StructureWalker {
  private boxes = 0;
  private toEnd = false;
  private largeSize = false;
  private sawMdat = false;

  constructor() {
    super("AVIF", 8);
  }

  protected onHeader(header: Uint8Array): void {
    if (this.largeSize) {
      this.largeSize = false;
      this.need = 8;
      const size = u32(header, 0) * 2 ** 32 + u32(header, 4);
      if (size < 16) this.failure = "a box size below its header";
      else this.skip = size - 16;
      return;
    }
    this.boxes++;
    const size = u32(header, 0);
    if (header[4] === 0x6d && header[5] === 0x64 && header[6] === 0x61 && header[7] === 0x74) this.sawMdat = true; // "mdat"
    if (size === 0) {
      this.toEnd = true; // the last box runs to the end of the file
      this.skip = Number.MAX_SAFE_INTEGER;
    } else if (size === 1) {
      this.largeSize = true;
      this.need = 8;
    } else if (size < 8) {
      this.failure = "a box size below its header";
    } else {
      this.skip = size - 8;
    }
  }

  protected override completeAtEnd(atBoundary: boolean): boolean {
    // Without the media data box a boundary end is a file cut after its metadata (ftyp, meta | mdat).
    return this.toEnd || (atBoundary && !this.largeSize && this.boxes >= 2 && this.sawMdat);
  }

  protected missingEnd(): string {
    return "it stops inside a box";
  }
}
