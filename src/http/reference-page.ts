/**
 * `GET /docs`: the OpenAPI document as one server-rendered HTML page. No scripts, no external
 * resources: one inline stylesheet allowed by its hash, so the page works under the strictest
 * CSP and offline. Reads the document as plain JSON, so it renders whatever the generator made.
 */

const STYLE = `
:root{color-scheme:light dark;--fg:#1d1f23;--muted:#5b6270;--line:#d9dde3;--bg:#fff;--code:#f3f4f6;--get:#1f7a3f;--post:#1b5fb4;--put:#8a5a00;--patch:#6b3fa0;--delete:#b3261e}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--muted:#9aa3af;--line:#343a44;--bg:#15171b;--code:#22262d}}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
.layout{display:grid;grid-template-columns:17rem 1fr;max-width:84rem;margin:0 auto}
nav{position:sticky;top:0;height:100vh;overflow:auto;padding:1rem;border-right:1px solid var(--line);font-size:13px}
nav h2{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:1rem 0 .3rem}
nav a{display:block;color:inherit;text-decoration:none;padding:1px 0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
nav a:hover{text-decoration:underline}
main{padding:1rem 2rem 4rem;min-width:0}h1{margin:.2rem 0}h2{margin-top:2.5rem;border-bottom:1px solid var(--line);padding-bottom:.3rem}
.op{border:1px solid var(--line);border-radius:6px;padding:.6rem 1rem;margin:1rem 0}.op h3{margin:.2rem 0;font-size:16px;word-break:break-all}
.m{display:inline-block;min-width:4.2em;font:600 12px ui-monospace,monospace;text-transform:uppercase;color:#fff;border-radius:4px;padding:2px 6px;margin-right:.4rem;text-align:center;background:var(--muted)}
.m-get{background:var(--get)}.m-post{background:var(--post)}.m-put{background:var(--put)}.m-patch{background:var(--patch)}.m-delete{background:var(--delete)}
code{font:13px ui-monospace,monospace;background:var(--code);padding:0 3px;border-radius:3px}
table{border-collapse:collapse;width:100%;margin:.4rem 0;font-size:14px}th,td{text-align:left;vertical-align:top;border-top:1px solid var(--line);padding:4px 8px}
th{font-weight:600;color:var(--muted);font-size:12px}.muted{color:var(--muted)}.req{color:var(--delete);font-size:12px}
@media (max-width:50rem){.layout{display:block}nav{position:static;height:auto;border-right:0;border-bottom:1px solid var(--line)}}
`;

const METHODS = ["get", "put", "post", "patch", "delete", "head", "options", "trace"] as const;

export interface ReferencePage {
  readonly html: string;
  /** Content-Security-Policy for the page: nothing but its own inline stylesheet. */
  readonly csp: string;
}

let styleHash: Promise<string> | undefined;

export async function renderReferencePage(document: object): Promise<ReferencePage> {
  styleHash ??= crypto.subtle.digest("SHA-256", new TextEncoder().encode(STYLE)).then((digest) => btoa(String.fromCharCode(...new Uint8Array(digest))));
  const csp = `default-src 'none'; style-src 'sha256-${await styleHash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
  return { html: renderHtml(document), csp };
}

// ---------------------------------------------------------------------------------------------
// Reading untyped JSON

type Obj = Readonly<Record<string, unknown>>;

function obj(value: unknown): Obj {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Obj) : {};
}

function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

function text(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

// ---------------------------------------------------------------------------------------------
// HTML

function escape(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Escaped text with `code` spans. */
function prose(value: string | undefined): string {
  return value === undefined ? "" : escape(value).replace(/`([^`]+)`/g, "<code>$1</code>");
}

function anchor(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, "-");
}

interface Operation {
  readonly method: string;
  readonly path: string;
  readonly op: Obj;
  readonly id: string;
}

function renderHtml(document: object): string {
  const doc = obj(document);
  const info = obj(doc.info);
  const title = text(info.title) ?? "API";
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(obj(doc.paths))) {
    for (const method of METHODS) {
      const op = obj(obj(item)[method]);
      if (Object.keys(op).length === 0) continue;
      operations.push({ method, path, op, id: `op-${anchor(text(op.operationId) ?? `${method}-${path}`)}` });
    }
  }
  const tagNames = [...list(doc.tags).map((tag) => text(obj(tag).name) ?? ""), ...operations.flatMap(({ op }) => list(op.tags).map((tag) => text(tag) ?? ""))];
  const tags = [...new Set(tagNames.filter((name) => name !== ""))];
  const tagDescriptions = new Map(list(doc.tags).map((tag) => [text(obj(tag).name) ?? "", text(obj(tag).description)]));
  const byTag = (tag: string): Operation[] => operations.filter(({ op }) => (text(list(op.tags)[0]) ?? "") === tag);
  const untagged = operations.filter(({ op }) => list(op.tags).length === 0);
  const schemas = Object.entries(obj(obj(doc.components).schemas));
  const webhooks = Object.entries(obj(doc.webhooks));

  const nav = [
    ...tags.map((tag) => `<h2>${escape(tag)}</h2>${byTag(tag).map(navLink).join("")}`),
    untagged.length > 0 ? `<h2>Other</h2>${untagged.map(navLink).join("")}` : "",
    webhooks.length > 0 ? `<h2>Webhooks</h2>${webhooks.map(([name]) => `<a href="#webhook-${anchor(name)}">${escape(name)}</a>`).join("")}` : "",
    schemas.length > 0 ? `<h2>Schemas</h2>${schemas.map(([name]) => `<a href="#schema-${anchor(name)}">${escape(name)}</a>`).join("")}` : "",
  ].join("");

  const sections = [
    ...tags.map(
      (tag) =>
        `<h2 id="tag-${anchor(tag)}">${escape(tag)}</h2>${tagDescriptions.get(tag) ? `<p>${prose(tagDescriptions.get(tag))}</p>` : ""}${byTag(tag).map(renderOperation).join("")}`,
    ),
    untagged.length > 0 ? `<h2>Other</h2>${untagged.map(renderOperation).join("")}` : "",
    webhooks.length > 0
      ? `<h2>Webhooks</h2>${webhooks
          .flatMap(([name, item]) =>
            METHODS.filter((method) => obj(item)[method] !== undefined).map((method) =>
              renderOperation({ method, path: name, op: obj(obj(item)[method]), id: `webhook-${anchor(name)}` }),
            ),
          )
          .join("")}`
      : "",
    schemas.length > 0 ? `<h2>Schemas</h2>${schemas.map(([name, schema]) => renderSchema(name, obj(schema))).join("")}` : "",
  ].join("");

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escape(title)} API reference</title><style>${STYLE}</style></head>
<body><div class="layout"><nav><a href="#top"><strong>${escape(title)}</strong></a><a href="/openapi.json">openapi.json</a>${nav}</nav>
<main id="top"><h1>${escape(title)} API reference</h1>
<p class="muted">Version ${escape(text(info.version) ?? "")} · OpenAPI ${escape(text(doc.openapi) ?? "")} · machine-readable: <a href="/openapi.json">/openapi.json</a></p>
<p>${prose(text(info.description))}</p>${securityNote(doc)}${sections}</main></div></body></html>`;
}

function navLink({ method, path, id }: Operation): string {
  return `<a href="#${id}"><span class="muted">${escape(method.toUpperCase())}</span> ${escape(path)}</a>`;
}

function securityNote(doc: Obj): string {
  const schemes = Object.entries(obj(obj(doc.components).securitySchemes));
  if (schemes.length === 0) return "";
  const rows = schemes.map(([name, scheme]) => {
    const s = obj(scheme);
    return `<tr><td><code>${escape(name)}</code></td><td>${escape([text(s.type), text(s.scheme)].filter(Boolean).join(" "))}</td><td>${prose(text(s.description))}</td></tr>`;
  });
  return `<h2>Authentication</h2><table><tr><th>scheme</th><th>type</th><th></th></tr>${rows.join("")}</table>`;
}

function renderOperation({ method, path, op, id }: Operation): string {
  const security = list(op.security);
  const auth =
    op.security === undefined
      ? ""
      : security.length === 0
        ? `<p class="muted">Public: no key.</p>`
        : `<p class="muted">Needs ${security.map((req) => Object.keys(obj(req)).map((name) => `<code>${escape(name)}</code>`).join(" + ")).join(" or ")}.</p>`;
  const parameters = list(op.parameters).map(obj);
  const parameterTable =
    parameters.length === 0
      ? ""
      : `<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>${parameters
          .map(
            (p) =>
              `<tr><td><code>${escape(text(p.name) ?? "")}</code>${p.required === true ? ' <span class="req">required</span>' : ""}</td><td>${escape(text(p.in) ?? "")}</td><td>${schemaType(obj(p.schema))}</td><td>${prose(text(p.description))}${p.example === undefined ? "" : ` <span class="muted">e.g. <code>${escape(String(p.example))}</code></span>`}</td></tr>`,
          )
          .join("")}</table>`;
  const body = obj(op.requestBody);
  const bodyContent = Object.entries(obj(body.content));
  const bodyTable =
    bodyContent.length === 0
      ? ""
      : `<p><strong>Request body</strong>${body.required === true ? "" : ' <span class="muted">(optional)</span>'} ${prose(text(body.description))}</p><table><tr><th>media type</th><th>schema</th></tr>${bodyContent
          .map(([media, value]) => `<tr><td><code>${escape(media)}</code></td><td>${schemaDetail(obj(obj(value).schema))}</td></tr>`)
          .join("")}</table>`;
  const responses = Object.entries(obj(op.responses));
  const responseTable =
    responses.length === 0
      ? ""
      : `<p><strong>Responses</strong></p><table><tr><th>status</th><th>description</th><th>body</th></tr>${responses
          .map(([status, value]) => {
            const response = obj(value);
            const content = Object.entries(obj(response.content))
              .map(([media, media_]) => `<code>${escape(media)}</code> ${schemaType(obj(obj(media_).schema))}`)
              .join("<br>");
            return `<tr><td><code>${escape(status)}</code></td><td>${prose(text(response.description))}</td><td>${content}</td></tr>`;
          })
          .join("")}</table>`;
  return `<section class="op" id="${id}"><h3><span class="m m-${escape(method)}">${escape(method)}</span><code>${escape(path)}</code></h3>
<p><strong>${prose(text(op.summary))}</strong></p>${op.description ? `<p>${prose(text(op.description))}</p>` : ""}${auth}${parameterTable}${bodyTable}${responseTable}</section>`;
}

/** A one-line type: `string`, `integer 1–100`, `one of a, b`, a link to a named schema. */
function schemaType(schema: Obj): string {
  const ref = text(schema.$ref);
  if (ref !== undefined) {
    const name = ref.slice(ref.lastIndexOf("/") + 1);
    return `<a href="#schema-${anchor(name)}">${escape(name)}</a>`;
  }
  const variants = list(schema.anyOf).length > 0 ? list(schema.anyOf) : list(schema.oneOf);
  if (variants.length > 0) return variants.map((variant) => schemaType(obj(variant))).join(" | ");
  if (schema.const !== undefined) return `<code>${escape(JSON.stringify(schema.const))}</code>`;
  const enumValues = list(schema.enum);
  const types = Array.isArray(schema.type) ? schema.type.map(String) : text(schema.type) ? [String(schema.type)] : [];
  const parts: string[] = [];
  if (enumValues.length > 0) {
    parts.push(`one of ${enumValues.map((value) => `<code>${escape(String(value))}</code>`).join(", ")}`);
  } else if (types.includes("array")) {
    parts.push(`array of ${schemaType(obj(schema.items))}`);
  } else if (types.includes("object") && schema.additionalProperties !== undefined && Object.keys(obj(schema.properties)).length === 0) {
    parts.push(`object of ${schemaType(obj(schema.additionalProperties)) || "any"}`);
  } else {
    parts.push(escape(types.filter((type) => type !== "null").join(" | ") || (Object.keys(schema).length === 0 ? "any" : "object")));
  }
  const format = text(schema.format);
  if (format !== undefined) parts.push(`<span class="muted">(${escape(format)})</span>`);
  const min = typeof schema.minimum === "number" && schema.minimum > -Number.MAX_SAFE_INTEGER ? schema.minimum : undefined;
  const max = typeof schema.maximum === "number" && schema.maximum < Number.MAX_SAFE_INTEGER ? schema.maximum : undefined;
  if (min !== undefined || max !== undefined) parts.push(`<span class="muted">${min ?? "…"}–${max ?? "…"}</span>`);
  const pattern = text(schema.pattern);
  if (pattern !== undefined && pattern.length <= 80) parts.push(`<span class="muted">matching</span> <code>${escape(pattern)}</code>`);
  if (schema.default !== undefined) parts.push(`<span class="muted">default</span> <code>${escape(JSON.stringify(schema.default))}</code>`);
  if (types.includes("null")) parts.push(`<span class="muted">or null</span>`);
  return parts.join(" ");
}

/** A named reference, or an inline object's fields. */
function schemaDetail(schema: Obj): string {
  const properties = Object.entries(obj(schema.properties));
  if (properties.length === 0) return schemaType(schema);
  return propertyTable(properties, list(schema.required));
}

function propertyTable(properties: ReadonlyArray<readonly [string, unknown]>, required: readonly unknown[]): string {
  return `<table><tr><th>field</th><th>type</th><th>description</th></tr>${properties
    .map(([name, value]) => {
      const property = obj(value);
      return `<tr><td><code>${escape(name)}</code>${required.includes(name) ? ' <span class="req">required</span>' : ""}</td><td>${schemaType(property)}</td><td>${prose(text(property.description))}</td></tr>`;
    })
    .join("")}</table>`;
}

function renderSchema(name: string, schema: Obj): string {
  const properties = Object.entries(obj(schema.properties));
  const extra = schema.additionalProperties !== undefined && schema.additionalProperties !== false ? `<p class="muted">Other fields may appear.</p>` : "";
  return `<section class="op" id="schema-${anchor(name)}"><h3><code>${escape(name)}</code></h3>${schema.description ? `<p>${prose(text(schema.description))}</p>` : ""}${
    properties.length > 0 ? propertyTable(properties, list(schema.required)) : `<p>${schemaType(schema)}</p>`
  }${extra}</section>`;
}
