// Jobs end to end against wrangler dev's real queue: URL ingest from a local server (with a
// redirect, a 404 and a non-image) and a webhook received and verified by a local receiver.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseUrl, createTenant } from "./api-client";
import { corpusFiles, readCorpusFile } from "./corpus";

interface Hook {
  signature: string;
  body: string;
}

let server: Server;
let origin = "";
const hooks: Hook[] = [];

beforeAll(async () => {
  const { dir, names } = corpusFiles((name) => name === "photo-small-aero1.jpg" || name === "photo-small-fruits.jpg");
  const [aero, fruits] = names.map((name) => readCorpusFile(dir, name));
  server = createServer(async (request, response) => {
    if (request.url === "/aero.jpg") response.writeHead(200, { "content-type": "image/jpeg" }).end(aero);
    else if (request.url === "/moved") response.writeHead(302, { location: "/fruits.jpg" }).end();
    else if (request.url === "/fruits.jpg") response.writeHead(200, { "content-type": "image/jpeg" }).end(fruits);
    else if (request.url === "/notes.txt") response.writeHead(200, { "content-type": "image/jpeg" }).end("just text");
    else if (request.url === "/hook" && request.method === "POST") {
      hooks.push({ signature: String(request.headers["x-edge-images-signature"] ?? ""), body: await readBody(request) });
      response.writeHead(204).end();
    } else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    request.on("data", (chunk: Buffer) => (text += chunk.toString()));
    request.on("end", () => resolve(text));
  });
}

describe("jobs against wrangler dev", () => {
  it("ingests URLs, makes variants and calls back with a verifiable signature", async () => {
    const tenant = await createTenant("e2e-jobs");
    const auth = { authorization: `Bearer ${tenant.key}` };
    const settings = (await (await fetch(`${baseUrl()}/v1/tenant`, { headers: auth })).json()) as { webhookSecret: string };

    const created = await fetch(`${baseUrl()}/v1/jobs`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({
        urls: [`${origin}/aero.jpg`, `${origin}/moved`, `${origin}/missing.jpg`, `${origin}/notes.txt`],
        variants: { thumb: "w=120&h=120&fit=cover&fmt=webp" },
        callback_url: `${origin}/hook`,
      }),
    });
    expect(created.status).toBe(202);
    const job = (await created.json()) as { id: string };

    const deadline = Date.now() + 60_000;
    while (hooks.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(hooks).toHaveLength(1);
    const hook = hooks[0]!;

    // What a receiver does: recompute HMAC-SHA256(secret, "<t>.<raw body>") and compare in constant time.
    const parts = Object.fromEntries(hook.signature.split(",").map((part) => part.split("=") as [string, string]));
    const expected = createHmac("sha256", Buffer.from(settings.webhookSecret, "hex")).update(`${parts["t"]}.${hook.body}`).digest();
    expect(timingSafeEqual(expected, Buffer.from(parts["v1"]!, "hex"))).toBe(true);
    expect(Math.abs(Date.now() / 1000 - Number(parts["t"]))).toBeLessThan(300);

    const payload = JSON.parse(hook.body) as { type: string; job: { id: string; state: string; items: Array<{ state: string; imageId: string | null; error: string | null }> } };
    expect(payload.type).toBe("job.finished");
    expect(payload.job.id).toBe(job.id);
    expect(payload.job.state).toBe("partial");
    expect(payload.job.items.map((item) => item.state)).toEqual(["succeeded", "succeeded", "failed", "failed"]);

    const thumb = await fetch(`${baseUrl()}/i/${payload.job.items[1]!.imageId}/thumb`);
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get("content-type")).toBe("image/webp");
    const status = (await (await fetch(`${baseUrl()}/v1/jobs/${job.id}`, { headers: auth })).json()) as { state: string; callbackState: string };
    expect(status).toMatchObject({ state: "partial", callbackState: "delivered" });
  });
});
