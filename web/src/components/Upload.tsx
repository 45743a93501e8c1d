import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, type Api, type ImageJson, type JobJson } from "../api";
import { formatBytes, imagePath } from "../images";
import { Link } from "../router";
import { KeyValueRows, ProgressBar, rowsToRecord, type Row } from "./common";

/**
 * One request per file: the browser reports upload progress per request, so each file gets its
 * own bar, a rejected file fails alone with its own problem detail, and "retry failed" resends
 * only those. Three run at a time (HTTP/1.1 allows six per origin; the rest stay for the gallery).
 */
const CONCURRENCY = 3;

type ItemState = "ready" | "uploading" | "processing" | "done" | "error";

interface Item {
  readonly id: number;
  readonly file: File;
  state: ItemState;
  sent: number;
  error: string | null;
  image: ImageJson | null;
  note: string | null;
  job: { done: number; total: number } | null;
}

type Mode = "auto" | "sync" | "async";

const METADATA_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;
const VARIANT_NAME = /^[a-z0-9_-]{1,64}$/;

let nextItemId = 1;

const STATE_TEXT: Record<ItemState, string> = {
  ready: "Ready",
  uploading: "Uploading",
  processing: "Processing",
  done: "Stored",
  error: "Rejected",
};

export function Upload(props: { api: Api; onUnauthorized: (error: ApiError) => void }): JSX.Element {
  const [items, setItems] = useState<Item[]>([]);
  const [metadata, setMetadata] = useState<Row[]>([]);
  const [variants, setVariants] = useState<Row[]>([]);
  const [mode, setMode] = useState<Mode>("auto");
  const [dragging, setDragging] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const [running, setRunning] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  // The latest items, for the upload workers (which outlive a render).
  const itemsRef = useRef(items);
  itemsRef.current = items;
  const aborts = useRef(new Map<number, () => void>());
  const unmounted = useRef(new AbortController());
  useEffect(() => {
    const controller = unmounted.current;
    return () => {
      controller.abort();
      aborts.current.forEach((abort) => abort());
    };
  }, []);

  const patch = (id: number, change: Partial<Item>): void => {
    itemsRef.current = itemsRef.current.map((item) => (item.id === id ? { ...item, ...change } : item));
    setItems(itemsRef.current);
  };

  const addFiles = (files: Iterable<File>): void => {
    const added = Array.from(files, (file): Item => ({ id: nextItemId++, file, state: "ready", sent: 0, error: null, image: null, note: null, job: null }));
    if (added.length === 0) return;
    itemsRef.current = [...itemsRef.current, ...added];
    setItems(itemsRef.current);
  };

  const validate = (): string | null => {
    for (const row of metadata) {
      if (row.key.trim() !== "" && !METADATA_KEY.test(row.key.trim())) return `Metadata key "${row.key}" may only use letters, digits and _ . : - (up to 64).`;
    }
    for (const row of variants) {
      if (row.key.trim() === "" && row.value.trim() === "") continue;
      if (!VARIANT_NAME.test(row.key.trim())) return `Variant name "${row.key}" may only use a-z, 0-9, _ and - (up to 64).`;
      if (row.value.trim() === "") return `Variant ${row.key} needs transform parameters, e.g. w=400&fmt=auto.`;
    }
    return null;
  };

  const uploadOne = async (item: Item): Promise<void> => {
    patch(item.id, { state: "uploading", sent: 0, error: null, note: null, job: null });
    const upload = props.api.uploadFile(
      item.file,
      { metadata: rowsToRecord(metadata), variants: rowsToRecord(variants.filter((row) => row.value.trim() !== "")), mode },
      // Progress counts the whole multipart body; scale it to the file's own bytes.
      (sent, total) => patch(item.id, { sent: total > 0 ? Math.min(1, sent / total) * item.file.size : 0 }),
    );
    aborts.current.set(item.id, upload.abort);
    try {
      const { body } = await upload.promise;
      const image = body.images[0] ?? null;
      const note = image?.duplicate ? "Already stored (same bytes): the existing image." : null;
      if (body.job) {
        patch(item.id, { state: "processing", sent: item.file.size, image, note, job: { done: 0, total: body.job.total } });
        const job = await props.api.waitForJob(
          body.job.id,
          (update: JobJson) => patch(item.id, { job: { done: update.counts.succeeded + update.counts.failed, total: update.total } }),
          unmounted.current.signal,
        );
        const failed = job.state !== "succeeded";
        patch(item.id, { state: "done", note: failed ? `Stored, but variants failed (${job.state}).` : note });
      } else {
        patch(item.id, { state: "done", sent: item.file.size, image, note });
      }
    } catch (caught) {
      if (unmounted.current.signal.aborted) return;
      if (caught instanceof ApiError && caught.status === 401) props.onUnauthorized(caught);
      const message = caught instanceof Error ? caught.message : String(caught);
      patch(item.id, { state: "error", error: message });
    } finally {
      aborts.current.delete(item.id);
    }
  };

  const start = async (): Promise<void> => {
    const problem = validate();
    setFormError(problem);
    if (problem || running) return;
    setRunning(true);
    const queue = itemsRef.current.filter((item) => item.state === "ready");
    const worker = async (): Promise<void> => {
      for (let item = queue.shift(); item; item = queue.shift()) await uploadOne(item);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
    if (!unmounted.current.signal.aborted) setRunning(false);
  };

  const retryFailed = (): void => {
    itemsRef.current = itemsRef.current.map((item) => (item.state === "error" ? { ...item, state: "ready", sent: 0, error: null } : item));
    setItems(itemsRef.current);
    void start();
  };

  const ready = items.filter((item) => item.state === "ready").length;
  const failed = items.filter((item) => item.state === "error").length;
  const stored = items.filter((item) => item.state === "done").length;
  const active = items.filter((item) => item.state !== "ready");
  const totalBytes = active.reduce((sum, item) => sum + item.file.size, 0);
  const sentBytes = active.reduce((sum, item) => sum + (item.state === "error" ? item.file.size : Math.min(item.sent, item.file.size)), 0);
  const finished = active.length > 0 && active.every((item) => item.state === "done" || item.state === "error");

  return (
    <section aria-labelledby="upload-title">
      <div class="page-head">
        <h1 id="upload-title">Upload</h1>
        <Link class="button secondary" href="/">
          Gallery
        </Link>
      </div>

      <div class="upload-layout">
        <div class="upload-main">
          <div
            class={`dropzone ${dragging ? "is-dragging" : ""}`}
            onDragEnter={(event) => {
              event.preventDefault();
              setDragging(true);
            }}
            onDragOver={(event) => {
              event.preventDefault();
              if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
            }}
            onDragLeave={(event) => {
              if (!event.currentTarget.contains(event.relatedTarget as Node | null)) setDragging(false);
            }}
            onDrop={(event) => {
              event.preventDefault();
              setDragging(false);
              if (event.dataTransfer) addFiles(event.dataTransfer.files);
            }}
          >
            <p class="dropzone-text">Drop images here</p>
            <p class="hint">JPEG, PNG, GIF, WebP or AVIF, one or many.</p>
            <button type="button" onClick={() => input.current?.click()}>
              Choose files…
            </button>
            <input
              ref={input}
              id="file-input"
              class="visually-hidden"
              type="file"
              accept="image/*"
              multiple
              tabIndex={-1}
              aria-label="Choose image files"
              onChange={(event) => {
                const files = event.currentTarget.files;
                if (files) addFiles(files);
                event.currentTarget.value = "";
              }}
            />
          </div>

          {active.length > 0 ? (
            <div class="overall" aria-live="polite">
              <div class="overall-text">
                <span>
                  {stored} of {active.length} stored{failed > 0 ? `, ${failed} rejected` : ""}
                </span>
                <span>
                  {formatBytes(sentBytes)} / {formatBytes(totalBytes)}
                </span>
              </div>
              <ProgressBar label="Overall progress" value={totalBytes === 0 ? 0 : sentBytes / totalBytes} tone={finished ? (failed === 0 ? "ok" : stored === 0 ? "error" : "warn") : "busy"} />
            </div>
          ) : null}

          {items.length > 0 ? (
            <ul class="files" aria-label="Files">
              {items.map((item) => (
                <FileRow
                  key={item.id}
                  item={item}
                  onRemove={item.state === "ready" || item.state === "error" ? () => setItems((itemsRef.current = itemsRef.current.filter((other) => other.id !== item.id))) : undefined}
                />
              ))}
            </ul>
          ) : null}

          <div class="actions">
            <button type="button" onClick={() => void start()} disabled={ready === 0 || running}>
              {running ? "Uploading…" : ready > 0 ? `Upload ${ready} file${ready === 1 ? "" : "s"}` : "Upload"}
            </button>
            {failed > 0 && !running ? (
              <button type="button" class="secondary" onClick={retryFailed}>
                Retry failed ({failed})
              </button>
            ) : null}
            {finished && stored > 0 ? (
              <Link class="button secondary" href="/">
                View in gallery
              </Link>
            ) : null}
          </div>
          {formError ? (
            <p class="field-error" role="alert">
              {formError}
            </p>
          ) : null}
        </div>

        <div class="upload-options">
          <KeyValueRows
            legend="Metadata"
            hint="Applied to every file of this upload."
            rows={metadata}
            onChange={setMetadata}
            keyLabel="Metadata key"
            valueLabel="Metadata value"
            keyPlaceholder="album"
            valuePlaceholder="holidays"
            addLabel="Add metadata"
            idPrefix="meta"
          />
          <KeyValueRows
            legend="Variants"
            hint="Optional stored renditions, served at /i/ID/name."
            rows={variants}
            onChange={setVariants}
            keyLabel="Variant name"
            valueLabel="Variant parameters"
            keyPlaceholder="thumb"
            valuePlaceholder="w=400&h=400&fit=cover"
            addLabel="Add variant"
            idPrefix="variant"
          />
          <fieldset class="mode">
            <legend>Processing</legend>
            {(
              [
                ["auto", "Automatic", "sync for small uploads"],
                ["sync", "Synchronous", "variants are ready when the upload finishes"],
                ["async", "Asynchronous", "a job makes the variants"],
              ] as const
            ).map(([value, label, hint]) => (
              <label class="radio" key={value}>
                <input type="radio" name="mode" value={value} checked={mode === value} onChange={() => setMode(value)} />
                <span>
                  {label} <span class="hint">— {hint}</span>
                </span>
              </label>
            ))}
          </fieldset>
        </div>
      </div>
    </section>
  );
}

function FileRow(props: { item: Item; onRemove: (() => void) | undefined }): JSX.Element {
  const { item } = props;
  const fraction =
    item.state === "processing" && item.job
      ? item.job.total === 0
        ? null
        : item.job.done / item.job.total
      : item.state === "uploading"
        ? item.file.size === 0
          ? null
          : item.sent / item.file.size
        : item.state === "done" || item.state === "error"
          ? 1
          : 0;
  const status =
    item.state === "uploading"
      ? `Uploading ${Math.round((fraction ?? 0) * 100)}%`
      : item.state === "processing"
        ? `Processing variants${item.job ? ` ${item.job.done}/${item.job.total}` : ""}`
        : STATE_TEXT[item.state];
  return (
    <li class={`file is-${item.state}`} data-state={item.state} data-filename={item.file.name}>
      <div class="file-thumb" aria-hidden="true">
        {item.image ? <img src={imagePath(item.image.id, "w=96&h=96&fit=cover&fmt=auto")} width={48} height={48} alt="" /> : null}
      </div>
      <div class="file-body">
        <div class="file-line">
          <span class="file-name">
            {item.image ? <Link href={`/images/${item.image.id}`}>{item.file.name}</Link> : item.file.name}
          </span>
          <span class="file-size">{formatBytes(item.file.size)}</span>
        </div>
        <ProgressBar label={`${item.file.name} progress`} value={fraction} tone={item.state === "error" ? "error" : item.state === "done" ? "ok" : "busy"} />
        <div class="file-line">
          <span class="file-status" role={item.state === "error" ? "alert" : undefined}>
            {status}
            {item.error ? `: ${item.error}` : ""}
            {item.note ? ` — ${item.note}` : ""}
          </span>
          {props.onRemove ? (
            <button type="button" class="link small" onClick={props.onRemove} aria-label={`Remove ${item.file.name}`}>
              Remove
            </button>
          ) : null}
        </div>
      </div>
    </li>
  );
}
