// SSRF: the URLs the service fetches (ingest jobs) or calls (webhooks) are checked, and so is
// every redirect target.
import { afterEach, describe, expect, it, vi } from "vitest";
import { ProblemError } from "../../src/errors";
import { checkOutboundUrl, fetchSource } from "../../src/jobs/outbound";

function refused(url: string): boolean {
  try {
    checkOutboundUrl(url, "urls", false);
    return false;
  } catch (error) {
    expect(error).toBeInstanceOf(ProblemError);
    expect((error as ProblemError).status).toBe(400);
    return true;
  }
}

describe("checkOutboundUrl", () => {
  it.each([
    "http://example.com/a.jpg",
    "ftp://example.com/a.jpg",
    "file:///etc/passwd",
    "data:image/png;base64,AAAA",
    "gopher://example.com/",
    "https://user:pass@example.com/a.jpg",
    "https://127.0.0.1/a.jpg",
    "https://127.1/a.jpg",
    "https://2130706433/a.jpg",
    "https://0x7f000001/a.jpg",
    "https://0177.0.0.1/a.jpg",
    "https://0.0.0.0/",
    "https://10.1.2.3/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/",
    "https://224.0.0.1/",
    "https://[::1]/",
    "https://[::]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::127.0.0.1]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[fd00::1]/",
    "https://[fe80::1]/",
    "https://localhost/",
    "https://localhost./",
    "https://LOCALHOST/",
    "https://api.localhost/",
    "https://printer.local/",
    "https://metadata.google.internal/",
    "https://intranet/",
    "not a url",
  ])("refuses %s", (url) => {
    expect(refused(url)).toBe(true);
  });

  it.each(["https://example.com/a.jpg", "https://images.example.org:8443/x?y=1", "https://8.8.8.8/a.png", "https://[2606:4700::1111]/a.png"])("allows %s", (url) => {
    expect(refused(url)).toBe(false);
  });

  it("allows http and loopback only with the local-tests switch", () => {
    expect(checkOutboundUrl("http://127.0.0.1:8080/a.jpg", "urls", true).href).toBe("http://127.0.0.1:8080/a.jpg");
  });
});

describe("fetchSource", () => {
  afterEach(() => vi.restoreAllMocks());

  it("re-checks every redirect target: a public URL redirecting to the metadata service is refused", async () => {
    const fetchMock = vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response(null, { status: 302, headers: { location: "http://169.254.169.254/latest/meta-data/" } }));
    await expect(fetchSource("https://images.example.com/a.jpg", 1000, false)).rejects.toMatchObject({ status: 400, code: "invalid-parameter" });
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it("follows at most 3 redirects and refuses non-200 answers", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response(null, { status: 301, headers: { location: "https://images.example.com/next" } }));
    await expect(fetchSource("https://images.example.com/a.jpg", 1000, false)).rejects.toMatchObject({ status: 422 });
    vi.restoreAllMocks();
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("nope", { status: 404 }));
    await expect(fetchSource("https://images.example.com/a.jpg", 1000, false)).rejects.toMatchObject({ status: 422 });
  });

  it("refuses a declared body over the size limit", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("x".repeat(10), { status: 200, headers: { "content-length": "5000" } }));
    await expect(fetchSource("https://images.example.com/a.jpg", 1000, false)).rejects.toMatchObject({ status: 413 });
  });
});
