import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { Api, ApiError } from "../api";
import { signIn } from "../session";

export function SignIn(props: { notice: string | null }): JSX.Element {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) {
      setError("Paste an API key.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await new Api(trimmed).tenant();
      signIn(trimmed);
    } catch (caught) {
      setBusy(false);
      if (caught instanceof ApiError && caught.status === 401) setError("This key was not accepted: it may be mistyped or revoked.");
      else if (caught instanceof ApiError && caught.status === 403) setError("That looks like the admin key. Sign in with one tenant's API key (POST /v1/tenants returns one).");
      else setError(caught instanceof Error ? caught.message : String(caught));
    }
  };

  return (
    <section class="signin" aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in</h1>
      <p>Use an API key of your tenant. It stays in this browser (local storage) until you sign out.</p>
      {props.notice ? (
        <p class="note" role="status">
          {props.notice}
        </p>
      ) : null}
      <form onSubmit={(event) => void submit(event)}>
        <div class="field">
          <label for="api-key">API key</label>
          <input
            id="api-key"
            type="password"
            autocomplete="off"
            spellcheck={false}
            placeholder="eik_…"
            value={key}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? "api-key-error" : undefined}
            onInput={(event) => setKey(event.currentTarget.value)}
          />
        </div>
        {error ? (
          <p id="api-key-error" class="field-error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </section>
  );
}
