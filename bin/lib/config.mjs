// @ts-check
// Where the CLI talks to and with which key: flags, then environment, then the config file.
import { readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

export const DEFAULT_ENDPOINT = "http://localhost:8787";

/**
 * @typedef {object} ResolvedConfig
 * @property {string} endpoint origin (and optional path prefix) without a trailing slash
 * @property {string | undefined} key
 * @property {string} configFile the file looked at (it may not exist)
 * @property {"flag" | "env" | "config" | "default"} endpointFrom
 * @property {"flag" | "env" | "config" | "none"} keyFrom
 */

export class UsageError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * `$EDGE_IMAGES_CONFIG`, else `$XDG_CONFIG_HOME/edge-images/config.json`, else `~/.config/edge-images/config.json`.
 * @param {NodeJS.ProcessEnv} env
 */
export function defaultConfigFile(env) {
  if (env["EDGE_IMAGES_CONFIG"]) return env["EDGE_IMAGES_CONFIG"];
  const base = env["XDG_CONFIG_HOME"] || join(homedir(), ".config");
  return join(base, "edge-images", "config.json");
}

/**
 * @param {{ endpoint?: string | undefined, key?: string | undefined, config?: string | undefined }} flags
 * @param {NodeJS.ProcessEnv} env
 * @param {(message: string) => void} warn
 * @returns {Promise<ResolvedConfig>}
 */
export async function resolveConfig(flags, env, warn) {
  const configFile = flags.config ?? defaultConfigFile(env);
  const file = await readConfigFile(configFile, flags.config !== undefined, warn);

  /** @type {[string, ResolvedConfig["endpointFrom"]]} */
  const [endpointText, endpointFrom] = flags.endpoint
    ? [flags.endpoint, "flag"]
    : env["EDGE_IMAGES_ENDPOINT"]
      ? [env["EDGE_IMAGES_ENDPOINT"], "env"]
      : file.endpoint
        ? [file.endpoint, "config"]
        : [DEFAULT_ENDPOINT, "default"];

  /** @type {[string | undefined, ResolvedConfig["keyFrom"]]} */
  const [key, keyFrom] = flags.key
    ? [flags.key, "flag"]
    : env["EDGE_IMAGES_KEY"]
      ? [env["EDGE_IMAGES_KEY"], "env"]
      : file.key
        ? [file.key, "config"]
        : [undefined, "none"];

  return { endpoint: normalizeEndpoint(endpointText), key: key?.trim(), configFile, endpointFrom, keyFrom };
}

/** @param {string} text */
export function normalizeEndpoint(text) {
  /** @type {URL} */
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--endpoint must be an http(s) URL such as ${DEFAULT_ENDPOINT}, not ${JSON.stringify(text)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--endpoint must be http or https, not ${url.protocol}`);
  if (url.search || url.hash) throw new UsageError("--endpoint takes no query or fragment");
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/**
 * @param {string} path
 * @param {boolean} explicit a missing file named by --config is an error
 * @param {(message: string) => void} warn
 * @returns {Promise<{ endpoint?: string, key?: string }>}
 */
async function readConfigFile(path, explicit, warn) {
  /** @type {string} */
  let text;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (!explicit && isNotFound(error)) return {};
    throw new UsageError(`cannot read the config file ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  /** @type {unknown} */
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`the config file ${path} is not valid JSON (expected {"endpoint": "...", "key": "..."})`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new UsageError(`the config file ${path} must hold a JSON object {"endpoint": "...", "key": "..."}`);
  }
  /** @type {{ endpoint?: string, key?: string }} */
  const config = {};
  for (const [name, field] of Object.entries(value)) {
    if (name !== "endpoint" && name !== "key") continue;
    if (typeof field !== "string") throw new UsageError(`"${name}" in ${path} must be a string`);
    config[name] = field;
  }
  if (config.key !== undefined && process.platform !== "win32") {
    const mode = (await stat(path)).mode;
    if ((mode & 0o077) !== 0) warn(`${path} holds an API key and is readable by other users; run: chmod 600 ${path}`);
  }
  return config;
}

/** @param {unknown} error */
function isNotFound(error) {
  return error instanceof Error && "code" in error && (error.code === "ENOENT" || error.code === "ENOTDIR");
}
