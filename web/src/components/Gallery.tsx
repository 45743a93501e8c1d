import type { JSX } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, type Api, type ImageJson } from "../api";
import { displayName } from "../images";
import { Link, navigate } from "../router";
import { ErrorNote, Picture } from "./common";

const PAGE_SIZE = 30;

interface Filters {
  readonly name: string;
  readonly meta: string;
}

/** `album=holidays, people=ann` -> pairs; null (with a message) when a part has no `=`. */
export function parseMetadataFilter(text: string): { pairs: Array<[string, string]>; error: string | null } {
  const pairs: Array<[string, string]> = [];
  for (const part of text.split(",")) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const eq = trimmed.indexOf("=");
    if (eq <= 0) return { pairs, error: `"${trimmed}" is not key=value.` };
    const key = trimmed.slice(0, eq).trim();
    if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(key)) return { pairs, error: `"${key}" is not a metadata key (letters, digits, _ . : -).` };
    pairs.push([key, trimmed.slice(eq + 1).trim()]);
  }
  return { pairs, error: null };
}

function filtersFrom(search: string): Filters {
  const params = new URLSearchParams(search);
  return { name: params.get("name") ?? "", meta: params.get("meta") ?? "" };
}

/** Aspect ratio used for layout, bounded so panoramas and slivers stay usable tiles. */
const layoutRatio = (image: ImageJson): number => Math.min(3, Math.max(0.6, image.width / image.height));

export function Gallery(props: { api: Api; search: string; onUnauthorized: (error: ApiError) => void }): JSX.Element {
  const filters = filtersFrom(props.search);
  const [name, setName] = useState(filters.name);
  const [meta, setMeta] = useState(filters.meta);
  const [images, setImages] = useState<ImageJson[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [status, setStatus] = useState<"loading" | "idle" | "done" | "error">("loading");
  const [error, setError] = useState<string | null>(null);
  const [filterError, setFilterError] = useState<string | null>(null);
  const generation = useRef(0);
  const sentinel = useRef<HTMLDivElement>(null);

  const load = useCallback(
    async (reset: boolean, after: string | null) => {
      const { pairs, error: metaError } = parseMetadataFilter(filters.meta);
      if (metaError) {
        setFilterError(metaError);
        setStatus("done");
        return;
      }
      const mine = reset ? ++generation.current : generation.current;
      setStatus("loading");
      setError(null);
      try {
        const page = await props.api.listImages({ limit: PAGE_SIZE, cursor: after, filenamePrefix: filters.name.trim(), metadata: pairs });
        if (mine !== generation.current) return;
        setImages((previous) => (reset ? page.images : [...previous, ...page.images]));
        setCursor(page.nextCursor);
        setStatus(page.nextCursor ? "idle" : "done");
      } catch (caught) {
        if (mine !== generation.current) return;
        if (caught instanceof ApiError && caught.status === 401) props.onUnauthorized(caught);
        setError(caught instanceof Error ? caught.message : String(caught));
        setStatus("error");
      }
    },
    [props.api, filters.name, filters.meta],
  );

  useEffect(() => {
    setName(filters.name);
    setMeta(filters.meta);
    setImages([]);
    setCursor(null);
    setFilterError(null);
    void load(true, null);
  }, [load]);

  // Infinite scroll: load the next page when the sentinel comes near the viewport.
  useEffect(() => {
    const element = sentinel.current;
    if (!element || status !== "idle" || !cursor) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) void load(false, cursor);
    }, { rootMargin: "600px 0px" });
    observer.observe(element);
    return () => observer.disconnect();
  }, [status, cursor, load]);

  const searching = filters.name !== "" || filters.meta !== "";

  const onSubmit = (event: Event): void => {
    event.preventDefault();
    const { error: metaError } = parseMetadataFilter(meta);
    setFilterError(metaError);
    if (metaError) return;
    const params = new URLSearchParams();
    if (name.trim()) params.set("name", name.trim());
    if (meta.trim()) params.set("meta", meta.trim());
    const query = params.toString();
    navigate(query ? `/?${query}` : "/", { replace: true });
  };

  return (
    <section aria-labelledby="gallery-title">
      <div class="page-head">
        <h1 id="gallery-title">Images</h1>
        <Link class="button" href="/upload">
          Upload
        </Link>
      </div>
      <form class="search" role="search" onSubmit={onSubmit}>
        <div class="field">
          <label for="search-name">File name starts with</label>
          <input id="search-name" type="search" value={name} placeholder="IMG_" autocomplete="off" onInput={(event) => setName(event.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="search-meta">Metadata</label>
          <input
            id="search-meta"
            type="search"
            value={meta}
            placeholder="album=holidays, people=ann"
            autocomplete="off"
            aria-describedby={filterError ? "search-meta-error" : undefined}
            aria-invalid={filterError ? true : undefined}
            onInput={(event) => setMeta(event.currentTarget.value)}
          />
        </div>
        <div class="search-actions">
          <button type="submit">Search</button>
          {searching ? (
            <button type="button" class="secondary" onClick={() => navigate("/", { replace: true })}>
              Clear
            </button>
          ) : null}
        </div>
        {filterError ? (
          <p id="search-meta-error" class="field-error" role="alert">
            {filterError}
          </p>
        ) : null}
      </form>

      {status === "error" && error ? <ErrorNote message={`Could not load images: ${error}`} onRetry={() => void load(images.length === 0, images.length === 0 ? null : cursor)} /> : null}

      {images.length === 0 && status === "done" && !filterError ? (
        searching ? (
          <div class="empty">
            <p>No image matches this search.</p>
          </div>
        ) : (
          <div class="empty">
            <p>No images yet.</p>
            <Link class="button" href="/upload">
              Upload your first images
            </Link>
          </div>
        )
      ) : null}

      {images.length > 0 ? (
        <ul class="grid" aria-label="Images" aria-busy={status === "loading"}>
          {images.map((image) => {
            const ratio = layoutRatio(image);
            return (
              <li class="tile" key={image.id} style={{ flexGrow: Math.round(ratio * 100), flexBasis: `calc(${ratio.toFixed(3)} * var(--row-h))` }}>
                <Link href={`/images/${image.id}`} class="tile-link" aria-label={`${displayName(image)}, ${image.width} × ${image.height}`}>
                  <Picture image={image} ratio={ratio} alt="" sizes={`(max-width: 600px) ${Math.min(100, Math.round(ratio * 45))}vw, ${Math.round(ratio * 260)}px`} />
                  <span class="tile-caption">{displayName(image)}</span>
                </Link>
              </li>
            );
          })}
          <li class="grid-filler" aria-hidden="true" />
        </ul>
      ) : null}

      {status === "loading" ? (
        <p class="loading" role="status">
          Loading…
        </p>
      ) : null}
      <div ref={sentinel} class="sentinel" />
      {status === "idle" && cursor ? (
        <div class="more">
          <button type="button" class="secondary" onClick={() => void load(false, cursor)}>
            Load more
          </button>
        </div>
      ) : null}
    </section>
  );
}
