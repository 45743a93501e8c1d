// @ts-check
// `edge-images upload`: files and folders, one PUT /v1/images per file with bounded concurrency,
// retries, resume by content hash, a progress line and a summary.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { ApiError, sleep } from "./api.mjs";
import { formatBytes, formatDuration, printable } from "./format.mjs";
import { Progress } from "./progress.mjs";
import { UploadState } from "./state.mjs";

/**
 * @typedef {object} UploadOptions
 * @property {string[]} paths files and folders as given
 * @property {number} concurrency
 * @property {Record<string, string>} metadata applied to every file
 * @property {Record<string, string> | undefined} variants name -> transform parameters
 * @property {"sync" | "async" | undefined} mode
 * @property {string | undefined} callbackUrl
 * @property {boolean} useState read and write `.edge-images-upload.json`
 * @property {boolean} verify do not trust the state's record of an upload: ask the server by hash
 * @property {boolean} check ask the server by hash before sending bytes
 * @property {boolean} ignoreRejected files the server refuses (413/415/422) do not fail the run
 * @property {boolean} wait wait for the jobs of async variants to finish
 * @property {boolean} progress draw the progress line (when stderr is a terminal)
 * @property {boolean} verbose one line per file
 * @property {boolean} json machine-readable result on stdout
 */

/**
 * @typedef {object} LocalFile
 * @property {string} absolute
 * @property {string} root the folder whose state file records it
 * @property {string} relative path from root, with "/" separators
 * @property {string} display as the user named it
 * @property {number} size
 * @property {number} mtimeMs
 */

/** @typedef {"uploaded" | "duplicate" | "skipped" | "rejected" | "failed"} Outcome */

/**
 * @typedef {object} FileResult
 * @property {string} path
 * @property {number} bytes
 * @property {Outcome} outcome
 * @property {string} [id]
 * @property {string} [url]
 * @property {string} [sha256]
 * @property {"state" | "server"} [skippedBy]
 * @property {number} [status] HTTP status of a refusal
 * @property {string} [code] problem code of a refusal, e.g. "unsupported-format"
 * @property {string} [reason]
 * @property {number} attempts PUT attempts made
 * @property {string} [job] the job making its variants (async)
 * @property {Array<{ name: string, state: string, error: string | null }>} [variants]
 */

/**
 * @typedef {object} JobSummary
 * @property {string} id
 * @property {string} state
 * @property {number} total
 * @property {Record<string, number>} counts
 */

/**
 * @typedef {object} UploadContext
 * @property {import("./api.mjs").ApiClient} client
 * @property {string} target "<endpoint> <tenant id>": whose images the state records
 * @property {UploadOptions} options
 * @property {Map<string, UploadState>} states
 * @property {Progress} progress
 * @property {AbortSignal} signal
 * @property {(reason: string) => void} abortRun stops the whole run (bad key, refused options)
 * @property {Record<string, string>} headers X-Metadata / X-Variants
 * @property {Record<string, string | undefined>} query mode / callback_url
 */

const REJECTED_STATUSES = new Set([413, 415, 422]);
/** The reason of files left (or cut short) when the run stops early. */
const NOT_ATTEMPTED = "not uploaded: the run stopped";
/** Upload options the server validates: a 400 naming one of them would repeat for every file. */
const RUN_PARAMETERS = new Set(["metadata", "variants", "mode", "callback_url", "filename"]);

/**
 * @param {import("./api.mjs").ApiClient} client
 * @param {UploadOptions} options
 * @param {{ stdout: NodeJS.WriteStream, stderr: NodeJS.WriteStream }} io
 * @returns {Promise<number>} the exit code
 */
export async function runUpload(client, options, io) {
  const warn = (/** @type {string} */ message) => io.stderr.write(`warning: ${message}\n`);

  // One cheap call first: a wrong key or endpoint fails here, before any file is read.
  const tenant = /** @type {{ id?: unknown }} */ (await client.json("GET", "/v1/tenant"));
  if (typeof tenant.id !== "string") throw new Error("GET /v1/tenant did not return a tenant id");
  const target = `${client.endpoint} ${tenant.id}`;

  const { files, unreadable } = await collectFiles(options.paths);
  /** @type {Map<string, UploadState>} */
  const states = new Map();
  if (options.useState) {
    for (const root of new Set(files.map((file) => file.root))) states.set(root, await UploadState.load(root, warn));
  }

  const totalBytes = files.reduce((sum, file) => sum + file.size, 0);
  const progress = new Progress({
    totalFiles: files.length,
    totalBytes,
    enabled: options.progress && io.stderr.isTTY === true && files.length > 0,
    stream: io.stderr,
  });

  const controller = new AbortController();
  /** @type {string | undefined} */
  let abortReason;
  const abortRun = (/** @type {string} */ reason, /** @type {string} */ note = `error: ${reason}; stopping`) => {
    if (abortReason === undefined) {
      abortReason = reason;
      progress.log(note);
    }
    controller.abort(new Error(reason));
  };
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    abortRun("interrupted", "interrupted: saving the state file (Ctrl-C again to quit at once)");
  };
  process.on("SIGINT", onSigint);

  /** @type {UploadContext} */
  const context = {
    client,
    target,
    options,
    states,
    progress,
    signal: controller.signal,
    abortRun,
    headers: {
      ...(Object.keys(options.metadata).length > 0 ? { "x-metadata": asciiJson(options.metadata) } : {}),
      ...(options.variants ? { "x-variants": asciiJson(options.variants) } : {}),
    },
    query: { mode: options.mode, callback_url: options.callbackUrl },
  };

  /** @type {FileResult[]} */
  const results = unreadable.map((entry) => ({ path: entry.path, bytes: 0, outcome: /** @type {Outcome} */ ("failed"), reason: entry.reason, attempts: 0 }));
  for (const result of results) progress.log(`failed   ${printable(result.path)}: ${result.reason}`);

  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++];
      if (!file) break;
      if (controller.signal.aborted) {
        results.push({ path: file.display, bytes: file.size, outcome: "failed", reason: NOT_ATTEMPTED, attempts: 0 });
        continue;
      }
      const result = await uploadOne(file, context);
      results.push(result);
      reportFile(result, context);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, Math.max(1, files.length)) }, worker));
  } finally {
    progress.stop();
    await Promise.all([...states.values()].map((state) => state.save()));
  }

  /** @type {JobSummary[]} */
  let jobs = [...new Set(results.flatMap((result) => (result.job ? [result.job] : [])))].map((id) => ({ id, state: "queued", total: 0, counts: {} }));
  if (options.wait && jobs.length > 0 && !controller.signal.aborted) jobs = await waitForJobs(client, jobs, io, options, controller.signal);
  process.off("SIGINT", onSigint);

  const seconds = progress.elapsedSeconds();
  const summary = summarize(results, jobs, seconds, totalBytes, abortReason);
  const failedJobs = jobs.filter((job) => job.state === "failed" || job.state === "partial").length;
  const failedVariants = results.reduce((sum, result) => sum + (result.variants?.filter((variant) => variant.state === "failed").length ?? 0), 0);
  const failing = summary.failed > 0 || (summary.rejected > 0 && !options.ignoreRejected) || failedJobs > 0 || failedVariants > 0 || abortReason !== undefined;

  if (options.json) {
    io.stdout.write(`${JSON.stringify({ summary: { ...summary, failedJobs, failedVariants, ok: !failing }, files: results, jobs }, null, 2)}\n`);
  } else {
    io.stdout.write(humanSummary(summary, results, jobs, failedVariants, options));
  }
  return interrupts > 0 ? 130 : failing ? 1 : 0;
}

/**
 * @param {LocalFile} file
 * @param {UploadContext} context
 * @returns {Promise<FileResult>}
 */
async function uploadOne(file, context) {
  const { client, options, progress, signal, target } = context;
  const state = context.states.get(file.root);
  const known = state?.lookup(file.relative, file);
  const base = { path: file.display, bytes: file.size };
  let sent = 0;
  let attempts = 0;
  /** @type {string | undefined} */
  let sha256;
  try {
    const recordedId = known?.uploads[target];
    if (known && recordedId && !options.verify) {
      progress.fileDone(file.size, false);
      return { ...base, outcome: "skipped", skippedBy: "state", id: recordedId, url: imageUrl(client, recordedId), sha256: known.sha256, attempts: 0 };
    }
    sha256 = known?.sha256 ?? (await hashFile(file.absolute, signal));

    if (options.check) {
      const found = /** @type {{ images?: Array<{ id: string, url: string }> }} */ (
        await client.json("GET", "/v1/images", { query: { sha256, limit: 1 }, signal, onRetry: (notice) => logRetry(context, file, notice) })
      );
      const existing = found.images?.[0];
      if (existing) {
        state?.record(file.relative, file, sha256, { target, imageId: existing.id });
        progress.fileDone(file.size, false);
        return { ...base, outcome: "skipped", skippedBy: "server", id: existing.id, url: existing.url, sha256, attempts: 0 };
      }
    }

    const { response } = await client.send("PUT", "/v1/images", {
      query: { filename: basename(file.absolute), ...context.query },
      headers: { "content-type": "application/octet-stream", "content-length": String(file.size), ...context.headers },
      onAttempt: () => {
        attempts++;
        // A retry starts the file again: take back what the failed attempt counted.
        progress.sent(-sent);
        sent = 0;
      },
      body: () =>
        file.size === 0
          ? new Uint8Array(0)
          : fileChunks(file, (bytes) => {
              sent += bytes;
              progress.sent(bytes);
            }),
      signal,
      onRetry: (notice) => logRetry(context, file, notice),
    });
    const answer = /** @type {UploadAnswer} */ (await response.json());
    const image = answer.images?.[0];
    if (!image) throw new Error(`the server answered ${response.status} without an image`);
    progress.fileDone(file.size - sent, false);
    if (image.sha256 !== sha256) {
      return { ...base, outcome: "failed", id: image.id, reason: "the file changed while it was being uploaded; run again to upload its current bytes", attempts };
    }
    state?.record(file.relative, file, sha256, { target, imageId: image.id });
    return {
      ...base,
      outcome: image.duplicate ? "duplicate" : "uploaded",
      id: image.id,
      url: image.url,
      sha256,
      attempts,
      ...(answer.job?.id ? { job: answer.job.id } : {}),
      ...(image.variants ? { variants: image.variants.map((variant) => ({ name: variant.name, state: variant.state, error: variant.error ?? null })) } : {}),
    };
  } catch (error) {
    progress.fileDone(file.size - sent, true);
    if (sha256 !== undefined && state && !signal.aborted) state.record(file.relative, file, sha256, undefined);
    return { ...base, ...failure(error, context), ...(sha256 ? { sha256 } : {}), attempts };
  }
}

/**
 * @typedef {{ images?: Array<{ id: string, url: string, sha256: string, duplicate?: boolean, variants?: Array<{ name: string, state: string, error?: string | null }> }>, job?: { id: string } }} UploadAnswer
 */

/**
 * @param {unknown} error
 * @param {UploadContext} context
 * @returns {{ outcome: Outcome, status?: number, code?: string, reason: string }}
 */
function failure(error, context) {
  if (context.signal.aborted) return { outcome: "failed", reason: NOT_ATTEMPTED };
  if (error instanceof ApiError) {
    const parameter = typeof error.problem?.["parameter"] === "string" ? error.problem["parameter"] : undefined;
    if (error.status === 401 || error.status === 403) context.abortRun(`the server refused the key: ${error.message}`);
    else if (error.status === 400 && parameter !== undefined && RUN_PARAMETERS.has(parameter)) context.abortRun(`the server refused the upload options: ${error.message}`);
    return {
      outcome: REJECTED_STATUSES.has(error.status) ? "rejected" : "failed",
      status: error.status,
      ...(error.code ? { code: error.code } : {}),
      reason: error.message,
    };
  }
  return { outcome: "failed", reason: error instanceof Error ? printable(error.message) : String(error) };
}

/**
 * @param {FileResult} result
 * @param {UploadContext} context
 */
function reportFile(result, context) {
  const { progress, options } = context;
  const path = printable(result.path);
  if (result.reason === NOT_ATTEMPTED) return;
  if (result.outcome === "failed" || (result.outcome === "rejected" && !options.ignoreRejected)) {
    progress.log(`${result.outcome.padEnd(9)}${path}: ${result.reason ?? ""}`);
  } else if (options.verbose) {
    const detail = result.outcome === "skipped" ? `${result.id} (already uploaded; known from the ${result.skippedBy === "state" ? "state file" : "server"})` : result.outcome === "rejected" ? (result.reason ?? "") : `${result.id}${result.job ? ` job ${result.job}` : ""}`;
    progress.log(`${result.outcome.padEnd(9)}${path}: ${detail}`);
  }
}

/**
 * @param {UploadContext} context
 * @param {LocalFile} file
 * @param {import("./api.mjs").RetryNotice} notice
 */
function logRetry(context, file, notice) {
  context.progress.log(`retry    ${printable(file.display)}: ${notice.reason}; attempt ${notice.attempt + 1} in ${formatDuration(notice.delayMs / 1000)}`);
}

/**
 * The files to upload: folders walked recursively (sorted, dotfiles and dot-folders skipped,
 * symlinks to files followed, symlinks to folders not), files taken as named.
 * @param {string[]} paths
 * @returns {Promise<{ files: LocalFile[], unreadable: Array<{ path: string, reason: string }> }>}
 */
export async function collectFiles(paths) {
  /** @type {LocalFile[]} */
  const files = [];
  /** @type {Array<{ path: string, reason: string }>} */
  const unreadable = [];
  const seen = new Set();

  /**
   * @param {string} absolute
   * @param {string} root
   * @param {string} display
   * @param {import("node:fs").Stats} stats
   */
  const add = (absolute, root, display, stats) => {
    if (seen.has(absolute)) return;
    seen.add(absolute);
    files.push({ absolute, root, relative: relative(root, absolute).split(sep).join("/"), display, size: stats.size, mtimeMs: stats.mtimeMs });
  };

  /**
   * @param {string} root
   * @param {string} directory absolute
   * @param {string} display
   */
  const walk = async (root, directory, display) => {
    /** @type {import("node:fs").Dirent[]} */
    let entries;
    try {
      entries = await readdir(directory, { withFileTypes: true });
    } catch (error) {
      unreadable.push({ path: display, reason: errorText(error) });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      const absolute = join(directory, entry.name);
      const shown = join(display, entry.name);
      if (entry.isDirectory()) {
        await walk(root, absolute, shown);
      } else if (entry.isFile() || entry.isSymbolicLink()) {
        try {
          const stats = await stat(absolute);
          if (stats.isFile()) add(absolute, root, shown, stats);
        } catch (error) {
          unreadable.push({ path: shown, reason: errorText(error) });
        }
      }
    }
  };

  for (const path of paths) {
    const absolute = resolve(path);
    /** @type {import("node:fs").Stats} */
    let stats;
    try {
      stats = await stat(absolute);
    } catch (error) {
      unreadable.push({ path, reason: errorText(error) });
      continue;
    }
    if (stats.isDirectory()) await walk(absolute, absolute, path);
    else if (stats.isFile()) add(absolute, dirname(absolute), path, stats);
    else unreadable.push({ path, reason: "not a regular file or folder" });
  }
  return { files, unreadable };
}

/**
 * @param {string} path
 * @param {AbortSignal} signal
 * @returns {Promise<string>}
 */
async function hashFile(path, signal) {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { signal, highWaterMark: 1 << 20 })) hash.update(/** @type {Buffer} */ (chunk));
  return hash.digest("hex");
}

/**
 * The file's bytes, at most the size it had when listed (so Content-Length holds).
 * @param {LocalFile} file
 * @param {(bytes: number) => void} onChunk
 * @returns {AsyncGenerator<Uint8Array>}
 */
async function* fileChunks(file, onChunk) {
  for await (const chunk of createReadStream(file.absolute, { start: 0, end: file.size - 1, highWaterMark: 256 * 1024 })) {
    const bytes = /** @type {Buffer} */ (chunk);
    onChunk(bytes.byteLength);
    yield bytes;
  }
}

/**
 * JSON that fits an HTTP header value. A field value (RFC 9110 §5.5) is visible ASCII, space
 * and tab (bytes over 0x7E are obsolete, and fetch only takes a ByteString), so every UTF-16
 * code unit outside 0x20..0x7E is written as a \uXXXX escape, which JSON defines per code
 * unit (RFC 8259 §7; a character outside the BMP becomes its two surrogate escapes).
 * JSON.stringify already escapes the control characters below 0x20.
 * @param {unknown} value
 */
export function asciiJson(value) {
  const json = JSON.stringify(value);
  let header = "";
  for (let i = 0; i < json.length; i++) {
    const unit = json.charCodeAt(i);
    header += unit >= 0x20 && unit <= 0x7e ? json[i] : `\\u${unit.toString(16).padStart(4, "0")}`;
  }
  return header;
}

/**
 * @param {import("./api.mjs").ApiClient} client
 * @param {string} id
 */
function imageUrl(client, id) {
  return `${client.endpoint}/i/${id}`;
}

/**
 * Polls the jobs until each is succeeded, failed or partial.
 * @param {import("./api.mjs").ApiClient} client
 * @param {JobSummary[]} jobs
 * @param {{ stderr: NodeJS.WriteStream }} io
 * @param {UploadOptions} options
 * @param {AbortSignal} signal
 * @returns {Promise<JobSummary[]>}
 */
async function waitForJobs(client, jobs, io, options, signal) {
  const finished = new Set(["succeeded", "failed", "partial"]);
  /** @type {Map<string, JobSummary>} */
  const latest = new Map(jobs.map((job) => [job.id, job]));
  const tty = options.progress && io.stderr.isTTY === true;
  const started = performance.now();
  for (let round = 0; ; round++) {
    for (const job of latest.values()) {
      if (finished.has(job.state)) continue;
      const view = /** @type {JobSummary} */ (await client.json("GET", `/v1/jobs/${encodeURIComponent(job.id)}`, { signal }));
      latest.set(job.id, { id: view.id, state: view.state, total: view.total, counts: view.counts });
    }
    const done = [...latest.values()].filter((job) => finished.has(job.state)).length;
    const line = `waiting for jobs: ${done}/${latest.size} finished (${formatDuration((performance.now() - started) / 1000)})`;
    if (tty) io.stderr.write(`\r\x1b[2K${line}`);
    else if (round % 10 === 0 || done === latest.size) io.stderr.write(`${line}\n`);
    if (done === latest.size) break;
    await sleep(Math.min(2000, 250 * 2 ** Math.min(round, 3)), signal);
  }
  if (tty) io.stderr.write("\n");
  return [...latest.values()];
}

/**
 * @param {FileResult[]} results
 * @param {JobSummary[]} jobs
 * @param {number} seconds
 * @param {number} totalBytes
 * @param {string | undefined} abortReason
 */
function summarize(results, jobs, seconds, totalBytes, abortReason) {
  /** @type {Record<Outcome, number>} */
  const counts = { uploaded: 0, duplicate: 0, skipped: 0, rejected: 0, failed: 0 };
  let bytesUploaded = 0;
  for (const result of results) {
    counts[result.outcome]++;
    if (result.outcome === "uploaded" || result.outcome === "duplicate") bytesUploaded += result.bytes;
  }
  return {
    files: results.length,
    uploaded: counts.uploaded,
    duplicates: counts.duplicate,
    skipped: counts.skipped,
    rejected: counts.rejected,
    failed: counts.failed,
    bytes: totalBytes,
    bytesUploaded,
    seconds: Math.round(seconds * 100) / 100,
    jobs: jobs.length,
    ...(abortReason !== undefined ? { stopped: abortReason } : {}),
  };
}

/**
 * @param {ReturnType<typeof summarize>} summary
 * @param {FileResult[]} results
 * @param {JobSummary[]} jobs
 * @param {number} failedVariants
 * @param {UploadOptions} options
 */
function humanSummary(summary, results, jobs, failedVariants, options) {
  const lines = [];
  const rate = summary.seconds > 0 && summary.bytesUploaded > 0 ? ` (${formatBytes(summary.bytesUploaded / summary.seconds)}/s)` : "";
  lines.push(
    `${summary.files} files, ${formatBytes(summary.bytes)} in ${formatDuration(summary.seconds)}${rate}: ` +
      `${summary.uploaded} uploaded, ${summary.duplicates} duplicates, ${summary.skipped} skipped (already uploaded), ` +
      `${summary.rejected} rejected${options.ignoreRejected && summary.rejected > 0 ? " (ignored)" : ""}, ${summary.failed} failed`,
  );
  const refused = results.filter((result) => (result.outcome === "rejected" || result.outcome === "failed") && result.reason !== NOT_ATTEMPTED);
  const stopped = results.filter((result) => result.reason === NOT_ATTEMPTED).length;
  if (refused.length > 0 || stopped > 0) {
    lines.push("Not uploaded:");
    for (const result of refused.slice(0, 50)) lines.push(`  ${result.outcome.padEnd(8)} ${printable(result.path)}: ${result.reason ?? ""}`);
    if (refused.length > 50) lines.push(`  … and ${refused.length - 50} more (use --json for all)`);
    if (stopped > 0) lines.push(`  ${stopped} file${stopped === 1 ? "" : "s"} not uploaded because the run stopped`);
  }
  if (failedVariants > 0) {
    lines.push(`Variants that failed: ${failedVariants}`);
    for (const result of results) {
      for (const variant of result.variants ?? []) {
        if (variant.state === "failed") lines.push(`  ${printable(result.path)} ${variant.name}: ${printable(variant.error ?? "failed")}`);
      }
    }
  }
  if (jobs.length > 0) {
    const states = new Map();
    for (const job of jobs) states.set(job.state, (states.get(job.state) ?? 0) + 1);
    const tally = [...states].map(([state, count]) => `${count} ${state}`).join(", ");
    lines.push(`Variant jobs: ${jobs.length} (${tally})${options.wait ? "" : "; follow them with: edge-images jobs <id> --wait"}`);
    if (jobs.length <= 5 || !options.wait) for (const job of jobs.slice(0, 5)) lines.push(`  ${job.id} ${job.state}`);
  }
  if (summary.stopped) lines.push(`Stopped early: ${summary.stopped}`, "Run the same command again to resume: files already uploaded are skipped.");
  return `${lines.join("\n")}\n`;
}

/** @param {unknown} error */
function errorText(error) {
  if (error instanceof Error && "code" in error && error.code === "ENOENT") return "no such file or folder";
  return error instanceof Error ? printable(error.message) : String(error);
}
