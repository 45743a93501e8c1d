import type { ComponentChildren, CSSProperties, JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { ImageJson } from "../api";
import { placeholderUrl, srcset } from "../images";

/**
 * An image in a box of its own aspect ratio (known from the API), so nothing moves when it
 * loads: the ThumbHash (or a neutral tint) shows until the real pixels fade in.
 */
export function Picture(props: {
  image: ImageJson;
  sizes: string;
  alt: string;
  class?: string;
  /** Extra transform parameters for every srcset entry (e.g. `&h=..&fit=cover`). */
  extra?: string;
  eager?: boolean;
  /** Box aspect ratio, when it differs from the image's (the image then covers the box). */
  ratio?: number;
}): JSX.Element {
  const { image } = props;
  const [loaded, setLoaded] = useState(false);
  const [failed, setFailed] = useState(false);
  const placeholder = placeholderUrl(image);
  const ratio = props.ratio ?? image.width / image.height;
  const style: CSSProperties = { aspectRatio: String(ratio) };
  if (placeholder) style.backgroundImage = `url("${placeholder}")`;
  return (
    <div class={`frame ${props.class ?? ""} ${image.hasAlpha ? "has-alpha" : ""} ${loaded ? "is-loaded" : ""} ${failed ? "is-failed" : ""}`} style={style}>
      <img
        srcset={srcset(image, props.extra ?? "")}
        sizes={props.sizes}
        width={image.width}
        height={image.height}
        alt={props.alt}
        loading={props.eager ? "eager" : "lazy"}
        decoding="async"
        onLoad={() => setLoaded(true)}
        onError={() => setFailed(true)}
      />
    </div>
  );
}

export interface Row {
  readonly id: number;
  key: string;
  value: string;
}

let nextRowId = 1;
export const newRow = (key = "", value = ""): Row => ({ id: nextRowId++, key, value });

export const rowsToRecord = (rows: readonly Row[]): Record<string, string> =>
  Object.fromEntries(rows.filter((row) => row.key.trim() !== "").map((row) => [row.key.trim(), row.value]));

/** Editable key/value rows with add and remove buttons; every input has a label. */
export function KeyValueRows(props: {
  legend: string;
  rows: readonly Row[];
  onChange: (rows: Row[]) => void;
  keyLabel: string;
  valueLabel: string;
  keyPlaceholder?: string;
  valuePlaceholder?: string;
  addLabel: string;
  hint?: ComponentChildren;
  idPrefix: string;
}): JSX.Element {
  const update = (id: number, patch: Partial<Row>): void => props.onChange(props.rows.map((row) => (row.id === id ? { ...row, ...patch } : row)));
  return (
    <fieldset class="kv">
      <legend>{props.legend}</legend>
      {props.hint ? <p class="hint">{props.hint}</p> : null}
      {props.rows.map((row, index) => (
        <div class="kv-row" key={row.id}>
          <label class="visually-hidden" for={`${props.idPrefix}-k-${row.id}`}>
            {props.keyLabel} {index + 1}
          </label>
          <input
            id={`${props.idPrefix}-k-${row.id}`}
            value={row.key}
            placeholder={props.keyPlaceholder}
            autocomplete="off"
            spellcheck={false}
            onInput={(event) => update(row.id, { key: event.currentTarget.value })}
          />
          <label class="visually-hidden" for={`${props.idPrefix}-v-${row.id}`}>
            {props.valueLabel} {index + 1}
          </label>
          <input
            id={`${props.idPrefix}-v-${row.id}`}
            value={row.value}
            placeholder={props.valuePlaceholder}
            autocomplete="off"
            spellcheck={false}
            onInput={(event) => update(row.id, { value: event.currentTarget.value })}
          />
          <button
            type="button"
            class="icon"
            aria-label={`Remove ${props.keyLabel.toLowerCase()} ${row.key || index + 1}`}
            onClick={() => props.onChange(props.rows.filter((other) => other.id !== row.id))}
          >
            ×
          </button>
        </div>
      ))}
      <button type="button" class="secondary small" onClick={() => props.onChange([...props.rows, newRow()])}>
        {props.addLabel}
      </button>
    </fieldset>
  );
}

/** A labelled <progress>; indeterminate when value is null. */
export function ProgressBar(props: { label: string; value: number | null; max?: number; tone?: "ok" | "warn" | "error" | "busy" }): JSX.Element {
  return (
    <progress
      class={`bar ${props.tone ?? ""}`}
      aria-label={props.label}
      max={props.max ?? 1}
      {...(props.value === null ? {} : { value: props.value })}
    />
  );
}

/** A copy-to-clipboard button that says "Copied" for a moment. */
export function CopyButton(props: { text: string; label?: string; class?: string; "aria-label"?: string }): JSX.Element {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const timer = useRef<number>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  return (
    <button
      type="button"
      class={props.class ?? "secondary small"}
      aria-label={props["aria-label"]}
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(props.text);
          setState("copied");
        } catch {
          setState("failed");
        }
        window.clearTimeout(timer.current);
        timer.current = window.setTimeout(() => setState("idle"), 1600);
      }}
    >
      <span aria-live="polite">{state === "copied" ? "Copied" : state === "failed" ? "Copy failed" : (props.label ?? "Copy")}</span>
    </button>
  );
}

export function ErrorNote(props: { message: string; onRetry?: () => void }): JSX.Element {
  return (
    <div class="note error" role="alert">
      <p>{props.message}</p>
      {props.onRetry ? (
        <button type="button" class="secondary small" onClick={props.onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

/** A modal confirmation built on <dialog> (focus is trapped and Escape cancels natively). */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  body: ComponentChildren;
  confirmLabel: string;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}): JSX.Element {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  }, [props.open]);
  return (
    <dialog ref={ref} class="dialog" aria-labelledby="confirm-title" onCancel={(event) => (event.preventDefault(), props.onCancel())}>
      <h2 id="confirm-title">{props.title}</h2>
      <div>{props.body}</div>
      <div class="actions">
        <button type="button" class="secondary" onClick={props.onCancel} autofocus>
          Cancel
        </button>
        <button type="button" class="danger" onClick={props.onConfirm} disabled={props.busy}>
          {props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}
