import { beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { TRANSFORM_QUERY_NAMES } from "../../src/transform/params";
import { call } from "./helpers";

type Obj = Record<string, unknown>;

const obj = (value: unknown): Obj => (value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Obj) : {});
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

const METHODS = ["get", "put", "post", "patch", "delete", "head", "options", "trace"];

/** Every operation of the document as [method, path, operation]. */
function operations(doc: Obj): Array<[string, string, Obj]> {
  return Object.entries(obj(doc.paths)).flatMap(([path, item]) =>
    METHODS.filter((method) => obj(item)[method] !== undefined).map((method): [string, string, Obj] => [method, path, obj(obj(item)[method])]),
  );
}

/** Every `$ref` anywhere in the value. */
function refs(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refs);
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([key, inner]) => (key === "$ref" && typeof inner === "string" ? [inner] : refs(inner)));
}

describe("GET /openapi.json", () => {
  let doc: Obj;
  let response: Response;

  beforeAll(async () => {
    response = await call("/openapi.json");
    doc = obj(await response.clone().json());
  });

  it("is a public OpenAPI 3.1 document", () => {
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(obj(doc.info).title).toBe("edge-images");
    expect(list(doc.servers)).toEqual([{ url: "http://img.test" }]);
  });

  it("documents every route the app registers, with its method", () => {
    // Hono lists method + path of every handler and middleware; ALL entries are middleware and 405 fallbacks.
    const routes = new Set(app.routes.filter((route) => route.method !== "ALL").map((route) => `${route.method.toLowerCase()} ${route.path}`));
    expect(routes.size).toBeGreaterThan(20);
    const documented = new Set(operations(doc).map(([method, path]) => `${method} ${path.replace(/\{([^}]+)\}/g, ":$1")}`));
    const missing = [...routes].filter((route) => !documented.has(route));
    expect(missing, "routes without docs.* (src/http/openapi.ts)").toEqual([]);
    const extra = [...documented].filter((route) => !routes.has(route));
    expect(extra, "documented operations the app does not have").toEqual([]);
  });

  it("gives every operation a unique operationId, a summary and path parameters", () => {
    const ids = operations(doc).map(([, , op]) => op.operationId);
    expect(ids.every((id) => typeof id === "string" && id !== "")).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [method, path, op] of operations(doc)) {
      expect(op.summary, `${method} ${path}`).toEqual(expect.any(String));
      const pathParams = [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]);
      const declared = list(op.parameters).map(obj).filter((p) => p.in === "path");
      expect(declared.map((p) => p.name).sort(), `${method} ${path}`).toEqual([...pathParams].sort());
      expect(declared.every((p) => p.required === true)).toBe(true);
    }
  });

  it("puts the bearer scheme on every /v1 operation and none on public ones", () => {
    expect(obj(obj(obj(doc.components).securitySchemes).bearerAuth)).toMatchObject({ type: "http", scheme: "bearer" });
    for (const [method, path, op] of operations(doc)) {
      if (path.startsWith("/v1/")) {
        expect(op.security, `${method} ${path}`).toEqual([{ bearerAuth: [] }]);
        expect(obj(obj(obj(op.responses)["401"]).content)["application/problem+json"], `${method} ${path}`).toBeDefined();
      } else {
        expect(op.security, `${method} ${path}`).toEqual([]);
      }
    }
  });

  it("describes every error response as an RFC 9457 problem document", () => {
    const problem = obj(obj(obj(doc.components).schemas).Problem);
    expect(problem.required).toEqual(expect.arrayContaining(["type", "title", "status", "detail"]));
    let errors = 0;
    for (const [method, path, op] of operations(doc)) {
      for (const [status, response] of Object.entries(obj(op.responses))) {
        if (!/^[45]/.test(status)) continue;
        errors++;
        const content = obj(obj(response).content);
        expect(Object.keys(content), `${method} ${path} ${status}`).toEqual(["application/problem+json"]);
        expect(obj(content["application/problem+json"]).schema, `${method} ${path} ${status}`).toEqual({ $ref: "#/components/schemas/Problem" });
      }
    }
    expect(errors).toBeGreaterThan(50);
  });

  it("documents every transform parameter on /i/{id}", () => {
    const serve = obj(obj(obj(doc.paths)["/i/{id}"]).get);
    const names = list(serve.parameters)
      .map(obj)
      .filter((p) => p.in === "query")
      .map((p) => p.name);
    expect(TRANSFORM_QUERY_NAMES.length).toBeGreaterThan(15);
    expect([...names].sort()).toEqual([...TRANSFORM_QUERY_NAMES].sort());
    for (const p of list(serve.parameters).map(obj)) {
      expect(p.description, String(p.name)).toEqual(expect.any(String));
      expect(Object.keys(obj(p.schema)).length, String(p.name)).toBeGreaterThan(0);
    }
    const fit = obj(list(serve.parameters).map(obj).find((p) => p.name === "fit")?.schema);
    expect(fit.enum).toEqual(["scale-down", "contain", "cover", "crop", "pad", "squeeze"]);
    expect(Object.keys(obj(obj(obj(serve.responses)["200"]).content))).toContain("image/avif");
    expect(obj(obj(doc.paths)["/i/{id}/{variant}"]).get).toBeDefined();
  });

  it("resolves every $ref and documents the webhook", () => {
    const schemas = obj(obj(doc.components).schemas);
    for (const ref of refs(doc)) {
      expect(ref).toMatch(/^#\/components\/schemas\//);
      expect(schemas[ref.slice("#/components/schemas/".length)], ref).toBeDefined();
    }
    for (const name of ["Image", "UploadResult", "UploadAccepted", "Problem", "Job", "Variant", "Preset", "Tenant", "Key", "NewKey"]) {
      expect(schemas[name], name).toBeDefined();
    }
    expect(obj(obj(obj(doc.webhooks).jobFinished).post).requestBody).toBeDefined();
  });

  it("uses the routes' own validators for JSON bodies", () => {
    const patch = obj(obj(obj(doc.paths)["/v1/images/{id}"]).patch);
    const schema = obj(obj(obj(obj(patch.requestBody).content)["application/json"]).schema);
    expect(schema).toMatchObject({ type: "object", required: ["metadata"], additionalProperties: false });
    const upload = obj(obj(obj(doc.paths)["/v1/images"]).post);
    expect(Object.keys(obj(obj(upload.requestBody).content))).toEqual(["multipart/form-data"]);
    expect(Object.keys(obj(upload.responses))).toEqual(expect.arrayContaining(["201", "202", "207", "413", "415", "422", "429"]));
  });

  it("answers HEAD and refuses other methods with 405", async () => {
    expect((await call("/openapi.json", { method: "HEAD" })).status).toBe(200);
    const post = await call("/openapi.json", { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });
});

describe("GET /docs", () => {
  it("is a server-rendered HTML page with no scripts or external resources", async () => {
    const response = await call("/docs");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = response.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("script-src");
    const html = await response.text();
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\(/i);
    expect(html).toContain('href="/openapi.json"');

    // Every operation and every transform parameter is on the page.
    const doc = obj(await (await call("/openapi.json")).json());
    for (const [, path, op] of operations(doc)) {
      expect(html).toContain(`id="op-${String(op.operationId)}"`);
      expect(html).toContain(`<code>${path}</code>`);
    }
    for (const name of TRANSFORM_QUERY_NAMES) expect(html).toContain(`<code>${name}</code>`);

    // The one inline stylesheet is allowed by its hash.
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? "";
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(style));
    expect(csp).toContain(`style-src 'sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}'`);
  });

  it("refuses other methods with 405", async () => {
    const response = await call("/docs", { method: "DELETE" });
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("GET, HEAD");
  });
});
