// @ts-check
// `list`, `get`, `delete`, `jobs` and `url`.
import { ApiError, sleep } from "./api.mjs";
import { UsageError } from "./config.mjs";
import { formatBytes, formatDuration, printable, table } from "./format.mjs";

/**
 * @typedef {object} ImageJson
 * @property {string} id
 * @property {string} url
 * @property {number} width
 * @property {number} height
 * @property {string} format
 * @property {number} bytes
 * @property {string} sha256
 * @property {string | null} filename
 * @property {Record<string, string>} metadata
 * @property {string} createdAt
 * @property {Array<{ name: string, params: string, url: string, state: string, format: string | null, width: number | null, height: number | null, bytes: number | null, error: string | null }>} [variants]
 */

/**
 * @typedef {object} JobJson
 * @property {string} id
 * @property {string} kind
 * @property {string} state
 * @property {number} total
 * @property {Record<string, number>} counts
 * @property {Record<string, string>} variants
 * @property {string | null} callbackUrl
 * @property {string} callbackState
 * @property {string} createdAt
 * @property {string | null} finishedAt
 * @property {Array<{ position: number, imageId: string | null, url: string | null, sourceUrl: string | null, state: string, attempts: number, error: string | null }>} [items]
 */

/** @typedef {{ stdout: NodeJS.WriteStream, stderr: NodeJS.WriteStream }} Io */

/**
 * @param {import("./api.mjs").ApiClient} client
 * @param {{ limit: number | undefined, all: boolean, cursor: string | undefined, filenamePrefix: string | undefined, metadata: Record<string, string>, sha256: string | undefined, createdAfter: string | undefined, createdBefore: string | undefined, json: boolean }} options
 * @param {Io} io
 * @returns {Promise<number>}
 */
export async function listCommand(client, options, io) {
  /** @type {Record<string, string | number | undefined>} */
  const query = {
    filename_prefix: options.filenamePrefix,
    sha256: options.sha256,
    created_after: options.createdAfter,
    created_before: options.createdBefore,
  };
  for (const [key, value] of Object.entries(options.metadata)) query[`metadata.${key}`] = value;
  // Without --all, --limit is how many to show (one page of at most 100); with it, every page is fetched.
  const pageSize = Math.min(100, options.limit ?? (options.all ? 100 : 50));
  /** @type {ImageJson[]} */
  const images = [];
  let cursor = options.cursor;
  let printedHeader = false;
  /** @type {string | null} */
  let nextCursor = null;
  do {
    const page = /** @type {{ images: ImageJson[], nextCursor: string | null }} */ (await client.json("GET", "/v1/images", { query: { ...query, limit: pageSize, cursor } }));
    nextCursor = page.nextCursor;
    cursor = page.nextCursor ?? undefined;
    if (options.json) {
      images.push(...page.images);
    } else if (page.images.length > 0) {
      const rows = page.images.map((image) => [
        image.id,
        image.format,
        `${image.width}x${image.height}`,
        formatBytes(image.bytes),
        image.createdAt.replace(/\.\d+Z$/, "Z"),
        printable(image.filename ?? ""),
      ]);
      if (!printedHeader) rows.unshift(["ID", "FORMAT", "SIZE", "BYTES", "CREATED", "FILENAME"]);
      printedHeader = true;
      io.stdout.write(`${table(rows)}\n`);
      images.push(...page.images);
    }
  } while (options.all && cursor);

  if (options.json) io.stdout.write(`${JSON.stringify({ images, nextCursor: options.all ? null : nextCursor }, null, 2)}\n`);
  else if (images.length === 0) io.stderr.write("no images\n");
  else if (!options.all && nextCursor) io.stderr.write(`more: --all, or --cursor ${nextCursor}\n`);
  return 0;
}

/**
 * @param {import("./api.mjs").ApiClient} client
 * @param {string} id
 * @param {{ json: boolean }} options
 * @param {Io} io
 */
export async function getCommand(client, id, options, io) {
  const image = /** @type {ImageJson} */ (await client.json("GET", `/v1/images/${encodeURIComponent(id)}`));
  if (options.json) {
    io.stdout.write(`${JSON.stringify(image, null, 2)}\n`);
    return 0;
  }
  const rows = [
    ["id", image.id],
    ["url", image.url],
    ["image", `${image.format} ${image.width}x${image.height}, ${formatBytes(image.bytes)}`],
    ["filename", printable(image.filename ?? "")],
    ["sha256", image.sha256],
    ["created", image.createdAt],
    ["metadata", Object.entries(image.metadata).map(([key, value]) => `${key}=${printable(value)}`).join(" ") || "-"],
  ];
  for (const variant of image.variants ?? []) {
    const made = variant.state === "ready" ? ` ${variant.format} ${variant.width}x${variant.height} ${formatBytes(variant.bytes ?? 0)}` : variant.error ? ` ${printable(variant.error)}` : "";
    rows.push([`variant`, `${variant.name} ${variant.state}${made} ${variant.url}`]);
  }
  io.stdout.write(`${table(rows)}\n`);
  return 0;
}

/**
 * Deletes each id (idempotent on the server: a missing id is fine too).
 * @param {import("./api.mjs").ApiClient} client
 * @param {string[]} ids
 * @param {{ json: boolean, concurrency: number }} options
 * @param {Io} io
 */
export async function deleteCommand(client, ids, options, io) {
  /** @type {Array<{ id: string, deleted: boolean, error?: string }>} */
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      if (id === undefined) break;
      try {
        await client.send("DELETE", `/v1/images/${encodeURIComponent(id)}`);
        results.push({ id, deleted: true });
        if (!options.json) io.stdout.write(`deleted ${id}\n`);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        results.push({ id, deleted: false, error: message });
        io.stderr.write(`failed to delete ${printable(id)}: ${message}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, ids.length) }, worker));
  if (options.json) io.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`);
  return results.every((result) => result.deleted) ? 0 : 1;
}

const FINISHED_JOB = new Set(["succeeded", "failed", "partial"]);

/**
 * `jobs`: the list (newest first); `jobs ID`: one job with its items, optionally waiting for it.
 * @param {import("./api.mjs").ApiClient} client
 * @param {string | undefined} id
 * @param {{ json: boolean, wait: boolean, limit: number | undefined, all: boolean, timeoutSeconds: number | undefined }} options
 * @param {Io} io
 */
export async function jobsCommand(client, id, options, io) {
  if (id === undefined) {
    if (options.wait) throw new UsageError("--wait needs a job id: edge-images jobs <id> --wait");
    /** @type {JobJson[]} */
    const jobs = [];
    /** @type {string | undefined} */
    let cursor;
    do {
      const page = /** @type {{ jobs: JobJson[], nextCursor: string | null }} */ (
        await client.json("GET", "/v1/jobs", { query: { limit: Math.min(100, options.limit ?? 20), cursor } })
      );
      jobs.push(...page.jobs);
      cursor = page.nextCursor ?? undefined;
    } while (options.all && cursor);
    if (options.json) {
      io.stdout.write(`${JSON.stringify({ jobs }, null, 2)}\n`);
    } else if (jobs.length === 0) {
      io.stderr.write("no jobs\n");
    } else {
      const rows = jobs.map((job) => [job.id, job.kind, job.state, `${(job.counts["succeeded"] ?? 0) + (job.counts["failed"] ?? 0)}/${job.total}`, String(job.counts["failed"] ?? 0), job.createdAt.replace(/\.\d+Z$/, "Z")]);
      rows.unshift(["ID", "KIND", "STATE", "DONE", "FAILED", "CREATED"]);
      io.stdout.write(`${table(rows)}\n`);
    }
    return 0;
  }

  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  let job = /** @type {JobJson} */ (await client.json("GET", path));
  if (options.wait) {
    const started = performance.now();
    const deadline = options.timeoutSeconds === undefined ? Number.POSITIVE_INFINITY : started + options.timeoutSeconds * 1000;
    const tty = io.stderr.isTTY === true && !options.json;
    for (let round = 0; !FINISHED_JOB.has(job.state); round++) {
      if (performance.now() > deadline) {
        io.stderr.write(`${tty ? "\n" : ""}timed out after ${formatDuration(options.timeoutSeconds ?? 0)}: job ${job.id} is ${job.state}\n`);
        printJob(job, options, io);
        return 1;
      }
      if (tty) io.stderr.write(`\r\x1b[2Kjob ${job.id}: ${job.state}, ${(job.counts["succeeded"] ?? 0) + (job.counts["failed"] ?? 0)}/${job.total} items done`);
      await sleep(Math.min(2000, 250 * 2 ** Math.min(round, 3)), undefined);
      job = /** @type {JobJson} */ (await client.json("GET", path));
    }
    if (tty) io.stderr.write("\r\x1b[2K");
  }
  printJob(job, options, io);
  return options.wait && job.state !== "succeeded" ? 1 : 0;
}

/**
 * @param {JobJson} job
 * @param {{ json: boolean }} options
 * @param {Io} io
 */
function printJob(job, options, io) {
  if (options.json) {
    io.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
    return;
  }
  const counts = Object.entries(job.counts).map(([state, count]) => `${count} ${state}`).join(", ");
  const lines = [
    table([
      ["id", job.id],
      ["kind", job.kind],
      ["state", job.state],
      ["items", `${job.total} (${counts})`],
      ["variants", Object.entries(job.variants).map(([name, params]) => `${name}=${params}`).join(" ") || "-"],
      ["callback", job.callbackUrl ? `${job.callbackUrl} (${job.callbackState})` : "-"],
      ["created", job.createdAt],
      ["finished", job.finishedAt ?? "-"],
    ]),
  ];
  if (job.items && job.items.length > 0) {
    const rows = job.items.map((item) => [String(item.position), item.state, item.imageId ?? item.sourceUrl ?? "", String(item.attempts), printable(item.error ?? "")]);
    rows.unshift(["#", "STATE", "IMAGE", "ATTEMPTS", "ERROR"]);
    lines.push("", table(rows));
  }
  io.stdout.write(`${lines.join("\n")}\n`);
}

/** URL parameters of the transform API, accepted as `--w 400` and so on by `url`. */
export const TRANSFORM_PARAMS = ["w", "h", "dpr", "fit", "g", "crop", "rot", "flip", "fmt", "q", "blur", "sharpen", "bg", "wm", "wm_pos", "wm_scale", "wm_op", "wm_pad", "p"];

/**
 * Builds a transform URL; signed through POST /v1/sign when the tenant requires signed URLs
 * (or when --sign or --expires-in asks for it). The signing secret never leaves the server.
 * @param {import("./api.mjs").ApiClient} client
 * @param {string} id
 * @param {URLSearchParams} params
 * @param {{ sign: "auto" | "always" | "never", expiresIn: number | undefined, variant: string | undefined, json: boolean }} options
 * @param {Io} io
 */
export async function urlCommand(client, id, params, options, io) {
  for (const name of ["sig", "exp"]) {
    if (params.has(name)) throw new UsageError(`leave ${name} out of the parameters: url signs for you when needed`);
  }
  let sign = options.sign === "always" || options.expiresIn !== undefined;
  if (options.sign === "never" && options.expiresIn !== undefined) throw new UsageError("--expires-in needs a signed URL; drop --no-sign");
  if (options.variant !== undefined) {
    if ([...params.keys()].length > 0 || sign) throw new UsageError("--variant takes no transform parameters, --sign or --expires-in: a stored variant needs no signature");
    const url = `${client.endpoint}/i/${encodeURIComponent(id)}/${encodeURIComponent(options.variant)}`;
    io.stdout.write(options.json ? `${JSON.stringify({ url, signed: false, exp: null }, null, 2)}\n` : `${url}\n`);
    return 0;
  }
  // The original (no parameters) never needs a signature; a transform does when the tenant says so.
  // (A bare public preset would pass unsigned, but a signature is always accepted, so sign it too.)
  if (options.sign === "auto" && !sign && [...params.keys()].length > 0) {
    const tenant = /** @type {{ requireSignedUrls?: boolean }} */ (await client.json("GET", "/v1/tenant"));
    sign = tenant.requireSignedUrls === true;
  }
  /** @type {{ url: string, signed: boolean, exp: number | null }} */
  let result;
  if (sign) {
    try {
      const signed = /** @type {{ path: string, exp: number | null }} */ (
        await client.json("POST", "/v1/sign", { json: { imageId: id, params: params.toString(), ...(options.expiresIn !== undefined ? { expiresIn: options.expiresIn } : {}) } })
      );
      result = { url: `${client.endpoint}${signed.path}`, signed: true, exp: signed.exp };
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) throw new ApiError(404, error.problem, `no image ${id} for this key`);
      throw error;
    }
  } else {
    const query = params.toString();
    result = { url: `${client.endpoint}/i/${encodeURIComponent(id)}${query ? `?${query}` : ""}`, signed: false, exp: null };
  }
  io.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.url}\n`);
  return 0;
}
