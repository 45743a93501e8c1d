// @ts-check
// The resume file: `.edge-images-upload.json` in each uploaded folder, mapping a file (relative
// path, size, mtime) to its SHA-256 and the image id it got on each endpoint+tenant.
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const STATE_FILE_NAME = ".edge-images-upload.json";

/**
 * @typedef {object} StateEntry
 * @property {number} size
 * @property {number} mtimeMs
 * @property {string} sha256
 * @property {Record<string, string>} uploads target ("<endpoint> <tenant id>") -> image id
 */

export class UploadState {
  /**
   * @param {string} root the folder the state file lives in; keys are paths relative to it
   * @param {Record<string, StateEntry>} files
   * @param {(message: string) => void} warn
   */
  constructor(root, files, warn) {
    this.root = root;
    this.path = join(root, STATE_FILE_NAME);
    this.files = files;
    this.warn = warn;
    this.dirty = false;
    this.writable = true;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    /** @type {Promise<void>} */
    this.saving = Promise.resolve();
    /** How long the last save took: a big state file is saved less often. */
    this.lastSaveMs = 0;
  }

  /**
   * @param {string} root
   * @param {(message: string) => void} warn
   * @returns {Promise<UploadState>}
   */
  static async load(root, warn) {
    const path = join(root, STATE_FILE_NAME);
    /** @type {string} */
    let text;
    try {
      text = await readFile(path, "utf8");
    } catch {
      return new UploadState(root, {}, warn);
    }
    try {
      const parsed = /** @type {unknown} */ (JSON.parse(text));
      if (parsed !== null && typeof parsed === "object" && "version" in parsed && parsed.version === 1 && "files" in parsed) {
        return new UploadState(root, sanitize(parsed.files), warn);
      }
    } catch {
      // fall through
    }
    warn(`ignoring ${path}: not a state file of this version (it will be rewritten)`);
    return new UploadState(root, {}, warn);
  }

  /**
   * The entry of a file if it is unchanged since it was recorded (same size and mtime).
   * @param {string} relative
   * @param {{ size: number, mtimeMs: number }} stats
   * @returns {StateEntry | undefined}
   */
  lookup(relative, stats) {
    const entry = this.files[relative];
    return entry && entry.size === stats.size && entry.mtimeMs === stats.mtimeMs ? entry : undefined;
  }

  /**
   * Records the file's hash and, when given, the image it is on `target`.
   * @param {string} relative
   * @param {{ size: number, mtimeMs: number }} stats
   * @param {string} sha256
   * @param {{ target: string, imageId: string } | undefined} upload
   */
  record(relative, stats, sha256, upload) {
    const previous = this.lookup(relative, stats);
    const uploads = previous && previous.sha256 === sha256 ? { ...previous.uploads } : {};
    if (upload) uploads[upload.target] = upload.imageId;
    this.files[relative] = { size: stats.size, mtimeMs: stats.mtimeMs, sha256, uploads };
    this.dirty = true;
    // Saved every 2 s while uploading (so an interrupted run loses little), or less often when a
    // save takes long (100k files): at most 5% of the time goes to saving.
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.save();
      }, Math.max(2_000, 20 * this.lastSaveMs));
      this.timer.unref();
    }
  }

  /** Writes the file atomically (temporary file, then rename); a read-only folder only warns once. */
  save() {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.saving = this.saving.then(async () => {
      if (!this.dirty || !this.writable) return;
      this.dirty = false;
      const started = performance.now();
      const temporary = `${this.path}.${process.pid}.tmp`;
      const text = JSON.stringify({ version: 1, about: "edge-images upload state: lets a rerun skip files already uploaded. Safe to delete.", files: this.files }, null, 1);
      try {
        await writeFile(temporary, `${text}\n`);
        await rename(temporary, this.path);
        this.lastSaveMs = performance.now() - started;
      } catch (error) {
        this.writable = false;
        await rm(temporary, { force: true }).catch(() => undefined);
        this.warn(`cannot write ${this.path} (${error instanceof Error ? error.message : String(error)}); a rerun will re-hash these files and ask the server instead`);
      }
    });
    return this.saving;
  }
}

/**
 * Keeps only well-formed entries of a state file read from disk.
 * @param {unknown} files
 * @returns {Record<string, StateEntry>}
 */
function sanitize(files) {
  /** @type {Record<string, StateEntry>} */
  const clean = {};
  if (files === null || typeof files !== "object") return clean;
  for (const [path, value] of Object.entries(files)) {
    if (value === null || typeof value !== "object") continue;
    const { size, mtimeMs, sha256, uploads } = /** @type {Record<string, unknown>} */ (value);
    if (typeof size !== "number" || typeof mtimeMs !== "number" || typeof sha256 !== "string" || !/^[0-9a-f]{64}$/.test(sha256)) continue;
    /** @type {Record<string, string>} */
    const targets = {};
    if (uploads !== null && typeof uploads === "object") {
      for (const [target, id] of Object.entries(uploads)) if (typeof id === "string") targets[target] = id;
    }
    clean[path] = { size, mtimeMs, sha256, uploads: targets };
  }
  return clean;
}
