#!/usr/bin/env node
// @ts-check
// edge-images: the command-line client of the edge-images API (bulk upload with resume, list,
// get, delete, jobs, transform URLs). Plain ESM for Node 20+, no dependencies, no build step.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { ApiClient, ApiError, NetworkError } from "./lib/api.mjs";
import { deleteCommand, getCommand, jobsCommand, listCommand, TRANSFORM_PARAMS, urlCommand } from "./lib/commands.mjs";
import { DEFAULT_ENDPOINT, resolveConfig, UsageError } from "./lib/config.mjs";
import { parseDuration } from "./lib/format.mjs";
import { runUpload } from "./lib/upload.mjs";

const VERSION = readVersion();

/** @typedef {{ type: "string" | "boolean", multiple?: boolean, short?: string }} OptionSpec */

/** @type {Record<string, OptionSpec>} */
const GLOBAL_OPTIONS = {
  endpoint: { type: "string" },
  key: { type: "string" },
  config: { type: "string" },
  json: { type: "boolean" },
  retries: { type: "string" },
  "retry-delay": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
};
/** Global options that take a value (to find the command among the arguments). */
const VALUE_OPTIONS = new Set(Object.entries(GLOBAL_OPTIONS).filter(([, spec]) => spec.type === "string").map(([name]) => `--${name}`));

/** @type {Record<string, Record<string, OptionSpec>>} */
const COMMAND_OPTIONS = {
  upload: {
    concurrency: { type: "string", short: "c" },
    metadata: { type: "string", multiple: true, short: "m" },
    "metadata-json": { type: "string" },
    variants: { type: "string" },
    mode: { type: "string" },
    "callback-url": { type: "string" },
    "files-from": { type: "string" },
    "no-state": { type: "boolean" },
    verify: { type: "boolean" },
    "no-check": { type: "boolean" },
    "ignore-rejected": { type: "boolean" },
    wait: { type: "boolean" },
    "no-progress": { type: "boolean" },
    verbose: { type: "boolean", short: "v" },
  },
  list: {
    limit: { type: "string", short: "n" },
    all: { type: "boolean" },
    cursor: { type: "string" },
    "filename-prefix": { type: "string" },
    metadata: { type: "string", multiple: true, short: "m" },
    sha256: { type: "string" },
    "created-after": { type: "string" },
    "created-before": { type: "string" },
  },
  get: {},
  delete: { concurrency: { type: "string", short: "c" } },
  jobs: { limit: { type: "string", short: "n" }, all: { type: "boolean" }, wait: { type: "boolean" }, timeout: { type: "string" } },
  url: {
    ...Object.fromEntries(TRANSFORM_PARAMS.flatMap((name) => [[name, { type: "string" }], ...(name.includes("_") ? [[name.replace(/_/g, "-"), { type: "string" }]] : [])])),
    sign: { type: "boolean" },
    "no-sign": { type: "boolean" },
    "expires-in": { type: "string" },
    variant: { type: "string" },
  },
};

const HELP = {
  main: `edge-images ${VERSION}: upload and manage images on an edge-images server

Usage: edge-images <command> [options]

Commands:
  upload <file|folder>...   upload images (folders recursively), resumable
  list                      list images, newest first
  get <id>                  one image with its variants
  delete <id>...            delete images (originals, renditions, cache)
  jobs [<id>]               list jobs, or show one with its items (--wait)
  url <id> [params]         a transform URL, signed when the tenant requires it

Options for every command:
  --endpoint URL      API origin (env EDGE_IMAGES_ENDPOINT, config file; default ${DEFAULT_ENDPOINT})
  --key KEY           API key (env EDGE_IMAGES_KEY or the config file are better: a flag shows in ps)
  --config FILE       config file (default ~/.config/edge-images/config.json, env EDGE_IMAGES_CONFIG)
                      {"endpoint": "https://img.example.com", "key": "eik_..."}
  --json              machine-readable output on stdout
  --retries N         retries on network errors, 408, 429 and 5xx (default 4)
  --retry-delay MS    first backoff delay, doubled each retry, with jitter (default 500)
  -h, --help          help (edge-images <command> --help for a command)
  --version

Exit status: 0 when everything succeeded, 1 when anything failed, 2 on a usage error.
`,
  upload: `Usage: edge-images upload <file|folder>... [options]

Uploads each file with its own PUT /v1/images, several at a time. Folders are walked
recursively (sorted; dotfiles and dot-folders skipped). The server decides what is an image.

  -c, --concurrency N      files in flight at once (default 4)
  -m, --metadata K=V       metadata for every file (repeatable)
      --metadata-json JSON metadata object for every file (--metadata wins on the same key)
      --variants JSON      variants to make, e.g. '{"thumb":"w=400&h=400&fit=cover"}'
      --mode sync|async    make the variants in the request, or as a job (server default:
                           sync unless files x variants is large)
      --callback-url URL   webhook when the variants job ends (implies async)
      --wait               wait for the variant jobs to finish (and fail if one fails)
      --files-from FILE    more paths, one per line ("-" for stdin)
      --ignore-rejected    files the server refuses (not an image, too large, corrupt:
                           413/415/422) are listed but do not make the exit status 1
      --no-check           do not ask the server by SHA-256 before sending a file's bytes
      --verify             ask the server for every file, even those the state file
                           records as uploaded (after you deleted images, say)
      --no-state           neither read nor write .edge-images-upload.json
      --no-progress        no progress line (it is drawn only when stderr is a terminal)
  -v, --verbose            one line per file

Resume: a rerun skips what is already uploaded. Each folder named (or the folder of each file
named) gets a .edge-images-upload.json recording, per file, its size, mtime, SHA-256 and the
image id per endpoint and tenant: an unchanged file already uploaded there is skipped without
being read. Other files are hashed and the server is asked whether the tenant has those bytes
(GET /v1/images?sha256=); only new bytes are sent. The server de-duplicates by SHA-256 too.

Retries: network errors, 408, 429 (honouring Retry-After) and 5xx are retried with exponential
backoff and jitter (--retries, --retry-delay); other 4xx are final for that file. 401/403 or
refused options (a bad --variants) stop the run.
`,
  list: `Usage: edge-images list [options]

  -n, --limit N            images to show, or the page size with --all (default 50, at most 100)
      --all                follow the cursors to the end
      --cursor C           start after a previous page
      --filename-prefix P
  -m, --metadata K=V       only images with this metadata (repeatable, all must match)
      --sha256 HEX         the image with these bytes, if any
      --created-after T, --created-before T   ISO 8601 or epoch milliseconds
`,
  get: `Usage: edge-images get <id> [--json]\n`,
  delete: `Usage: edge-images delete <id>... [-c N]

Deletes each image: its row, original, renditions and cache entries. Idempotent.
`,
  jobs: `Usage: edge-images jobs [options]        the newest jobs
       edge-images jobs <id> [--wait]    one job with its items

  -n, --limit N     jobs to list (default 20)
      --all         every job
      --wait        poll until the job is finished; exit 1 unless it succeeded
      --timeout T   give up waiting after T (e.g. 90s, 10m)
`,
  url: `Usage: edge-images url <id> [params] [--w 400 --h 300 --fit cover --fmt auto ...]

Prints the URL of the image, transformed by the parameters given as a query string
("w=400&fmt=auto") and/or as options named like them (--w, --h, --dpr, --fit, --g, --crop,
--rot, --flip, --fmt, --q, --blur, --sharpen, --bg, --wm, --wm-pos, --wm-scale, --wm-op,
--wm-pad, --p). When the tenant requires signed URLs the URL is signed by the server
(POST /v1/sign); the signing secret never leaves it.

      --sign            sign even when the tenant does not require it
      --no-sign         never sign (no request is made at all)
      --expires-in T    signed URL valid for T (3600, 90s, 15m, 2h, 7d); implies --sign
      --variant NAME    the URL of a stored variant instead (/i/<id>/<name>)
`,
};

/**
 * @param {string[]} argv
 * @param {{ stdout: NodeJS.WriteStream, stderr: NodeJS.WriteStream, env: NodeJS.ProcessEnv }} io
 * @returns {Promise<number>}
 */
async function main(argv, io) {
  const { command, rest } = splitCommand(argv);
  if (command === undefined || command === "help") {
    const topic = command === "help" ? rest.find((arg) => !arg.startsWith("-")) : undefined;
    if (rest.includes("--version") && command === undefined) {
      io.stdout.write(`${VERSION}\n`);
      return 0;
    }
    const asked = command === "help" || rest.includes("--help") || rest.includes("-h");
    (asked ? io.stdout : io.stderr).write(topic && topic in HELP ? HELP[/** @type {keyof typeof HELP} */ (topic)] : HELP.main);
    return asked ? 0 : 2;
  }
  const commandOptions = COMMAND_OPTIONS[command];
  if (!commandOptions) throw new UsageError(`unknown command ${JSON.stringify(command)}; commands: ${Object.keys(COMMAND_OPTIONS).join(", ")}`);

  /** @type {{ values: Record<string, string | boolean | Array<string | boolean> | undefined>, positionals: string[] }} */
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...commandOptions }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n(see: edge-images ${command} --help)`);
  }
  const { values, positionals } = parsed;
  if (values["help"]) {
    io.stdout.write(HELP[/** @type {keyof typeof HELP} */ (command)]);
    return 0;
  }
  if (values["version"]) {
    io.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const json = values["json"] === true;
  const warn = (/** @type {string} */ message) => io.stderr.write(`warning: ${message}\n`);
  const config = await resolveConfig({ endpoint: str(values, "endpoint"), key: str(values, "key"), config: str(values, "config") }, io.env, warn);
  const needsKey = !(command === "url" && values["no-sign"] === true);
  if (needsKey && !config.key) {
    throw new UsageError(`no API key: set EDGE_IMAGES_KEY, pass --key, or put {"key": "eik_..."} in ${config.configFile}`);
  }
  const client = new ApiClient({
    endpoint: config.endpoint,
    key: config.key,
    retry: { retries: int(values, "retries", 4, 0, 20), baseMs: int(values, "retry-delay", 500, 0, 60_000) },
    userAgent: `edge-images-cli/${VERSION} node/${process.versions.node}`,
  });

  switch (command) {
    case "upload": {
      const paths = [...positionals];
      const filesFrom = str(values, "files-from");
      if (filesFrom !== undefined) paths.push(...(await readPathList(filesFrom)));
      if (paths.length === 0) throw new UsageError("name the files or folders to upload: edge-images upload ./photos");
      const mode = str(values, "mode");
      if (mode !== undefined && mode !== "sync" && mode !== "async") throw new UsageError(`--mode is sync or async, not ${JSON.stringify(mode)}`);
      return runUpload(
        client,
        {
          paths,
          concurrency: int(values, "concurrency", 4, 1, 64),
          metadata: metadataOf(values),
          variants: variantsOf(str(values, "variants")),
          mode,
          callbackUrl: str(values, "callback-url"),
          useState: values["no-state"] !== true,
          verify: values["verify"] === true,
          check: values["no-check"] !== true,
          ignoreRejected: values["ignore-rejected"] === true,
          wait: values["wait"] === true,
          progress: values["no-progress"] !== true,
          verbose: values["verbose"] === true,
          json,
        },
        io,
      );
    }
    case "list": {
      const limitText = str(values, "limit");
      return listCommand(
        client,
        {
          limit: limitText === undefined ? undefined : int(values, "limit", 50, 1, 100),
          all: values["all"] === true,
          cursor: str(values, "cursor"),
          filenamePrefix: str(values, "filename-prefix"),
          metadata: metadataOf(values),
          sha256: str(values, "sha256"),
          createdAfter: str(values, "created-after"),
          createdBefore: str(values, "created-before"),
          json,
        },
        io,
      );
    }
    case "get": {
      if (positionals.length !== 1 || positionals[0] === undefined) throw new UsageError("usage: edge-images get <id>");
      return getCommand(client, positionals[0], { json }, io);
    }
    case "delete": {
      if (positionals.length === 0) throw new UsageError("usage: edge-images delete <id>...");
      return deleteCommand(client, positionals, { json, concurrency: int(values, "concurrency", 4, 1, 64) }, io);
    }
    case "jobs": {
      if (positionals.length > 1) throw new UsageError("usage: edge-images jobs [<id>]");
      const timeout = str(values, "timeout");
      const timeoutSeconds = timeout === undefined ? undefined : parseDuration(timeout);
      if (timeout !== undefined && timeoutSeconds === undefined) throw new UsageError(`--timeout takes a duration like 90s or 10m, not ${JSON.stringify(timeout)}`);
      const limitText = str(values, "limit");
      return jobsCommand(
        client,
        positionals[0],
        { json, wait: values["wait"] === true, all: values["all"] === true, limit: limitText === undefined ? undefined : int(values, "limit", 20, 1, 100), timeoutSeconds },
        io,
      );
    }
    case "url": {
      const [id, ...raw] = positionals;
      if (id === undefined || raw.length > 1) throw new UsageError('usage: edge-images url <id> ["w=400&fmt=auto"] [--w 400 ...]');
      const params = new URLSearchParams((raw[0] ?? "").replace(/^\?/, ""));
      for (const name of TRANSFORM_PARAMS) {
        const value = str(values, name) ?? str(values, name.replace(/_/g, "-"));
        if (value !== undefined) params.set(name, value);
      }
      if (values["sign"] === true && values["no-sign"] === true) throw new UsageError("--sign or --no-sign, not both");
      const expires = str(values, "expires-in");
      const expiresIn = expires === undefined ? undefined : parseDuration(expires);
      if (expires !== undefined && (expiresIn === undefined || expiresIn <= 0)) throw new UsageError(`--expires-in takes a duration like 3600, 15m or 7d, not ${JSON.stringify(expires)}`);
      return urlCommand(
        client,
        id,
        params,
        { sign: values["sign"] === true ? "always" : values["no-sign"] === true ? "never" : "auto", expiresIn, variant: str(values, "variant"), json },
        io,
      );
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

/**
 * The command is the first argument that is neither an option nor an option's value.
 * @param {string[]} argv
 * @returns {{ command: string | undefined, rest: string[] }}
 */
function splitCommand(argv) {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") break;
    if (arg.startsWith("-")) {
      if (VALUE_OPTIONS.has(arg)) i++;
      continue;
    }
    return { command: arg, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { command: undefined, rest: argv };
}

/**
 * @param {Record<string, unknown>} values
 * @param {string} name
 * @returns {string | undefined}
 */
function str(values, name) {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

/**
 * @param {Record<string, unknown>} values
 * @param {string} name
 * @param {number} fallback
 * @param {number} min
 * @param {number} max
 */
function int(values, name, fallback, min, max) {
  const text = str(values, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) throw new UsageError(`--${name} takes a whole number from ${min} to ${max}, not ${JSON.stringify(text)}`);
  return value;
}

const METADATA_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * --metadata-json first, then each --metadata K=V over it.
 * @param {Record<string, unknown>} values
 * @returns {Record<string, string>}
 */
function metadataOf(values) {
  /** @type {Record<string, string>} */
  const metadata = {};
  const jsonText = str(values, "metadata-json");
  if (jsonText !== undefined) {
    /** @type {unknown} */
    let parsed;
    try {
      parsed = JSON.parse(jsonText);
    } catch {
      throw new UsageError("--metadata-json is not valid JSON");
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new UsageError('--metadata-json takes a JSON object: {"album": "holidays"}');
    for (const [key, value] of Object.entries(parsed)) {
      if (typeof value !== "string") throw new UsageError(`--metadata-json: the value of ${JSON.stringify(key)} must be a string`);
      metadata[key] = value;
    }
  }
  const pairs = values["metadata"];
  for (const pair of Array.isArray(pairs) ? pairs : []) {
    if (typeof pair !== "string") continue;
    const at = pair.indexOf("=");
    if (at <= 0) throw new UsageError(`--metadata takes KEY=VALUE, not ${JSON.stringify(pair)}`);
    metadata[pair.slice(0, at)] = pair.slice(at + 1);
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (!METADATA_KEY.test(key)) throw new UsageError(`metadata key ${JSON.stringify(key)} must match ${METADATA_KEY.source}`);
    if (value.length > 1024) throw new UsageError(`metadata value of ${key} is longer than 1024 characters`);
  }
  return metadata;
}

/**
 * @param {string | undefined} text
 * @returns {Record<string, string> | undefined}
 */
function variantsOf(text) {
  if (text === undefined) return undefined;
  /** @type {unknown} */
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`--variants takes a JSON object, e.g. '{"thumb":"w=400&h=400&fit=cover"}'`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new UsageError(`--variants takes a JSON object, e.g. '{"thumb":"w=400&h=400&fit=cover"}'`);
  /** @type {Record<string, string>} */
  const variants = {};
  for (const [name, params] of Object.entries(parsed)) {
    if (typeof params !== "string") throw new UsageError(`--variants: the parameters of ${JSON.stringify(name)} must be a string like "w=400&fmt=auto"`);
    variants[name] = params;
  }
  return variants;
}

/** @param {string} source a file, or "-" for stdin */
async function readPathList(source) {
  /** @type {string} */
  let text;
  if (source === "-") {
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(/** @type {Buffer} */ (chunk));
    text = Buffer.concat(chunks).toString("utf8");
  } else {
    text = await readFile(source, "utf8");
  }
  return text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "");
}

function readVersion() {
  try {
    const pkg = /** @type {{ version?: unknown }} */ (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")));
    return typeof pkg.version === "string" ? pkg.version : "0.0.0";
  } catch {
    return "0.0.0";
  }
}

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    if (error instanceof UsageError) {
      process.stderr.write(`edge-images: ${error.message}\n`);
      process.exitCode = 2;
    } else if (error instanceof ApiError || error instanceof NetworkError) {
      process.stderr.write(`edge-images: ${error.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`edge-images: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
