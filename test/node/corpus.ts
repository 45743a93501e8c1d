// The shared test corpus beside the project (../shared/corpus), with a clear fallback when absent.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const CORPUS_DIR = resolve(import.meta.dirname, "../../../shared/corpus");
export const FIXTURES_DIR = resolve(import.meta.dirname, "../fixtures");

export function corpusAvailable(): boolean {
  return existsSync(join(CORPUS_DIR, "MANIFEST.tsv"));
}

/** Names of corpus files matching the filter; warns and uses test/fixtures when the corpus is absent. */
export function corpusFiles(filter: (name: string) => boolean): { dir: string; names: string[] } {
  if (corpusAvailable()) return { dir: CORPUS_DIR, names: readdirSync(CORPUS_DIR).filter(filter).sort() };
  console.warn(`../shared/corpus is absent (looked in ${CORPUS_DIR}); using test/fixtures instead.`);
  return { dir: FIXTURES_DIR, names: readdirSync(FIXTURES_DIR).filter(filter).sort() };
}

export function readCorpusFile(dir: string, name: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readFileSync(join(dir, name)));
}
