// @ts-check
// Human-readable sizes, durations and tables for the CLI's output.

/** @param {number} bytes */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`;
}

/** @param {number} seconds */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "--";
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

/**
 * "30", "30s", "15m", "2h", "7d" -> seconds.
 * @param {string} text
 * @returns {number | undefined}
 */
export function parseDuration(text) {
  const match = /^(\d+)\s*([smhd]?)$/i.exec(text.trim());
  if (!match || match[1] === undefined) return undefined;
  const factor = { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[(match[2] ?? "").toLowerCase()] ?? 1;
  return Number(match[1]) * factor;
}

/**
 * Left-aligned columns separated by two spaces; the last column is not padded.
 * @param {ReadonlyArray<ReadonlyArray<string>>} rows
 * @returns {string}
 */
export function table(rows) {
  /** @type {number[]} */
  const widths = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  ").trimEnd()).join("\n");
}

/**
 * Strips control characters (terminal escapes in a hostile file name or server message).
 * @param {string} text
 */
export function printable(text) {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}
