import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, type Api, type ImageDetailJson } from "../api";
import { displayName, formatBytes, imgSnippet, pictureSnippet } from "../images";
import { Link, navigate } from "../router";
import { ConfirmDialog, CopyButton, ErrorNote, KeyValueRows, newRow, Picture, type Row } from "./common";

export function ImagePage(props: { api: Api; id: string; onUnauthorized: (error: ApiError) => void }): JSX.Element {
  const [image, setImage] = useState<ImageDetailJson | null>(null);
  const [error, setError] = useState<{ status: number; message: string } | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let current = true;
    setError(null);
    props.api.image(props.id).then(
      (loaded) => current && setImage(loaded),
      (caught: unknown) => {
        if (!current) return;
        if (caught instanceof ApiError && caught.status === 401) props.onUnauthorized(caught);
        setError({ status: caught instanceof ApiError ? caught.status : 0, message: caught instanceof Error ? caught.message : String(caught) });
      },
    );
    return () => {
      current = false;
    };
  }, [props.api, props.id, attempt]);

  if (error) {
    return (
      <section>
        <p>
          <Link href="/">← Images</Link>
        </p>
        {error.status === 404 ? (
          <div class="empty">
            <h1>Image not found</h1>
            <p>It may have been deleted.</p>
          </div>
        ) : (
          <ErrorNote message={`Could not load the image: ${error.message}`} onRetry={() => setAttempt((n) => n + 1)} />
        )}
      </section>
    );
  }
  if (!image || image.id !== props.id) {
    return (
      <p class="loading" role="status">
        Loading…
      </p>
    );
  }
  return <ImageDetail api={props.api} image={image} onChange={setImage} onUnauthorized={props.onUnauthorized} />;
}

function ImageDetail(props: { api: Api; image: ImageDetailJson; onChange: (image: ImageDetailJson) => void; onUnauthorized: (error: ApiError) => void }): JSX.Element {
  const { image, api } = props;
  const [snippetKind, setSnippetKind] = useState<"img" | "picture">("img");
  const [confirming, setConfirming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [deleteError, setDeleteError] = useState<string | null>(null);
  const origin = location.origin;
  const snippet = snippetKind === "img" ? imgSnippet(image, origin) : pictureSnippet(image, origin);

  const remove = async (): Promise<void> => {
    setDeleting(true);
    try {
      await api.deleteImage(image.id);
      navigate("/", { replace: true });
    } catch (caught) {
      if (caught instanceof ApiError && caught.status === 401) props.onUnauthorized(caught);
      setDeleteError(caught instanceof Error ? caught.message : String(caught));
      setDeleting(false);
      setConfirming(false);
    }
  };

  return (
    <section class="detail" aria-labelledby="detail-title">
      <div class="page-head">
        <div>
          <p class="crumbs">
            <Link href="/">← Images</Link>
          </p>
          <h1 id="detail-title" class="truncate">
            {displayName(image)}
          </h1>
        </div>
        <div class="head-actions">
          <Link class="button" href={`/images/${image.id}/edit`}>
            Edit / transform
          </Link>
          <button type="button" class="danger" onClick={() => setConfirming(true)}>
            Delete
          </button>
        </div>
      </div>
      {deleteError ? <ErrorNote message={`Could not delete: ${deleteError}`} /> : null}

      <div class="detail-layout">
        <div class="detail-image">
          <Picture image={image} alt={image.metadata["alt"] ?? displayName(image)} sizes="(max-width: 900px) 100vw, 60vw" eager class="contain" />
        </div>
        <div class="detail-side">
          <dl class="facts">
            <dt>Dimensions</dt>
            <dd>
              {image.width} × {image.height} px
            </dd>
            <dt>Format</dt>
            <dd>
              {image.format.toUpperCase()}
              {image.frames > 1 ? `, ${image.frames} frames` : ""}
              {image.hasAlpha ? ", alpha" : ""}
            </dd>
            <dt>Size</dt>
            <dd>{formatBytes(image.bytes)}</dd>
            <dt>Uploaded</dt>
            <dd>
              <time dateTime={image.createdAt}>{new Date(image.createdAt).toLocaleString()}</time>
            </dd>
            {image.orientation > 1 ? (
              <>
                <dt>EXIF orientation</dt>
                <dd>{image.orientation} (applied)</dd>
              </>
            ) : null}
            <dt>Id</dt>
            <dd>
              <code>{image.id}</code>
            </dd>
            <dt>URL</dt>
            <dd class="url-line">
              <a href={image.url} target="_blank" rel="noopener" class="truncate">
                {image.url}
              </a>
              <CopyButton text={image.url} aria-label="Copy image URL" />
            </dd>
          </dl>

          <MetadataEditor key={image.id} api={api} image={image} onSaved={(updated) => props.onChange({ ...image, ...updated })} />

          <section aria-labelledby="variants-title">
            <h2 id="variants-title">Variants</h2>
            {image.variants.length === 0 ? (
              <p class="hint">No stored variants. Add one from the editor, or at upload.</p>
            ) : (
              <ul class="variants">
                {image.variants.map((variant) => (
                  <li key={variant.name}>
                    <div class="variant-head">
                      <a href={variant.url} target="_blank" rel="noopener">
                        <strong>{variant.name}</strong>
                      </a>
                      <span class={`badge ${variant.state}`}>{variant.state}</span>
                    </div>
                    <code class="params">{variant.params}</code>
                    <span class="hint">
                      {variant.width && variant.height ? `${variant.width} × ${variant.height}` : ""}
                      {variant.format ? ` · ${variant.format.toUpperCase()}` : ""}
                      {variant.bytes ? ` · ${formatBytes(variant.bytes)}` : ""}
                      {variant.error ? ` · ${variant.error}` : ""}
                    </span>
                  </li>
                ))}
              </ul>
            )}
          </section>

          <section aria-labelledby="snippet-title">
            <div class="snippet-head">
              <h2 id="snippet-title">Embed</h2>
              <div class="segmented" role="group" aria-label="Snippet kind">
                <button type="button" aria-pressed={snippetKind === "img"} onClick={() => setSnippetKind("img")}>
                  &lt;img&gt;
                </button>
                <button type="button" aria-pressed={snippetKind === "picture"} onClick={() => setSnippetKind("picture")}>
                  &lt;picture&gt;
                </button>
              </div>
            </div>
            <label class="visually-hidden" for="snippet">
              HTML snippet
            </label>
            <textarea id="snippet" class="code" readOnly rows={snippetKind === "img" ? 6 : 9} value={snippet} spellcheck={false} />
            <CopyButton text={snippet} label="Copy snippet" />
          </section>
        </div>
      </div>

      <ConfirmDialog
        open={confirming}
        title="Delete this image?"
        body={
          <p>
            <strong>{displayName(image)}</strong>, its variants and every cached rendition will be removed. Its URLs stop working. This cannot be undone.
          </p>
        }
        confirmLabel={deleting ? "Deleting…" : "Delete image"}
        busy={deleting}
        onConfirm={() => void remove()}
        onCancel={() => setConfirming(false)}
      />
    </section>
  );
}

function MetadataEditor(props: { api: Api; image: ImageDetailJson; onSaved: (image: ImageDetailJson) => void }): JSX.Element {
  const initial = (): Row[] => Object.entries(props.image.metadata).map(([key, value]) => newRow(key, value));
  const [rows, setRows] = useState<Row[]>(initial);
  const [state, setState] = useState<{ kind: "idle" | "saving" | "saved" } | { kind: "error"; message: string }>({ kind: "idle" });

  const save = async (event: Event): Promise<void> => {
    event.preventDefault();
    const next: Record<string, string> = {};
    for (const row of rows) {
      const key = row.key.trim();
      if (key === "") continue;
      if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(key)) {
        setState({ kind: "error", message: `"${key}" is not a metadata key (letters, digits, _ . : -, up to 64).` });
        return;
      }
      next[key] = row.value;
    }
    // JSON merge patch: changed and new keys with their values, removed keys as null.
    const patch: Record<string, string | null> = {};
    for (const [key, value] of Object.entries(next)) if (props.image.metadata[key] !== value) patch[key] = value;
    for (const key of Object.keys(props.image.metadata)) if (!(key in next)) patch[key] = null;
    if (Object.keys(patch).length === 0) {
      setState({ kind: "saved" });
      return;
    }
    setState({ kind: "saving" });
    try {
      const updated = await props.api.patchMetadata(props.image.id, patch);
      props.onSaved({ ...props.image, ...updated });
      setRows(Object.entries(updated.metadata).map(([key, value]) => newRow(key, value)));
      setState({ kind: "saved" });
    } catch (caught) {
      setState({ kind: "error", message: caught instanceof Error ? caught.message : String(caught) });
    }
  };

  return (
    <form class="metadata" onSubmit={(event) => void save(event)}>
      <KeyValueRows
        legend="Metadata"
        rows={rows}
        onChange={(changed) => {
          setRows(changed);
          setState({ kind: "idle" });
        }}
        keyLabel="Metadata key"
        valueLabel="Metadata value"
        keyPlaceholder="key"
        valuePlaceholder="value"
        addLabel="Add field"
        idPrefix="detail-meta"
        hint={rows.length === 0 ? "No metadata yet." : undefined}
      />
      <div class="actions">
        <button type="submit" disabled={state.kind === "saving"}>
          {state.kind === "saving" ? "Saving…" : "Save metadata"}
        </button>
        <span role="status" class={state.kind === "error" ? "field-error" : "hint"}>
          {state.kind === "saved" ? "Saved." : state.kind === "error" ? state.message : ""}
        </span>
      </div>
    </form>
  );
}
