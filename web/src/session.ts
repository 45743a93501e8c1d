// The signed-in API key, kept in localStorage so a reload stays signed in; sign-out removes it.
import { useEffect, useMemo, useState } from "preact/hooks";
import { Api } from "./api";

const STORAGE_KEY = "edge-images.apiKey";
const listeners = new Set<() => void>();

function read(): string | null {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function signIn(key: string): void {
  localStorage.setItem(STORAGE_KEY, key);
  listeners.forEach((listener) => listener());
}

export function signOut(): void {
  localStorage.removeItem(STORAGE_KEY);
  listeners.forEach((listener) => listener());
}

/** The API client for the current key, or null when signed out. */
export function useApi(): Api | null {
  const [key, setKey] = useState(read);
  useEffect(() => {
    const listener = (): void => setKey(read());
    listeners.add(listener);
    const onStorage = (event: StorageEvent): void => {
      if (event.key === STORAGE_KEY || event.key === null) listener();
    };
    window.addEventListener("storage", onStorage);
    return () => {
      listeners.delete(listener);
      window.removeEventListener("storage", onStorage);
    };
  }, []);
  return useMemo(() => (key ? new Api(key) : null), [key]);
}
