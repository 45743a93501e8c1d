// A tiny history router: paths are the app's URLs (served as index.html by the SPA fallback).
import type { ComponentChildren, JSX } from "preact";
import { useEffect, useState } from "preact/hooks";

export type Route =
  | { readonly name: "gallery" }
  | { readonly name: "upload" }
  | { readonly name: "image"; readonly id: string }
  | { readonly name: "edit"; readonly id: string }
  | { readonly name: "not-found" };

export function parseRoute(pathname: string): Route {
  if (pathname === "/" || pathname === "") return { name: "gallery" };
  if (pathname === "/upload") return { name: "upload" };
  const image = /^\/images\/([A-Za-z0-9_-]{1,64})(\/edit)?\/?$/.exec(pathname);
  if (image?.[1]) return image[2] ? { name: "edit", id: image[1] } : { name: "image", id: image[1] };
  return { name: "not-found" };
}

const listeners = new Set<() => void>();
const notify = (): void => listeners.forEach((listener) => listener());
window.addEventListener("popstate", notify);

export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (path === location.pathname + location.search) return;
  if (options.replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  window.scrollTo(0, 0);
  notify();
}

export function useLocation(): { pathname: string; search: string } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const listener = (): void => setTick((tick) => tick + 1);
    listeners.add(listener);
    return () => void listeners.delete(listener);
  }, []);
  return { pathname: location.pathname, search: location.search };
}

interface LinkProps {
  href: string;
  class?: string;
  children?: ComponentChildren;
  "aria-label"?: string;
  "aria-current"?: "page";
}

/** An <a> that navigates in the app (modified clicks still open a new tab). */
export function Link({ href, children, ...rest }: LinkProps): JSX.Element {
  return (
    <a
      href={href}
      {...rest}
      onClick={(event) => {
        if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        navigate(href);
      }}
    >
      {children}
    </a>
  );
}
