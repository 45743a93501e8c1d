import type { CSSProperties, JSX, TargetedKeyboardEvent, TargetedMouseEvent, TargetedPointerEvent } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, problemMessage, type Api, type ImageJson } from "../api";
import { CORNERS, EDGES, moveCrop, resizeCrop, type Handle } from "../crop";
import { displayName, formatBytes, imagePath, placeholderUrl } from "../images";
import { Link } from "../router";
import {
  clampCrop,
  DEFAULT_STATE,
  fitAspect,
  FITS,
  fromQuery,
  fromRotated,
  gravityPoint,
  isFullCrop,
  outputGeometry,
  toQuery,
  toRotated,
  WM_POSITIONS,
  type EditorState,
  type FormatChoice,
  type GravityChoice,
  type Rect,
  type Rotation,
} from "../transform";
import { CopyButton, ErrorNote } from "./common";

/** The rendition the editor works on: big enough to judge, small enough to drag smoothly. */
const WORKING_SIZE = 1200;

/** Crop aspect presets; numbers are width / height of the output (after rotation). */
const ASPECTS: ReadonlyArray<readonly [label: string, ratio: number | "original" | null]> = [
  ["Free", null],
  ["Original", "original"],
  ["1:1", 1],
  ["4:3", 4 / 3],
  ["3:2", 3 / 2],
  ["16:9", 16 / 9],
  ["3:4", 3 / 4],
  ["9:16", 9 / 16],
];

const GRAVITY_LABELS: Readonly<Record<GravityChoice, string>> = {
  center: "Centre",
  top: "Top",
  bottom: "Bottom",
  left: "Left",
  right: "Right",
  "top-left": "Top left",
  "top-right": "Top right",
  "bottom-left": "Bottom left",
  "bottom-right": "Bottom right",
  auto: "Automatic (content)",
  focal: "Focal point",
};

const FORMAT_LABELS: Readonly<Record<FormatChoice, string>> = {
  "": "Same as original",
  auto: "Auto (AVIF/WebP)",
  jpeg: "JPEG",
  png: "PNG",
  webp: "WebP",
  avif: "AVIF",
};

interface ServerResult {
  readonly objectUrl: string;
  readonly requestUrl: string;
  readonly bytes: number;
  readonly contentType: string;
  readonly ms: number;
  width: number;
  height: number;
}

export function EditorPage(props: { api: Api; id: string; search: string; onUnauthorized: (error: ApiError) => void }): JSX.Element {
  const [image, setImage] = useState<ImageJson | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    props.api.image(props.id).then(
      (loaded) => current && setImage(loaded),
      (caught: unknown) => {
        if (!current) return;
        if (caught instanceof ApiError && caught.status === 401) props.onUnauthorized(caught);
        setError(caught instanceof Error ? caught.message : String(caught));
      },
    );
    return () => {
      current = false;
    };
  }, [props.api, props.id]);
  if (error) return <ErrorNote message={`Could not load the image: ${error}`} />;
  if (!image) {
    return (
      <p class="loading" role="status">
        Loading…
      </p>
    );
  }
  return <Editor api={props.api} image={image} initialQuery={props.search} />;
}

type Tool = "crop" | "focal";

function Editor(props: { api: Api; image: ImageJson; initialQuery: string }): JSX.Element {
  const { api, image } = props;
  const source = { width: image.width, height: image.height };
  const [state, setState] = useState<EditorState>(() => fromQuery(props.initialQuery, source));
  const [aspect, setAspect] = useState("Free");
  const [tool, setTool] = useState<Tool>("crop");
  const [working, setWorking] = useState<HTMLImageElement | null>(null);
  const [watermarks, setWatermarks] = useState<ImageJson[]>([]);
  const [wmImage, setWmImage] = useState<HTMLImageElement | null>(null);
  const [result, setResult] = useState<ServerResult | null>(null);
  const [applyState, setApplyState] = useState<{ kind: "idle" | "loading" } | { kind: "error"; message: string }>({ kind: "idle" });

  const update = (change: Partial<EditorState>): void => setState((previous) => ({ ...previous, ...change }));
  const query = toQuery(state, source);
  const path = imagePath(image.id, query);
  const absoluteUrl = `${location.origin}${path}`;
  const geometry = useMemo(() => outputGeometry(state, source), [state, image.width, image.height]);

  // Keep the editor's URL in the address bar (debounced), so a reload or a shared link reopens it.
  useEffect(() => {
    const timer = window.setTimeout(() => {
      const next = `/images/${image.id}/edit${query ? `?${query}` : ""}`;
      if (location.pathname + location.search !== next) history.replaceState(null, "", next);
    }, 400);
    return () => window.clearTimeout(timer);
  }, [query, image.id]);

  // The tenant's other images, for the watermark picker.
  useEffect(() => {
    let current = true;
    api.listImages({ limit: 100 }).then(
      (page) => current && setWatermarks(page.images.filter((other) => other.id !== image.id)),
      () => undefined,
    );
    return () => {
      current = false;
    };
  }, [api, image.id]);

  useEffect(() => {
    if (!state.wm) {
      setWmImage(null);
      return;
    }
    const element = new Image();
    element.decoding = "async";
    element.onload = () => setWmImage(element);
    element.onerror = () => setWmImage(null);
    element.src = imagePath(state.wm, "w=800&fmt=auto");
  }, [state.wm]);

  useEffect(() => () => void (result && URL.revokeObjectURL(result.objectUrl)), [result]);

  /** The locked crop ratio in source pixels: "Original" is the image's; presets are about the output, so rotation swaps them. */
  const sourceRatio = (label: string, rot: Rotation = state.rot): number | null => {
    const ratio = ASPECTS.find(([name]) => name === label)?.[1] ?? null;
    if (ratio === null) return null;
    if (ratio === "original") return image.width / image.height;
    return rot === 90 || rot === 270 ? 1 / ratio : ratio;
  };

  const chooseAspect = (label: string): void => {
    setAspect(label);
    const ratio = sourceRatio(label);
    const within = state.crop ?? { x: 0, y: 0, width: image.width, height: image.height };
    if (ratio !== null) update({ crop: clampCrop(fitAspect(within, ratio), image.width, image.height) });
  };

  const rotate = (by: 90 | -90): void => {
    const rot = (((state.rot + by) % 360) + 360) % 360 as Rotation;
    let crop = state.crop;
    // A locked aspect is about the output: re-fit the crop to the turned axes.
    const srcRatio = sourceRatio(aspect, rot);
    if (srcRatio !== null && state.crop) {
      const centre = { x: state.crop.x + state.crop.width / 2, y: state.crop.y + state.crop.height / 2 };
      const full = { x: 0, y: 0, width: image.width, height: image.height };
      const fitted = fitAspect(full, srcRatio);
      const scale = Math.min(1, Math.sqrt((state.crop.width * state.crop.height) / (fitted.width * fitted.height)));
      crop = clampCrop(
        { x: centre.x - (fitted.width * scale) / 2, y: centre.y - (fitted.height * scale) / 2, width: fitted.width * scale, height: fitted.height * scale },
        image.width,
        image.height,
      );
    }
    update({ rot, crop });
  };

  const apply = async (): Promise<void> => {
    setApplyState({ kind: "loading" });
    const started = performance.now();
    try {
      // What an <img> sends, so fmt=auto negotiates as it will on a page.
      const response = await fetch(path, { headers: { accept: "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8" } });
      if (!response.ok) {
        const text = await response.text();
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        throw new ApiError(response.status, problemMessage(body, response.status));
      }
      const blob = await response.blob();
      const objectUrl = URL.createObjectURL(blob);
      const dimensions = await new Promise<{ width: number; height: number }>((resolve) => {
        const probe = new Image();
        probe.onload = () => resolve({ width: probe.naturalWidth, height: probe.naturalHeight });
        probe.onerror = () => resolve({ width: 0, height: 0 });
        probe.src = objectUrl;
      });
      setResult({
        objectUrl,
        requestUrl: path,
        bytes: blob.size,
        contentType: response.headers.get("content-type") ?? blob.type,
        ms: performance.now() - started,
        ...dimensions,
      });
      setApplyState({ kind: "idle" });
    } catch (caught) {
      setApplyState({ kind: "error", message: caught instanceof Error ? caught.message : String(caught) });
    }
  };

  const reset = (): void => {
    setState(DEFAULT_STATE);
    setAspect("Free");
  };

  return (
    <section class="editor" aria-labelledby="editor-title">
      <div class="page-head">
        <div>
          <p class="crumbs">
            <Link href={`/images/${image.id}`}>← {displayName(image)}</Link>
          </p>
          <h1 id="editor-title">Transform</h1>
        </div>
        <div class="head-actions">
          <button type="button" class="secondary" onClick={reset}>
            Reset
          </button>
        </div>
      </div>

      <div class="editor-layout">
        <div class="editor-main">
          <div class="toolbar" role="radiogroup" aria-label="Tool">
            {(
              [
                ["crop", "Crop"],
                ["focal", "Focal point"],
              ] as const
            ).map(([value, label]) => (
              <label class={`chip ${tool === value ? "is-on" : ""}`} key={value}>
                <input type="radio" name="tool" value={value} checked={tool === value} onChange={() => setTool(value)} />
                {label}
              </label>
            ))}
            <span class="hint toolbar-hint">
              {tool === "crop" ? "Drag the box or its corners; arrow keys move it (Shift: 10×)." : "Click the image where the subject is."}
            </span>
          </div>
          <CropStage
            image={image}
            state={state}
            tool={tool}
            ratio={sourceRatio(aspect)}
            onCrop={(crop) => update({ crop })}
            onFocal={(focal) => update({ focal, gravity: "focal" })}
            onWorkingImage={setWorking}
          />

          <div class="previews">
            <section class="preview-panel" aria-labelledby="preview-title">
              <h2 id="preview-title">Preview</h2>
              <p class="hint" data-testid="predicted-size">
                Output {geometry.canvasWidth} × {geometry.canvasHeight} px
                {state.sharpen > 0 ? " · sharpen shows after Apply" : ""}
              </p>
              <PreviewCanvas working={working} image={image} state={state} wm={wmImage} />
            </section>
            <section class="preview-panel" aria-labelledby="result-title">
              <h2 id="result-title">Server result</h2>
              {result ? (
                <>
                  <p class="hint" data-testid="result-facts">
                    {result.width} × {result.height} px · {result.contentType.replace("image/", "").toUpperCase()} · {formatBytes(result.bytes)} · {Math.round(result.ms)} ms
                    {result.requestUrl !== path ? " · settings changed since" : ""}
                  </p>
                  <div class="result-box">
                    <img src={result.objectUrl} alt="The transformed image as the server returned it" width={result.width} height={result.height} />
                  </div>
                </>
              ) : (
                <p class="hint">Apply to fetch the real image from the transform URL.</p>
              )}
              {applyState.kind === "error" ? <ErrorNote message={applyState.message} /> : null}
            </section>
          </div>
        </div>

        <div class="editor-side">
          <div class="urlbar">
            <label for="transform-url">Transform URL</label>
            <input id="transform-url" class="code" readOnly value={absoluteUrl} onFocus={(event) => event.currentTarget.select()} />
            <div class="actions">
              <button type="button" onClick={() => void apply()} disabled={applyState.kind === "loading"}>
                {applyState.kind === "loading" ? "Applying…" : "Apply"}
              </button>
              <CopyButton text={absoluteUrl} label="Copy URL" />
            </div>
          </div>
          <Controls state={state} update={update} image={image} aspect={aspect} chooseAspect={chooseAspect} rotate={rotate} watermarks={watermarks} />
          <SaveActions api={api} image={image} query={query} />
        </div>
      </div>
    </section>
  );
}

function Controls(props: {
  state: EditorState;
  update: (change: Partial<EditorState>) => void;
  image: ImageJson;
  aspect: string;
  chooseAspect: (label: string) => void;
  rotate: (by: 90 | -90) => void;
  watermarks: readonly ImageJson[];
}): JSX.Element {
  const { state, update, image } = props;
  const crop = state.crop ?? { x: 0, y: 0, width: image.width, height: image.height };
  const setCrop = (field: keyof Rect, value: number): void => {
    if (!Number.isFinite(value)) return;
    update({ crop: clampCrop({ ...crop, [field]: value }, image.width, image.height) });
  };
  const optionalInt = (text: string): number | null => (text.trim() === "" || !(Number(text) >= 1) ? null : Math.round(Number(text)));

  return (
    <div class="controls">
      <fieldset>
        <legend>Crop</legend>
        <div class="chips" role="group" aria-label="Aspect ratio">
          {ASPECTS.map(([label]) => (
            <button type="button" class="chip" key={label} aria-pressed={props.aspect === label} onClick={() => props.chooseAspect(label)}>
              {label}
            </button>
          ))}
        </div>
        <div class="grid4">
          {(["x", "y", "width", "height"] as const).map((field) => (
            <div class="field" key={field}>
              <label for={`crop-${field}`}>{field === "x" ? "X" : field === "y" ? "Y" : field === "width" ? "Width" : "Height"}</label>
              <input
                id={`crop-${field}`}
                type="number"
                inputMode="numeric"
                min={field === "width" || field === "height" ? 1 : 0}
                max={field === "x" || field === "width" ? image.width : image.height}
                value={crop[field]}
                onChange={(event) => setCrop(field, Number(event.currentTarget.value))}
              />
            </div>
          ))}
        </div>
        {!isFullCrop(state.crop, image.width, image.height) ? (
          <button type="button" class="link small" onClick={() => update({ crop: null })}>
            Remove crop
          </button>
        ) : null}
      </fieldset>

      <fieldset>
        <legend>Rotate and flip</legend>
        <div class="chips">
          <button type="button" class="chip" onClick={() => props.rotate(-90)} aria-label="Rotate left 90°">
            ⟲ Left
          </button>
          <button type="button" class="chip" onClick={() => props.rotate(90)} aria-label="Rotate right 90°">
            ⟳ Right
          </button>
          <button type="button" class="chip" aria-pressed={state.flipH} onClick={() => update({ flipH: !state.flipH })}>
            ⇋ Flip horizontal
          </button>
          <button type="button" class="chip" aria-pressed={state.flipV} onClick={() => update({ flipV: !state.flipV })}>
            ⇵ Flip vertical
          </button>
        </div>
        <p class="hint" aria-live="polite">
          Rotation {state.rot}°{state.flipH || state.flipV ? `, flipped ${state.flipH ? "horizontally" : ""}${state.flipH && state.flipV ? " and " : ""}${state.flipV ? "vertically" : ""}` : ""}
        </p>
      </fieldset>

      <fieldset>
        <legend>Size</legend>
        <div class="grid3">
          <div class="field">
            <label for="out-w">Width</label>
            <input id="out-w" type="number" inputMode="numeric" min={1} placeholder="auto" value={state.w ?? ""} onInput={(event) => update({ w: optionalInt(event.currentTarget.value) })} />
          </div>
          <div class="field">
            <label for="out-h">Height</label>
            <input id="out-h" type="number" inputMode="numeric" min={1} placeholder="auto" value={state.h ?? ""} onInput={(event) => update({ h: optionalInt(event.currentTarget.value) })} />
          </div>
          <div class="field">
            <label for="out-dpr">DPR</label>
            <select id="out-dpr" value={String(state.dpr)} onChange={(event) => update({ dpr: Number(event.currentTarget.value) })}>
              {[1, 1.5, 2, 3].map((dpr) => (
                <option key={dpr} value={String(dpr)}>
                  {dpr}×
                </option>
              ))}
            </select>
          </div>
        </div>
        <div class="grid2">
          <div class="field">
            <label for="out-fit">Fit</label>
            <select id="out-fit" value={state.fit} onChange={(event) => update({ fit: event.currentTarget.value as EditorState["fit"] })}>
              {FITS.map((fit) => (
                <option key={fit} value={fit}>
                  {fit}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="out-g">Gravity</label>
            <select id="out-g" value={state.gravity} onChange={(event) => update({ gravity: event.currentTarget.value as GravityChoice })}>
              {(Object.keys(GRAVITY_LABELS) as GravityChoice[]).map((g) => (
                <option key={g} value={g}>
                  {GRAVITY_LABELS[g]}
                </option>
              ))}
            </select>
          </div>
        </div>
        {state.gravity === "focal" ? (
          <div class="grid2">
            {(["x", "y"] as const).map((axis) => (
              <div class="field" key={axis}>
                <label for={`focal-${axis}`}>Focal {axis.toUpperCase()} (0–1)</label>
                <input
                  id={`focal-${axis}`}
                  type="number"
                  min={0}
                  max={1}
                  step={0.01}
                  value={state.focal[axis]}
                  onChange={(event) => {
                    const value = Number(event.currentTarget.value);
                    if (value >= 0 && value <= 1) update({ focal: { ...state.focal, [axis]: value } });
                  }}
                />
              </div>
            ))}
          </div>
        ) : (
          <p class="hint">Pick "Focal point" and click the image (or type the point) to keep a subject in view.</p>
        )}
      </fieldset>

      <fieldset>
        <legend>Format and quality</legend>
        <div class="grid2">
          <div class="field">
            <label for="out-fmt">Format</label>
            <select id="out-fmt" value={state.fmt} onChange={(event) => update({ fmt: event.currentTarget.value as FormatChoice })}>
              {(Object.keys(FORMAT_LABELS) as FormatChoice[]).map((fmt) => (
                <option key={fmt} value={fmt}>
                  {FORMAT_LABELS[fmt]}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="out-q">Quality</label>
            <input id="out-q" type="number" inputMode="numeric" min={1} max={100} placeholder="default" value={state.q ?? ""} onInput={(event) => update({ q: optionalInt(event.currentTarget.value) === null ? null : Math.min(100, optionalInt(event.currentTarget.value) ?? 100) })} />
          </div>
        </div>
      </fieldset>

      <fieldset>
        <legend>Effects</legend>
        <Range id="fx-blur" label="Blur" min={0} max={50} step={0.5} value={state.blur} onInput={(blur) => update({ blur })} />
        <Range id="fx-sharpen" label="Sharpen" min={0} max={10} step={0.5} value={state.sharpen} onInput={(sharpen) => update({ sharpen })} />
        <div class="field inline">
          <label for="fx-bg">Background (pad, transparency)</label>
          <input id="fx-bg" type="color" value={`#${state.bg}`} onInput={(event) => update({ bg: event.currentTarget.value.slice(1).toLowerCase() })} />
        </div>
      </fieldset>

      <fieldset>
        <legend>Watermark</legend>
        <div class="field">
          <label for="wm-image">Image</label>
          <select id="wm-image" value={state.wm ?? ""} onChange={(event) => update({ wm: event.currentTarget.value || null })}>
            <option value="">None</option>
            {props.watermarks.map((other) => (
              <option key={other.id} value={other.id}>
                {displayName(other)} ({other.width}×{other.height})
              </option>
            ))}
            {state.wm && !props.watermarks.some((other) => other.id === state.wm) ? <option value={state.wm}>{state.wm}</option> : null}
          </select>
        </div>
        {state.wm ? (
          <>
            <div class="field">
              <label for="wm-pos">Position</label>
              <select id="wm-pos" value={state.wmPos} onChange={(event) => update({ wmPos: event.currentTarget.value as EditorState["wmPos"] })}>
                {WM_POSITIONS.map((pos) => (
                  <option key={pos} value={pos}>
                    {pos}
                  </option>
                ))}
              </select>
            </div>
            <Range id="wm-op" label="Opacity" min={0} max={1} step={0.05} value={state.wmOp} onInput={(wmOp) => update({ wmOp })} />
            <Range id="wm-scale" label="Scale (of output width)" min={0.05} max={1} step={0.01} value={state.wmScale} onInput={(wmScale) => update({ wmScale })} />
            <div class="field">
              <label for="wm-pad">Padding (px)</label>
              <input id="wm-pad" type="number" min={0} max={1000} value={state.wmPad} onInput={(event) => update({ wmPad: Math.max(0, Math.min(1000, Math.round(Number(event.currentTarget.value) || 0))) })} />
            </div>
          </>
        ) : props.watermarks.length === 0 ? (
          <p class="hint">Upload another image (a logo) to use it as a watermark.</p>
        ) : null}
      </fieldset>
    </div>
  );
}

function Range(props: { id: string; label: string; min: number; max: number; step: number; value: number; onInput: (value: number) => void }): JSX.Element {
  return (
    <div class="field range">
      <label for={props.id}>
        {props.label} <output for={props.id}>{props.value}</output>
      </label>
      <input id={props.id} type="range" min={props.min} max={props.max} step={props.step} value={props.value} onInput={(event) => props.onInput(Number(event.currentTarget.value))} />
    </div>
  );
}

function SaveActions(props: { api: Api; image: ImageJson; query: string }): JSX.Element {
  const [preset, setPreset] = useState("");
  const [variant, setVariant] = useState("");
  const [presetState, setPresetState] = useState<{ ok: boolean; text: string } | null>(null);
  const [variantState, setVariantState] = useState<{ ok: boolean; text: string; url?: string } | null>(null);
  const [busy, setBusy] = useState<"preset" | "variant" | null>(null);
  const NAME = /^[a-z0-9_-]{1,64}$/;

  const savePreset = async (event: Event): Promise<void> => {
    event.preventDefault();
    if (!NAME.test(preset)) return setPresetState({ ok: false, text: "Use 1–64 of a-z, 0-9, _ and -." });
    if (props.query === "") return setPresetState({ ok: false, text: "Change a setting first: an empty preset is the original." });
    setBusy("preset");
    try {
      const saved = await props.api.putPreset(preset, props.query);
      setPresetState({ ok: true, text: `Saved. Use ?p=${saved.name} on any image (${saved.params}).` });
    } catch (caught) {
      setPresetState({ ok: false, text: caught instanceof Error ? caught.message : String(caught) });
    }
    setBusy(null);
  };

  const addVariant = async (event: Event): Promise<void> => {
    event.preventDefault();
    if (!NAME.test(variant)) return setVariantState({ ok: false, text: "Use 1–64 of a-z, 0-9, _ and -." });
    if (props.query === "") return setVariantState({ ok: false, text: "Change a setting first: an empty variant is the original." });
    setBusy("variant");
    try {
      const job = await props.api.createVariantJob(props.image.id, { [variant]: props.query });
      setVariantState({ ok: true, text: "Queued…" });
      const done = await props.api.waitForJob(job.id, (update) => setVariantState({ ok: true, text: `Job ${update.state}…` }));
      const item = done.items?.[0];
      setVariantState(
        done.state === "succeeded"
          ? { ok: true, text: "Variant ready:", url: `${location.origin}/i/${props.image.id}/${variant}` }
          : { ok: false, text: `The variant failed${item?.error ? `: ${item.error}` : ""}.` },
      );
    } catch (caught) {
      setVariantState({ ok: false, text: caught instanceof Error ? caught.message : String(caught) });
    }
    setBusy(null);
  };

  return (
    <div class="save">
      <form onSubmit={(event) => void savePreset(event)}>
        <label for="preset-name">Save as preset</label>
        <div class="inline-form">
          <input id="preset-name" value={preset} placeholder="card" autocomplete="off" spellcheck={false} onInput={(event) => setPreset(event.currentTarget.value.trim())} />
          <button type="submit" class="secondary" disabled={busy === "preset"}>
            Save preset
          </button>
        </div>
        {presetState ? (
          <p role="status" class={presetState.ok ? "hint ok" : "field-error"}>
            {presetState.text}
          </p>
        ) : null}
      </form>
      <form onSubmit={(event) => void addVariant(event)}>
        <label for="variant-name">Add as stored variant of this image</label>
        <div class="inline-form">
          <input id="variant-name" value={variant} placeholder="hero" autocomplete="off" spellcheck={false} onInput={(event) => setVariant(event.currentTarget.value.trim())} />
          <button type="submit" class="secondary" disabled={busy === "variant"}>
            Add variant
          </button>
        </div>
        {variantState ? (
          <p role="status" class={variantState.ok ? "hint ok" : "field-error"}>
            {variantState.text}{" "}
            {variantState.url ? (
              <a href={variantState.url} target="_blank" rel="noopener">
                {variantState.url}
              </a>
            ) : null}
          </p>
        ) : null}
      </form>
    </div>
  );
}

interface Drag {
  readonly pointerId: number;
  readonly handle: Handle | "move";
  readonly start: Rect;
  readonly x: number;
  readonly y: number;
  /** Source pixels per CSS pixel of the stage. */
  readonly scale: number;
}

/** The working rendition with the crop box (drag to move, corners and edges to resize) and the focal point. */
function CropStage(props: {
  image: ImageJson;
  state: EditorState;
  tool: Tool;
  ratio: number | null;
  onCrop: (crop: Rect) => void;
  onFocal: (point: { x: number; y: number }) => void;
  onWorkingImage: (image: HTMLImageElement | null) => void;
}): JSX.Element {
  const { image, state } = props;
  const stage = useRef<HTMLDivElement>(null);
  const drag = useRef<Drag | null>(null);
  const [loaded, setLoaded] = useState(false);
  const crop = state.crop ?? { x: 0, y: 0, width: image.width, height: image.height };
  const pct = (value: number, total: number): string => `${(value / total) * 100}%`;
  const placeholder = placeholderUrl(image);

  const scale = (): number => image.width / (stage.current?.getBoundingClientRect().width || image.width);

  const begin = (event: TargetedPointerEvent<HTMLElement>, handle: Handle | "move"): void => {
    if (props.tool !== "crop" || event.button !== 0) return;
    event.preventDefault();
    event.stopPropagation();
    stage.current?.setPointerCapture(event.pointerId);
    drag.current = { pointerId: event.pointerId, handle, start: crop, x: event.clientX, y: event.clientY, scale: scale() };
  };

  const onMove = (event: TargetedPointerEvent<HTMLDivElement>): void => {
    const current = drag.current;
    if (!current || current.pointerId !== event.pointerId) return;
    const dx = (event.clientX - current.x) * current.scale;
    const dy = (event.clientY - current.y) * current.scale;
    props.onCrop(
      current.handle === "move"
        ? moveCrop(current.start, dx, dy, image.width, image.height)
        : resizeCrop(current.start, current.handle, dx, dy, props.ratio, image.width, image.height),
    );
  };

  const end = (event: TargetedPointerEvent<HTMLDivElement>): void => {
    if (drag.current?.pointerId === event.pointerId) drag.current = null;
  };

  const onStageClick = (event: TargetedMouseEvent<HTMLDivElement>): void => {
    if (props.tool !== "focal" || !stage.current) return;
    const box = stage.current.getBoundingClientRect();
    const sx = ((event.clientX - box.left) / box.width) * image.width;
    const sy = ((event.clientY - box.top) / box.height) * image.height;
    const u = Math.min(1, Math.max(0, (sx - crop.x) / crop.width));
    const v = Math.min(1, Math.max(0, (sy - crop.y) / crop.height));
    const point = toRotated({ x: u, y: v }, state);
    props.onFocal({ x: Number(point.x.toFixed(3)), y: Number(point.y.toFixed(3)) });
  };

  const onKeyDown = (event: TargetedKeyboardEvent<HTMLDivElement>): void => {
    const step = Math.max(1, Math.round((event.shiftKey ? 0.1 : 0.01) * Math.max(image.width, image.height)));
    const moves: Record<string, [number, number]> = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    props.onCrop(moveCrop(crop, move[0], move[1], image.width, image.height));
  };

  const point = gravityPoint(state);
  const showFocal = point !== null && (props.tool === "focal" || state.gravity === "focal");
  const marker = point ? fromRotated(point, state) : null;
  const stageStyle: CSSProperties = { aspectRatio: `${image.width} / ${image.height}` };
  if (placeholder) stageStyle.backgroundImage = `url("${placeholder}")`;
  const landscape = image.width >= image.height;

  return (
    <div class={`stage-wrap ${landscape ? "" : "is-portrait"}`}>
      <div
        ref={stage}
        class={`stage tool-${props.tool}`}
        style={stageStyle}
        onPointerMove={onMove}
        onPointerUp={end}
        onPointerCancel={end}
        onClick={onStageClick}
        data-testid="stage"
      >
        <img
          src={imagePath(image.id, `w=${WORKING_SIZE}&h=${WORKING_SIZE}&fmt=auto`)}
          width={image.width}
          height={image.height}
          alt={`${displayName(image)}, being edited`}
          draggable={false}
          class={loaded ? "is-loaded" : ""}
          onLoad={(event) => {
            setLoaded(true);
            props.onWorkingImage(event.currentTarget);
          }}
        />
        <div
          class="crop-box"
          data-testid="crop-box"
          tabIndex={0}
          role="group"
          aria-label={`Crop area ${crop.width} × ${crop.height} at ${crop.x}, ${crop.y}. Arrow keys move it.`}
          style={{ left: pct(crop.x, image.width), top: pct(crop.y, image.height), width: pct(crop.width, image.width), height: pct(crop.height, image.height) }}
          onPointerDown={(event) => begin(event, "move")}
          onKeyDown={onKeyDown}
        >
          <span class="thirds" aria-hidden="true" />
          {(props.ratio === null ? [...CORNERS, ...EDGES] : CORNERS).map((handle) => (
            <span key={handle} class={`handle h-${handle}`} data-handle={handle} aria-hidden="true" onPointerDown={(event) => begin(event, handle)} />
          ))}
        </div>
        {showFocal && marker ? (
          <span
            class="focal"
            aria-hidden="true"
            style={{ left: pct(crop.x + marker.x * crop.width, image.width), top: pct(crop.y + marker.y * crop.height, image.height) }}
          />
        ) : null}
      </div>
    </div>
  );
}

/**
 * The client-side preview: the working rendition cropped, flipped, rotated, fitted, blurred and
 * watermarked on a canvas with the server's geometry, redrawn on every change (no request).
 */
function PreviewCanvas(props: { working: HTMLImageElement | null; image: ImageJson; state: EditorState; wm: HTMLImageElement | null }): JSX.Element {
  const canvas = useRef<HTMLCanvasElement>(null);
  const { image, state, working, wm } = props;
  const geometry = outputGeometry(state, image);
  const maxSide = 560;
  const k = Math.min(1, maxSide / geometry.canvasWidth, maxSide / geometry.canvasHeight);
  const displayWidth = Math.max(1, Math.round(geometry.canvasWidth * k));
  const displayHeight = Math.max(1, Math.round(geometry.canvasHeight * k));

  useEffect(() => {
    const frame = requestAnimationFrame(() => {
      const target = canvas.current;
      if (!target || !working || working.naturalWidth === 0) return;
      const ratio = Math.min(2, window.devicePixelRatio || 1);
      target.width = Math.round(displayWidth * ratio);
      target.height = Math.round(displayHeight * ratio);
      const ctx = target.getContext("2d");
      if (!ctx) return;
      const kk = (target.width / geometry.canvasWidth);
      ctx.clearRect(0, 0, target.width, target.height);
      const opaque = state.fit === "pad" || state.fmt === "jpeg" || (state.fmt === "" && image.format === "jpeg");
      if (opaque) {
        ctx.fillStyle = `#${state.bg}`;
        ctx.fillRect(0, 0, target.width, target.height);
      }
      // 1. crop, flip, rotate the working rendition onto an intermediate canvas.
      const s = working.naturalWidth / image.width;
      const crop = state.crop ?? { x: 0, y: 0, width: image.width, height: image.height };
      const cw = Math.max(1, crop.width * s);
      const ch = Math.max(1, crop.height * s);
      const turned = state.rot === 90 || state.rot === 270;
      const mid = document.createElement("canvas");
      mid.width = Math.round(turned ? ch : cw);
      mid.height = Math.round(turned ? cw : ch);
      const m = mid.getContext("2d");
      if (!m) return;
      m.translate(mid.width / 2, mid.height / 2);
      m.rotate((state.rot * Math.PI) / 180);
      m.scale(state.flipH ? -1 : 1, state.flipV ? -1 : 1);
      m.drawImage(working, crop.x * s, crop.y * s, cw, ch, -cw / 2, -ch / 2, cw, ch);
      // 2. the kept region, resampled to its place on the output canvas.
      const u = mid.width / geometry.input.width;
      const r = geometry.region;
      ctx.filter = state.blur > 0 ? `blur(${(state.blur * kk).toFixed(2)}px)` : "none";
      ctx.drawImage(mid, r.x * u, r.y * u, r.width * u, r.height * u, geometry.offsetX * kk, geometry.offsetY * kk, geometry.width * kk, geometry.height * kk);
      ctx.filter = "none";
      // 3. the watermark, as wide as wm_scale of the output, at its position.
      if (state.wm && wm && wm.naturalWidth > 0) {
        const markW = Math.max(1, Math.round(state.wmScale * geometry.canvasWidth));
        const markH = Math.max(1, Math.round((markW * wm.naturalHeight) / wm.naturalWidth));
        ctx.globalAlpha = state.wmOp;
        for (const [x, y] of placements(geometry.canvasWidth, geometry.canvasHeight, markW, markH, state.wmPos, state.wmPad)) {
          ctx.drawImage(wm, x * kk, y * kk, markW * kk, markH * kk);
        }
        ctx.globalAlpha = 1;
      }
    });
    return () => cancelAnimationFrame(frame);
  });

  return (
    <div
      class="preview-box"
      style={{
        aspectRatio: `${geometry.canvasWidth} / ${geometry.canvasHeight}`,
        maxWidth: `min(${displayWidth}px, calc(var(--preview-max-h) * ${(geometry.canvasWidth / geometry.canvasHeight).toFixed(4)}))`,
      }}
    >
      <canvas ref={canvas} class="checker" role="img" aria-label={`Preview, ${geometry.canvasWidth} × ${geometry.canvasHeight} pixels`} />
    </div>
  );
}

/** Where the watermark goes, as the server places it (see README: wm_pos, wm_pad). */
function placements(width: number, height: number, w: number, h: number, position: EditorState["wmPos"], padding: number): Array<[number, number]> {
  if (position === "tile") {
    const out: Array<[number, number]> = [];
    for (let y = padding; y < height; y += h + padding) for (let x = padding; x < width; x += w + padding) out.push([x, y]);
    return out;
  }
  const horizontal = position.endsWith("left") ? "left" : position.endsWith("right") ? "right" : "centre";
  const vertical = position.startsWith("top") ? "top" : position.startsWith("bottom") ? "bottom" : "centre";
  const x = horizontal === "left" ? padding : horizontal === "right" ? width - w - padding : Math.round((width - w) / 2);
  const y = vertical === "top" ? padding : vertical === "bottom" ? height - h - padding : Math.round((height - h) / 2);
  return [[x, y]];
}
