// @ts-check
// One progress line on stderr, redrawn in place with \r; silent when stderr is not a terminal.
import { formatBytes, formatDuration } from "./format.mjs";

const REDRAW_MS = 100;
const RATE_WINDOW_MS = 5_000;

export class Progress {
  /**
   * @param {{ totalFiles: number, totalBytes: number, enabled: boolean, stream?: NodeJS.WriteStream }} options
   */
  constructor(options) {
    this.totalFiles = options.totalFiles;
    this.totalBytes = options.totalBytes;
    this.enabled = options.enabled;
    this.stream = options.stream ?? process.stderr;
    this.filesDone = 0;
    this.failed = 0;
    /** Bytes of finished files plus bytes sent of files in flight (skipped files count whole). */
    this.bytesDone = 0;
    /** Bytes really sent over the network: the rate. */
    this.bytesSent = 0;
    this.started = performance.now();
    /** @type {Array<[number, number]>} (time, bytesSent) samples for a moving rate */
    this.samples = [[this.started, 0]];
    this.lastDraw = 0;
    this.drawn = false;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.timer = this.enabled ? setInterval(() => this.draw(), 500) : undefined;
    this.timer?.unref();
  }

  /** @param {number} bytes sent (negative to take back the bytes of a failed attempt) */
  sent(bytes) {
    this.bytesSent += bytes;
    this.bytesDone += bytes;
    this.maybeDraw();
  }

  /**
   * A file is finished. `remaining` is the part of its size not yet counted by sent().
   * @param {number} remaining
   * @param {boolean} failed
   */
  fileDone(remaining, failed) {
    this.filesDone++;
    if (failed) this.failed++;
    this.bytesDone += remaining;
    this.maybeDraw();
  }

  /** Prints a line above the bar (a failure, a retry) without tearing it. @param {string} line */
  log(line) {
    if (this.enabled && this.drawn) this.stream.write("\r\x1b[2K");
    this.stream.write(`${line}\n`);
    if (this.enabled && this.drawn) this.draw(true);
  }

  /** Bytes per second over the last few seconds (the whole run while it is young). */
  rate() {
    const now = performance.now();
    this.samples.push([now, this.bytesSent]);
    while (this.samples.length > 2 && (this.samples[1]?.[0] ?? now) < now - RATE_WINDOW_MS) this.samples.shift();
    const [since, bytesThen] = this.samples[0] ?? [this.started, 0];
    const seconds = (now - since) / 1000;
    return seconds > 0.2 ? (this.bytesSent - bytesThen) / seconds : 0;
  }

  elapsedSeconds() {
    return (performance.now() - this.started) / 1000;
  }

  line() {
    const rate = this.rate();
    const elapsed = this.elapsedSeconds();
    const remainingBytes = Math.max(0, this.totalBytes - this.bytesDone);
    // Bytes left at the current rate, or files left at the average pace (the server still works on
    // files whose bytes are all sent), whichever is longer.
    const byBytes = remainingBytes === 0 ? 0 : rate > 0 ? remainingBytes / rate : Number.NaN;
    const byFiles = this.filesDone > 0 ? ((this.totalFiles - this.filesDone) * elapsed) / this.filesDone : Number.NaN;
    const eta = this.filesDone === this.totalFiles ? 0 : Number.isNaN(byBytes) ? byFiles : Math.max(byBytes, Number.isNaN(byFiles) ? 0 : byFiles);
    const parts = [
      `${this.filesDone}/${this.totalFiles} files`,
      `${formatBytes(this.bytesDone)}/${formatBytes(this.totalBytes)}`,
      `${formatBytes(rate)}/s`,
      `ETA ${formatDuration(eta)}`,
    ];
    if (this.failed > 0) parts.push(`${this.failed} failed`);
    const text = parts.join("  ");
    const columns = this.stream.columns ?? 80;
    const width = Math.min(30, columns - 1 - text.length - 3);
    if (width < 5) return text.length >= columns ? text.slice(0, columns - 1) : text;
    const fraction = this.totalBytes > 0 ? Math.min(1, this.bytesDone / this.totalBytes) : this.totalFiles > 0 ? this.filesDone / this.totalFiles : 1;
    const filled = Math.round(fraction * width);
    return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${text}`;
  }

  maybeDraw() {
    if (this.enabled && performance.now() - this.lastDraw >= REDRAW_MS) this.draw();
  }

  /** @param {boolean} [force] */
  draw(force = false) {
    if (!this.enabled) return;
    if (!force && performance.now() - this.lastDraw < REDRAW_MS / 2) return;
    this.lastDraw = performance.now();
    this.stream.write(`\r\x1b[2K${this.line()}`);
    this.drawn = true;
  }

  /** Leaves the final state of the bar on its own line. */
  stop() {
    if (this.timer) clearInterval(this.timer);
    if (this.enabled) {
      this.draw(true);
      this.stream.write("\n");
    }
    this.enabled = false;
  }
}
