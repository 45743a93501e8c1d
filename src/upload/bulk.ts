import { updateImageMetadata } from "../db/images";
import { ProblemError, toProblem, PROBLEM_TYPE_BASE } from "../errors";
import { imageView, type ImageView } from "../images/view";
import { ingestImage, type IngestDeps } from "./ingest";
import { parseMetadataJson, type Metadata } from "./metadata";
import { parseMultipart, readPartText } from "./multipart";
import { isPlanField, type PlanField } from "./processing-plan";

export interface UploadError {
  readonly index: number;
  readonly filename: string | null;
  readonly status: number;
  readonly type: string;
  readonly detail: string;
}

export interface UploadOutcome {
  readonly images: ImageView[];
  readonly errors: UploadError[];
}

const MAX_HEADER_BYTES = 16 * 1024;
const MAX_FIELD_BYTES = 16 * 1024;

/**
 * Handles a multipart upload part by part, as the bytes arrive: every `file` part is probed
 * and streamed into R2 on its own, so one bad file costs only itself.
 *
 * Fields: `file` (repeatable); `metadata` (JSON object applied to every file, also to files
 * sent before it); `file_metadata` (JSON object for the next `file` part only, over
 * `metadata`); `variants`, `mode`, `callback_url` (handed to `onField`, which validates them:
 * send them before the files so a bad value stops the upload before anything is stored).
 * Other fields are ignored.
 */
export async function ingestMultipart(
  deps: IngestDeps,
  tenantId: string,
  body: ReadableStream<Uint8Array>,
  contentType: string,
  origin: string,
  onField: (name: PlanField, text: string) => void = () => undefined,
  onLog: (error: unknown) => void = () => undefined,
): Promise<UploadOutcome> {
  const images: ImageView[] = [];
  const errors: UploadError[] = [];
  const storedOwnMetadata = new Map<string, Metadata>();
  let sharedMetadata: Metadata = {};
  let nextFileMetadata: Metadata | undefined;
  let fileIndex = 0;

  try {
    for await (const part of parseMultipart(body, contentType, {
      maxHeaderBytes: MAX_HEADER_BYTES,
      // Room for a metadata part per file: the file count limit below is the one users meet.
      maxParts: deps.limits.maxFilesPerRequest * 2 + 16,
      maxTotalBytes: deps.limits.maxRequestBytes,
    })) {
      if (part.name === "metadata") {
        sharedMetadata = parseMetadataJson(await readPartText(part, deps.limits.maxMetadataBytes), "metadata", deps.limits.maxMetadataBytes);
        await applySharedMetadataToEarlierFiles(deps, tenantId, images, storedOwnMetadata, sharedMetadata, origin);
        continue;
      }
      if (part.name === "file_metadata") {
        nextFileMetadata = parseMetadataJson(
          await readPartText(part, deps.limits.maxMetadataBytes),
          "file_metadata",
          deps.limits.maxMetadataBytes,
        );
        continue;
      }
      if (isPlanField(part.name)) {
        onField(part.name, await readPartText(part, MAX_FIELD_BYTES));
        continue;
      }
      if (part.name !== "file") {
        await part.body.cancel();
        continue;
      }

      const index = fileIndex++;
      const ownMetadata = nextFileMetadata ?? {};
      nextFileMetadata = undefined;
      if (index >= deps.limits.maxFilesPerRequest) {
        await part.body.cancel();
        errors.push(
          uploadError(
            index,
            part.filename,
            new ProblemError(413, "too-many-files", `At most ${deps.limits.maxFilesPerRequest} files per request; this one was not stored.`),
          ),
        );
        continue;
      }
      try {
        const { row, duplicate } = await ingestImage(deps, tenantId, {
          filename: part.filename,
          body: part.body,
          metadata: { ...sharedMetadata, ...ownMetadata },
        });
        if (!duplicate) storedOwnMetadata.set(row.id, ownMetadata);
        images.push(imageView(row, origin, duplicate));
      } catch (error) {
        const problem = storageProblem(error);
        if (problem.status >= 500) onLog(error);
        errors.push(uploadError(index, part.filename, problem));
      }
    }
  } catch (error) {
    const problem = toProblem(error);
    if (problem.status >= 500) onLog(error);
    // A broken stream fails the file being read and then the parser: report it once.
    const last = errors.at(-1);
    if (last?.detail !== problem.detail) errors.push(uploadError(fileIndex, null, problem));
  }
  if (images.length === 0 && errors.length === 0) {
    errors.push(uploadError(0, null, new ProblemError(400, "bad-request", 'The form has no part named "file".', { parameter: "file" })));
  }
  return { images, errors };
}

async function applySharedMetadataToEarlierFiles(
  deps: IngestDeps,
  tenantId: string,
  images: ImageView[],
  ownMetadata: ReadonlyMap<string, Metadata>,
  shared: Metadata,
  origin: string,
): Promise<void> {
  for (let i = 0; i < images.length; i++) {
    const image = images[i];
    const own = image ? ownMetadata.get(image.id) : undefined;
    if (!image || own === undefined) continue;
    const row = await updateImageMetadata(deps.db, tenantId, image.id, { ...shared, ...own });
    if (row) images[i] = imageView(row, origin, false);
  }
}

/** A failure that is not the file's fault (storage, database) tells the client to retry that file. */
function storageProblem(error: unknown): ProblemError {
  if (error instanceof ProblemError) return error;
  return new ProblemError(503, "storage-failure", "Storing this file failed on our side and nothing was kept; retry it.", {}, { cause: error });
}

function uploadError(index: number, filename: string | undefined | null, problem: ProblemError): UploadError {
  return { index, filename: filename ?? null, status: problem.status, type: PROBLEM_TYPE_BASE + problem.code, detail: problem.detail };
}

/** 201 all stored, 207 some, else the shared 4xx status of the failures (400 when they differ). */
export function outcomeStatus(outcome: UploadOutcome): 201 | 207 | number {
  if (outcome.errors.length === 0) return 201;
  if (outcome.images.length > 0) return 207;
  const statuses = new Set(outcome.errors.map((error) => error.status));
  const [only] = statuses;
  return statuses.size === 1 && only !== undefined ? only : 400;
}
