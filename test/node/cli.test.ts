// The CLI (bin/edge-images.mjs) run as a child process against the real `wrangler dev`: a folder
// upload with a hostile file, resume (by the state file, then by asking the server), retries
// through a flaky proxy, list/get/delete, plain and signed URLs, async variants and jobs.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseUrl, createTenant } from "./api-client";
import { corpusFiles, readCorpusFile } from "./corpus";

const CLI = resolve(import.meta.dirname, "../../bin/edge-images.mjs");
/** The Node that runs the CLI: this one, or another (e.g. a Node 20) named by EDGE_IMAGES_CLI_NODE. */
const NODE = process.env["EDGE_IMAGES_CLI_NODE"] || process.execPath;
const STATE_FILE = ".edge-images-upload.json";

/** Real photos and images of every accepted format, small enough for a quick run. */
const PHOTOS = [
  "photo-small-aero1.jpg",
  "photo-small-fruits.jpg",
  "avif-photo-kite.avif",
  "webp-lossy-photo-bythewater.webp",
  "jpeg-icc-adobergb.jpg",
  "png-gray-basketball.png",
  "gif-animated-opencv-houghlines.gif",
  "png-alpha-opencv-logo.png",
  "webp-lossless-alpha-opencv-logo.webp",
  "png-alpha-watermark-debian.png",
];

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface UploadReport {
  summary: { files: number; uploaded: number; duplicates: number; skipped: number; rejected: number; failed: number; jobs: number; ok: boolean };
  files: Array<{ path: string; outcome: string; id?: string; sha256?: string; status?: number; code?: string; reason?: string; attempts: number; skippedBy?: string; job?: string }>;
  jobs: Array<{ id: string; state: string }>;
}

let work = "";
/** Every key the tests used: none may appear in any output. */
const keys: string[] = [];
const outputs: string[] = [];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "edge-images-cli-"));
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Runs the CLI with the endpoint and key in the environment (no config file of the user). */
function cli(args: string[], options: { key?: string; endpoint?: string; env?: Record<string, string> } = {}): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, EDGE_IMAGES_CONFIG: join(work, "absent-config.json"), ...options.env };
  delete env["EDGE_IMAGES_KEY"];
  delete env["EDGE_IMAGES_ENDPOINT"];
  if (options.key !== undefined) env["EDGE_IMAGES_KEY"] = options.key;
  env["EDGE_IMAGES_ENDPOINT"] = options.endpoint ?? baseUrl();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(NODE, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      outputs.push(stdout, stderr);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

function report(run: CliRun): UploadReport {
  try {
    return JSON.parse(run.stdout) as UploadReport;
  } catch {
    throw new Error(`not JSON (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
}

async function tenantWithKey(name: string): Promise<{ tenantId: string; key: string }> {
  const tenant = await createTenant(name);
  keys.push(tenant.key);
  return tenant;
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** A folder of real photos (some in a subfolder), one hostile file and a dotfile to skip. */
function photoFolder(name: string): { dir: string; photos: Map<string, string>; hostile: string } {
  const dir = join(work, name);
  mkdirSync(join(dir, "sub"), { recursive: true });
  const wanted = new Set(PHOTOS);
  const found = corpusFiles((file) => wanted.has(file));
  const photos = new Map<string, string>();
  for (const [i, file] of found.names.slice(0, PHOTOS.length).entries()) {
    const bytes = readCorpusFile(found.dir, file);
    const relative = i % 3 === 0 ? `sub/${file}` : file;
    writeFileSync(join(dir, relative), bytes);
    photos.set(relative, sha256(bytes));
  }
  const hostileName = "hostile-svg-script.svg";
  const hostile = readCorpusFile(found.dir, hostileName);
  writeFileSync(join(dir, hostileName), hostile);
  writeFileSync(join(dir, ".DS_Store"), "not an image, and a dotfile");
  return { dir, photos, hostile: hostileName };
}

describe("edge-images CLI against wrangler dev", () => {
  it("uploads a folder, names the refused file, exits 1, and resumes without sending anything again", async () => {
    const tenant = await tenantWithKey("cli-upload");
    const { dir, photos, hostile } = photoFolder("photos");
    expect(photos.size).toBeGreaterThanOrEqual(8);

    const first = await cli(["upload", dir, "--json", "-m", "album=Zürich", "--metadata-json", '{"source":"cli-test"}'], { key: tenant.key });
    expect(first.code, first.stderr).toBe(1);
    const firstReport = report(first);
    expect(firstReport.summary).toMatchObject({ files: photos.size + 1, uploaded: photos.size, rejected: 1, failed: 0, ok: false });
    const refused = firstReport.files.find((file) => file.outcome === "rejected");
    expect(refused).toMatchObject({ status: 415, code: "unsupported-format" });
    expect(refused?.path).toContain(hostile);
    expect(firstReport.files.some((file) => file.path.includes(".DS_Store"))).toBe(false);
    for (const file of firstReport.files.filter((entry) => entry.outcome === "uploaded")) {
      const relative = file.path.slice(dir.length + 1);
      expect(file.sha256).toBe(photos.get(relative));
      expect(file.attempts).toBe(1);
    }
    expect(existsSync(join(dir, STATE_FILE))).toBe(true);

    // Rerun, human output: nothing uploaded, everything skipped from the state file; the SVG still fails.
    const second = await cli(["upload", dir], { key: tenant.key });
    expect(second.code).toBe(1);
    expect(second.stdout).toContain(`0 uploaded, 0 duplicates, ${photos.size} skipped`);
    expect(second.stdout).toContain("1 rejected");
    expect(second.stdout).toMatch(new RegExp(`rejected +\\S*${hostile}: 415 unsupported-format`));

    // --ignore-rejected: the refusal is still reported, but the run succeeds.
    const third = report(await cli(["upload", dir, "--json", "--ignore-rejected"], { key: tenant.key }));
    expect(third.summary).toMatchObject({ uploaded: 0, skipped: photos.size, rejected: 1, ok: true });
    expect(third.files.filter((file) => file.skippedBy === "state")).toHaveLength(photos.size);

    // Without the state file the server is asked by SHA-256: still nothing is sent again.
    rmSync(join(dir, STATE_FILE));
    const fourthRun = await cli(["upload", dir, "--json", "--ignore-rejected"], { key: tenant.key });
    expect(fourthRun.code).toBe(0);
    const fourth = report(fourthRun);
    expect(fourth.summary).toMatchObject({ uploaded: 0, duplicates: 0, skipped: photos.size });
    expect(fourth.files.filter((file) => file.skippedBy === "server")).toHaveLength(photos.size);
    expect(fourth.files.filter((file) => file.attempts > 0).map((file) => file.outcome)).toEqual(["rejected"]);

    // list follows the cursors; its count and hashes match the folder; metadata arrived intact.
    const listed = await cli(["list", "--all", "--limit", "3", "--json"], { key: tenant.key });
    expect(listed.code, listed.stderr).toBe(0);
    const images = (JSON.parse(listed.stdout) as { images: Array<{ sha256: string; metadata: Record<string, string> }> }).images;
    expect(images).toHaveLength(photos.size);
    expect(new Set(images.map((image) => image.sha256))).toEqual(new Set(photos.values()));
    expect(images[0]?.metadata).toEqual({ album: "Zürich", source: "cli-test" });
    const filtered = await cli(["list", "--json", "-m", "album=Zürich", "--sha256", [...photos.values()][0] ?? ""], { key: tenant.key });
    expect((JSON.parse(filtered.stdout) as { images: unknown[] }).images).toHaveLength(1);
    const table = await cli(["list"], { key: tenant.key });
    expect(table.stdout.split("\n")[0]).toMatch(/^ID +FORMAT +SIZE/);
  });

  it("retries network errors, 503 and 429 (Retry-After) with backoff; gives up after --retries", async () => {
    const tenant = await tenantWithKey("cli-retry");
    const dir = join(work, "retry");
    mkdirSync(dir);
    const { dir: source, names } = corpusFiles((name) => /^pngsuite-basn[0-9].*\.png$/.test(name));
    for (const name of names.slice(0, 3)) writeFileSync(join(dir, name), readCorpusFile(source, name));

    const proxy = await flakyProxy(baseUrl());
    try {
      const run = await cli(["upload", dir, "--json", "--retries", "3", "--retry-delay", "20", "--concurrency", "3"], { key: tenant.key, endpoint: proxy.url });
      expect(run.code, run.stdout + run.stderr).toBe(0);
      const result = report(run);
      expect(result.summary).toMatchObject({ uploaded: 3, failed: 0 });
      // Each PUT failed once (network error, 503 or 429) and succeeded on its second attempt.
      expect(result.files.map((file) => file.attempts)).toEqual([2, 2, 2]);
      expect(run.stderr).toMatch(/retry .*(503|429|network error)/);
      expect(proxy.faults).toEqual(expect.arrayContaining(["reset", "503", "429"]));

      // A server that keeps failing: the file fails after 1 + --retries attempts, and the run exits 1.
      proxy.alwaysFail = true;
      writeFileSync(join(dir, "late.png"), readCorpusFile(source, names[3] ?? names[0] ?? ""));
      const failing = await cli(["upload", dir, "--json", "--no-state", "--no-check", "--retries", "1", "--retry-delay", "10"], { key: tenant.key, endpoint: proxy.url });
      expect(failing.code).toBe(1);
      const failed = report(failing);
      expect(failed.summary.failed).toBe(4);
      expect(failed.files.every((file) => file.attempts === 2 && /^503/.test(file.reason ?? ""))).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it("builds plain and signed transform URLs, gets and deletes images", async () => {
    const tenant = await tenantWithKey("cli-urls");
    const dir = join(work, "urls");
    mkdirSync(dir);
    const { dir: source, names } = corpusFiles((name) => name === "photo-small-aero1.jpg" || name === "photo-small-fruits.jpg");
    for (const name of names) writeFileSync(join(dir, name), readCorpusFile(source, name));
    const uploaded = report(await cli(["upload", dir, "--json"], { key: tenant.key }));
    const [id, otherId] = uploaded.files.map((file) => file.id ?? "");
    expect(id).toMatch(/^[0-9a-z]+$/);

    const plain = await cli(["url", id ?? "", "fmt=webp", "--w", "64"], { key: tenant.key });
    expect(plain.code, plain.stderr).toBe(0);
    const plainUrl = plain.stdout.trim();
    expect(plainUrl).toBe(`${baseUrl()}/i/${id}?fmt=webp&w=64`);
    const served = await fetch(plainUrl);
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe("image/webp");

    const patched = await fetch(`${baseUrl()}/v1/tenant`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json" },
      body: JSON.stringify({ requireSignedUrls: true }),
    });
    expect(patched.status).toBe(200);
    expect((await fetch(plainUrl)).status).not.toBe(200);

    const signed = await cli(["url", id ?? "", "--w", "64", "--fmt", "webp"], { key: tenant.key });
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stdout).toMatch(/[?&]sig=/);
    expect((await fetch(signed.stdout.trim())).status).toBe(200);
    const expiring = await cli(["url", id ?? "", "w=32", "--expires-in", "1h", "--json"], { key: tenant.key });
    const expiringUrl = JSON.parse(expiring.stdout) as { url: string; signed: boolean; exp: number };
    expect(expiringUrl.signed).toBe(true);
    expect(expiringUrl.exp).toBeGreaterThan(Date.now() / 1000 + 3500);
    expect((await fetch(expiringUrl.url)).status).toBe(200);
    // The original needs no signature: no request, no sig.
    expect((await cli(["url", id ?? ""], { key: tenant.key })).stdout.trim()).toBe(`${baseUrl()}/i/${id}`);

    const got = await cli(["get", id ?? "", "--json"], { key: tenant.key });
    expect((JSON.parse(got.stdout) as { id: string }).id).toBe(id);
    expect((await cli(["get", id ?? ""], { key: tenant.key })).stdout).toMatch(/^sha256 +[0-9a-f]{64}$/m);

    const deleted = await cli(["delete", id ?? ""], { key: tenant.key });
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toContain(`deleted ${id}`);
    const gone = await cli(["get", id ?? ""], { key: tenant.key });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("404 not-found");
    const left = JSON.parse((await cli(["list", "--json"], { key: tenant.key })).stdout) as { images: Array<{ id: string }> };
    expect(left.images.map((image) => image.id)).toEqual([otherId]);
  });

  it("uploads asynchronously with variants; the jobs reach succeeded", async () => {
    const tenant = await tenantWithKey("cli-jobs");
    const dir = join(work, "variants");
    mkdirSync(dir);
    const { dir: source, names } = corpusFiles((name) => name === "photo-small-aero1.jpg" || name === "photo-small-fruits.jpg");
    for (const name of names) writeFileSync(join(dir, name), readCorpusFile(source, name));

    const run = await cli(["upload", dir, "--json", "--mode", "async", "--variants", '{"thumb":"w=48&h=48&fit=cover&fmt=webp"}'], { key: tenant.key });
    expect(run.code, run.stderr).toBe(0);
    const uploaded = report(run);
    expect(uploaded.jobs).toHaveLength(names.length);
    const jobId = uploaded.files[0]?.job ?? "";
    expect(jobId).not.toBe("");

    const waited = await cli(["jobs", jobId, "--wait", "--timeout", "60s", "--json"], { key: tenant.key });
    expect(waited.code, waited.stdout + waited.stderr).toBe(0);
    const job = JSON.parse(waited.stdout) as { state: string; items: Array<{ state: string }> };
    expect(job.state).toBe("succeeded");
    expect(job.items.every((item) => item.state === "succeeded")).toBe(true);

    // upload --wait follows every job of the run.
    writeFileSync(join(dir, "again.png"), readCorpusFile(...firstPng()));
    const withWait = report(await cli(["upload", dir, "--json", "--mode", "async", "--wait", "--variants", '{"thumb":"w=48"}'], { key: tenant.key }));
    expect(withWait.summary).toMatchObject({ uploaded: 1, skipped: names.length, jobs: 1, ok: true });
    expect(withWait.jobs.map((entry) => entry.state)).toEqual(["succeeded"]);

    const list = JSON.parse((await cli(["jobs", "--json"], { key: tenant.key })).stdout) as { jobs: Array<{ id: string; state: string }> };
    expect(list.jobs.map((entry) => entry.id)).toContain(jobId);
    const human = await cli(["jobs", jobId], { key: tenant.key });
    expect(human.stdout).toMatch(/^state +succeeded$/m);

    const imageId = uploaded.files[0]?.id ?? "";
    const image = JSON.parse((await cli(["get", imageId, "--json"], { key: tenant.key })).stdout) as { variants: Array<{ name: string; state: string }> };
    expect(image.variants).toEqual([expect.objectContaining({ name: "thumb", state: "ready" })]);
    const variantUrl = (await cli(["url", imageId, "--variant", "thumb"], { key: tenant.key })).stdout.trim();
    const variant = await fetch(variantUrl);
    expect(variant.status).toBe(200);
    expect(variant.headers.get("content-type")).toBe("image/webp");
  });

  it("reads the endpoint and key from a config file, and never prints a key", async () => {
    const tenant = await tenantWithKey("cli-config");
    const file = join(work, "config.json");
    writeFileSync(file, JSON.stringify({ endpoint: baseUrl(), key: tenant.key }));
    chmodSync(file, 0o600);
    const fromFile = await cli(["list", "--json", "--config", file, "--retries", "0"], { endpoint: "http://127.0.0.1:9" });
    // The environment's endpoint (a dead port) wins over the file's: flags > environment > file.
    expect(fromFile.code).toBe(1);
    expect(fromFile.stderr).toContain("network error");
    const viaFile = await cli(["list", "--json"], { env: { EDGE_IMAGES_CONFIG: file, EDGE_IMAGES_ENDPOINT: "" } });
    expect(viaFile.code, viaFile.stderr).toBe(0);
    expect(JSON.parse(viaFile.stdout)).toEqual({ images: [], nextCursor: null });

    const wrongKey = "eik_wrong_" + "x".repeat(20);
    keys.push(wrongKey);
    const unauthorized = await cli(["upload", work], { key: wrongKey });
    expect(unauthorized.code).toBe(1);
    expect(unauthorized.stderr).toContain("401");
    const noKey = await cli(["list"]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain("EDGE_IMAGES_KEY");
    const usage = await cli(["upload", "--concurrency", "0", work], { key: tenant.key });
    expect(usage.code).toBe(2);
    const help = await cli(["upload", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--concurrency");

    for (const output of outputs) for (const key of keys) expect(output).not.toContain(key);
  });
});

function firstPng(): [string, string] {
  const { dir, names } = corpusFiles((name) => /^pngsuite-basn2c08\.png$/.test(name) || name === "png-gray-basketball.png");
  return [dir, names[0] ?? ""];
}

/**
 * A proxy in front of wrangler dev that fails the first attempt of every request, in turn with a
 * reset connection, a 503 and a 429 with Retry-After (or every attempt, with alwaysFail).
 */
async function flakyProxy(target: string): Promise<{ url: string; faults: string[]; alwaysFail: boolean; close: () => Promise<void> }> {
  const seen = new Set<string>();
  const state = { faults: [] as string[], alwaysFail: false };
  const server: Server = createServer(async (request, response) => {
    const body = await readBody(request);
    const key = `${request.method} ${request.url}`;
    if (state.alwaysFail && request.method === "PUT") {
      response.writeHead(503, { "content-type": "application/problem+json" }).end(JSON.stringify({ status: 503, detail: "down for the test" }));
      return;
    }
    if (!seen.has(key)) {
      seen.add(key);
      const fault = ["reset", "503", "429"][seen.size % 3] ?? "503";
      state.faults.push(fault);
      if (fault === "reset") request.socket.destroy();
      else response.writeHead(Number(fault), fault === "429" ? { "retry-after": "0" } : {}).end();
      return;
    }
    const headers: Record<string, string> = {};
    for (const name of ["authorization", "content-type", "x-metadata", "x-variants", "accept"]) {
      const value = request.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    const upstream = await fetch(target + (request.url ?? "/"), {
      method: request.method ?? "GET",
      headers,
      ...(request.method === "GET" || request.method === "HEAD" ? {} : { body: new Uint8Array(body) }),
    });
    const answer = Buffer.from(await upstream.arrayBuffer());
    response.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/octet-stream" }).end(answer);
  });
  await new Promise<void>((resolvePromise) => server.listen(0, "127.0.0.1", resolvePromise));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    get faults() {
      return state.faults;
    },
    get alwaysFail() {
      return state.alwaysFail;
    },
    set alwaysFail(value: boolean) {
      state.alwaysFail = value;
    },
    close: () =>
      new Promise<void>((resolvePromise) => {
        server.closeAllConnections();
        server.close(() => resolvePromise());
      }),
  };
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolvePromise(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}
