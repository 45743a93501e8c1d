import { render, type JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { ApiError } from "./api";
import { EditorPage } from "./components/Editor";
import { Gallery } from "./components/Gallery";
import { ImagePage } from "./components/ImagePage";
import { SignIn } from "./components/SignIn";
import { Upload } from "./components/Upload";
import { Link, parseRoute, useLocation } from "./router";
import { signOut, useApi } from "./session";
import "./styles.css";

let signInNotice: string | null = null;

function App(): JSX.Element {
  const api = useApi();
  const { pathname, search } = useLocation();
  const route = parseRoute(pathname);
  const [tenant, setTenant] = useState<string | null>(null);

  useEffect(() => {
    setTenant(null);
    if (!api) return;
    let current = true;
    api.tenant().then(
      (found) => current && setTenant(found.name),
      () => undefined,
    );
    return () => {
      current = false;
    };
  }, [api]);

  useEffect(() => {
    const titles: Record<typeof route.name, string> = { gallery: "Images", upload: "Upload", image: "Image", edit: "Transform", "not-found": "Not found" };
    document.title = `${api ? titles[route.name] : "Sign in"} · edge-images`;
  }, [route.name, api]);

  const onUnauthorized = (_error: ApiError): void => {
    signInNotice = "Your API key is no longer accepted. Sign in again.";
    signOut();
  };

  let page: JSX.Element;
  if (!api) {
    page = <SignIn notice={signInNotice} />;
  } else {
    switch (route.name) {
      case "gallery":
        page = <Gallery api={api} search={search} onUnauthorized={onUnauthorized} />;
        break;
      case "upload":
        page = <Upload api={api} onUnauthorized={onUnauthorized} />;
        break;
      case "image":
        page = <ImagePage key={route.id} api={api} id={route.id} onUnauthorized={onUnauthorized} />;
        break;
      case "edit":
        page = <EditorPage key={route.id} api={api} id={route.id} search={search} onUnauthorized={onUnauthorized} />;
        break;
      case "not-found":
        page = (
          <section class="empty">
            <h1>Page not found</h1>
            <Link href="/">Back to the images</Link>
          </section>
        );
        break;
    }
  }

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <Link href="/" class="brand" aria-label="edge-images, home">
          <span class="logo" aria-hidden="true" />
          edge-images
        </Link>
        {api ? (
          <nav aria-label="Main">
            <Link href="/" aria-current={route.name === "gallery" ? "page" : undefined}>
              Images
            </Link>
            <Link href="/upload" aria-current={route.name === "upload" ? "page" : undefined}>
              Upload
            </Link>
          </nav>
        ) : null}
        {api ? (
          <div class="account">
            {tenant ? <span class="tenant" title="Tenant">{tenant}</span> : null}
            <button
              type="button"
              class="secondary small"
              onClick={() => {
                signInNotice = null;
                signOut();
              }}
            >
              Sign out
            </button>
          </div>
        ) : null}
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
