// Concurrency: 20 clients upload (PUT and bulk POST, unique and shared bytes) and delete in
// parallel against the real `wrangler dev`, then D1 and R2 must agree, through the API only:
// every listed row (D1) has its original (a fresh transform renders from the R2 original) and
// every id that is no longer listed has no original left (the same transform is a 404).
// `npm test` runs it for STRESS_SECONDS=10; `npm run stress` for 60 s.
import { mkdirSync, writeFileSync } from "node:fs";
import sharp from "sharp";
import { expect, inject, it } from "vitest";
import { nearSourceChange, watchSources } from "./fuzz-engine";

const SECONDS = Number(process.env["STRESS_SECONDS"] ?? 10);
const CLIENTS = 20;
const TENANTS = 10;

interface Stats {
  requests: number;
  uploads: number;
  filesStored: number;
  duplicates: number;
  deletes: number;
  reads: number;
  s429: number;
  s4xx: number;
  s5xx: number;
  connectionErrors: number;
  /** 5xx and connection failures within 15 s of a source change (wrangler dev reloading the worker). */
  duringReload: number;
  fivexx: string[];
}

async function tinyImage(): Promise<Uint8Array<ArrayBuffer>> {
  const size = 8 + Math.floor(Math.random() * 40);
  const background = { r: rand(256), g: rand(256), b: rand(256) };
  const image = sharp({ create: { width: size, height: size + rand(8), channels: 3, background } });
  const buffer = Math.random() < 0.5 ? await image.png().toBuffer() : await image.jpeg({ quality: 80 }).toBuffer();
  return new Uint8Array(buffer);
}

function rand(n: number): number {
  return Math.floor(Math.random() * n);
}

function idsOf(json: unknown): string[] {
  const images = (json as { images?: Array<{ id: string }> } | undefined)?.images;
  return Array.isArray(images) ? images.map((image) => image.id) : [];
}

it(
  `${CLIENTS} clients upload and delete in parallel for ${SECONDS} s; D1 and R2 agree afterwards, no 5xx`,
  async () => {
    const baseUrl = inject("baseUrl");
    const adminKey = inject("adminKey");
    const stats: Stats = { requests: 0, uploads: 0, filesStored: 0, duplicates: 0, deletes: 0, reads: 0, s429: 0, s4xx: 0, s5xx: 0, connectionErrors: 0, duringReload: 0, fivexx: [] };
    const sourceChanges: number[] = [];
    const watchers = watchSources(() => sourceChanges.push(Date.now()));

    const tenants: Array<{ key: string }> = [];
    for (let i = 0; i < TENANTS; i++) {
      const response = await fetch(`${baseUrl}/v1/tenants`, {
        method: "POST",
        headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
        body: JSON.stringify({ name: `stress-${i}` }),
      });
      expect(response.status).toBe(201);
      tenants.push({ key: ((await response.json()) as { key: { key: string } }).key.key });
    }
    // Bytes shared by the clients of a tenant: concurrent duplicates and delete-vs-duplicate races.
    const shared = await Promise.all(Array.from({ length: 4 }, tinyImage));
    const seen = tenants.map(() => new Set<string>());

    async function request(url: string, init: RequestInit): Promise<{ status: number; json?: unknown }> {
      stats.requests++;
      try {
        const response = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) });
        const text = await response.text();
        if (response.status >= 500 && nearSourceChange(sourceChanges)) stats.duringReload++;
        else if (response.status >= 500) {
          stats.s5xx++;
          if (stats.fivexx.length < 20) stats.fivexx.push(`${init.method ?? "GET"} ${url} ${response.status} ${text.slice(0, 300)}`);
        } else if (response.status === 429) stats.s429++;
        else if (response.status >= 400) stats.s4xx++;
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        return { status: response.status, json };
      } catch (error) {
        if (nearSourceChange(sourceChanges)) {
          stats.duringReload++;
          return { status: 0 };
        }
        stats.connectionErrors++;
        if (stats.fivexx.length < 20) stats.fivexx.push(`${init.method ?? "GET"} ${url} connection: ${String((error as Error).cause ?? error)}`);
        return { status: 0 };
      }
    }

    const deadline = Date.now() + SECONDS * 1000;
    async function client(index: number): Promise<void> {
      const tenantIndex = index % TENANTS;
      const { key } = tenants[tenantIndex]!;
      const auth = { authorization: `Bearer ${key}` };
      const own: string[] = [];
      while (Date.now() < deadline) {
        const action = Math.random();
        if (action < 0.5 || own.length === 0) {
          stats.uploads++;
          let result;
          if (Math.random() < 0.5) {
            const bytes = Math.random() < 0.25 ? shared[rand(shared.length)]! : await tinyImage();
            result = await request(`${baseUrl}/v1/images`, { method: "PUT", headers: auth, body: bytes });
          } else {
            const form = new FormData();
            const count = 1 + rand(3);
            for (let i = 0; i < count; i++) {
              const bytes = Math.random() < 0.25 ? shared[rand(shared.length)]! : await tinyImage();
              form.append("file", new Blob([bytes]), `s${i}.img`);
            }
            result = await request(`${baseUrl}/v1/images`, { method: "POST", headers: auth, body: form });
          }
          for (const image of (result.json as { images?: Array<{ id: string; duplicate?: boolean }> } | undefined)?.images ?? []) {
            stats.filesStored++;
            if (image.duplicate) stats.duplicates++;
            own.push(image.id);
            seen[tenantIndex]!.add(image.id);
          }
        } else if (action < 0.85) {
          const victim = own.splice(rand(own.length), 1)[0]!;
          stats.deletes++;
          await request(`${baseUrl}/v1/images/${victim}`, { method: "DELETE", headers: auth });
        } else {
          stats.reads++;
          const id = own[rand(own.length)]!;
          await request(`${baseUrl}/v1/images/${id}`, { headers: auth });
        }
      }
    }
    const started = Date.now();
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
    const elapsed = (Date.now() - started) / 1000;
    for (const watcher of watchers) watcher.close();

    // D1 (the listing) against R2 (a fresh transform reads the original from R2, past any cache).
    let rows = 0;
    let rowsWithoutObject = 0;
    let deletedIds = 0;
    let objectsWithoutRow = 0;
    let staleCachedOriginals = 0;
    const problems: string[] = [];
    for (let t = 0; t < TENANTS; t++) {
      const { key } = tenants[t]!;
      const listed = new Set<string>();
      let cursor: string | null = null;
      do {
        const page = (await (await fetch(`${baseUrl}/v1/images?limit=100${cursor ? `&cursor=${cursor}` : ""}`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
          images: Array<{ id: string }>;
          nextCursor: string | null;
        };
        for (const image of page.images) listed.add(image.id);
        cursor = page.nextCursor;
      } while (cursor);
      rows += listed.size;
      const check = `w=7&h=7&fit=squeeze&fmt=png&q=${1 + rand(99)}`;
      for (const id of new Set([...listed, ...seen[t]!])) {
        const response = await fetch(`${baseUrl}/i/${id}?${check}`);
        await response.body?.cancel();
        if (response.status >= 500 && nearSourceChange(sourceChanges)) stats.duringReload++;
        else if (response.status >= 500) {
          stats.s5xx++;
          problems.push(`${id}: transform ${response.status}`);
        }
        if (listed.has(id)) {
          if (response.status !== 200) {
            rowsWithoutObject++;
            problems.push(`${id}: listed, but its transform is ${response.status}`);
          }
        } else {
          deletedIds++;
          if (response.status !== 404) {
            objectsWithoutRow++;
            problems.push(`${id}: not listed, but its transform is ${response.status}`);
          }
          const original = await fetch(`${baseUrl}/i/${id}`);
          await original.body?.cancel();
          if (original.status === 200) staleCachedOriginals++;
        }
      }
    }

    const summary = [
      `stress: ${CLIENTS} clients, ${TENANTS} tenants, ${elapsed.toFixed(1)} s`,
      `requests ${stats.requests} (${(stats.requests / elapsed).toFixed(1)}/s): upload requests ${stats.uploads}, files stored ${stats.filesStored} (duplicates ${stats.duplicates}), deletes ${stats.deletes}, reads ${stats.reads}`,
      `statuses: 5xx ${stats.s5xx}, 429 ${stats.s429}, other 4xx ${stats.s4xx}, connection errors ${stats.connectionErrors}; failures within 15 s of a source change (wrangler dev reloading, not counted) ${stats.duringReload}`,
      `consistency: rows listed ${rows}, rows without original ${rowsWithoutObject}; deleted ids ${deletedIds}, originals without row ${objectsWithoutRow}; deleted originals still served from cache ${staleCachedOriginals}`,
      ...stats.fivexx,
      ...problems.slice(0, 20),
    ].join("\n");
    console.log(summary);
    mkdirSync("test-results", { recursive: true });
    writeFileSync(`test-results/stress-summary.txt`, summary + "\n");

    expect(stats.uploads).toBeGreaterThan(CLIENTS);
    expect(stats.deletes).toBeGreaterThan(0);
    expect(stats.s5xx, summary).toBe(0);
    expect(stats.connectionErrors, summary).toBe(0);
    expect(rowsWithoutObject, summary).toBe(0);
    expect(objectsWithoutRow, summary).toBe(0);
  },
  (SECONDS + 240) * 1000,
);
