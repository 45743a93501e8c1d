import { ProblemError } from "../errors";
import { hex } from "../ids";

/** R2 multipart parts must all be the same size (except the last) and at least 5 MiB. */
export const PART_BYTES = 5 * 1024 * 1024;

export interface PutStreamOptions {
  readonly maxBytes: number;
  readonly httpMetadata?: R2HTTPMetadata;
  readonly customMetadata?: Record<string, string>;
}

export interface StoredStream {
  readonly bytes: number;
  readonly sha256: string;
}

/**
 * Streams bytes of unknown length into R2 with about one part (5 MiB) of memory, hashing as
 * they pass. Small files become one `put`; larger ones an R2 multipart upload. On any error
 * nothing is left behind: the multipart upload is aborted (a plain put never started).
 */
export async function putStream(
  bucket: R2Bucket,
  key: string,
  chunks: AsyncIterable<Uint8Array>,
  options: PutStreamOptions,
): Promise<StoredStream> {
  const digest = new crypto.DigestStream("SHA-256");
  const hashWriter = digest.getWriter();
  let buffer = new Uint8Array(PART_BYTES);
  let filled = 0;
  let total = 0;
  let upload: R2MultipartUpload | undefined;
  const parts: R2UploadedPart[] = [];

  try {
    for await (const chunk of chunks) {
      total += chunk.byteLength;
      if (total > options.maxBytes) {
        throw new ProblemError(413, "payload-too-large", `The file is larger than the limit of ${options.maxBytes} bytes.`, {
          limit: options.maxBytes,
        });
      }
      await hashWriter.write(chunk);
      let offset = 0;
      while (offset < chunk.byteLength) {
        const take = Math.min(PART_BYTES - filled, chunk.byteLength - offset);
        buffer.set(chunk.subarray(offset, offset + take), filled);
        filled += take;
        offset += take;
        if (filled === PART_BYTES) {
          upload ??= await bucket.createMultipartUpload(key, {
            httpMetadata: options.httpMetadata,
            customMetadata: options.customMetadata,
          });
          parts.push(await upload.uploadPart(parts.length + 1, buffer));
          // uploadPart may still hold the array: hand it over and start a fresh one.
          buffer = new Uint8Array(PART_BYTES);
          filled = 0;
        }
      }
    }
    await hashWriter.close();
    const stored: StoredStream = { bytes: total, sha256: hex(await digest.digest) };
    if (!upload) {
      await bucket.put(key, buffer.subarray(0, filled), {
        httpMetadata: options.httpMetadata,
        customMetadata: options.customMetadata,
      });
      return stored;
    }
    if (filled > 0) parts.push(await upload.uploadPart(parts.length + 1, buffer.subarray(0, filled)));
    await upload.complete(parts);
    return stored;
  } catch (error) {
    // Aborting the hash rejects its digest promise: mark it handled first.
    digest.digest.catch(() => undefined);
    await hashWriter.abort(error).catch(() => undefined);
    if (upload) await upload.abort().catch(() => undefined);
    throw error;
  }
}
