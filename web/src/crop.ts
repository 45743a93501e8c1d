// Crop box maths for the editor stage, in source pixels (after EXIF orientation).
import { clampCrop, type Rect } from "./transform";

export type Handle = "n" | "s" | "e" | "w" | "ne" | "nw" | "se" | "sw";
export const CORNERS: readonly Handle[] = ["nw", "ne", "sw", "se"];
export const EDGES: readonly Handle[] = ["n", "e", "s", "w"];

const MIN_SIDE = 8;

/** Moves the box by (dx, dy), kept inside the image. */
export function moveCrop(start: Rect, dx: number, dy: number, width: number, height: number): Rect {
  return clampCrop({ ...start, x: start.x + dx, y: start.y + dy }, width, height);
}

/**
 * Drags a handle by (dx, dy). With a ratio (width / height, in source pixels) the box keeps it:
 * corners keep the opposite corner fixed, edges keep the opposite edge fixed and stay centred
 * on the other axis.
 */
export function resizeCrop(start: Rect, handle: Handle, dx: number, dy: number, ratio: number | null, width: number, height: number): Rect {
  const min = Math.min(MIN_SIDE, width, height);
  let left = start.x;
  let top = start.y;
  let right = start.x + start.width;
  let bottom = start.y + start.height;
  if (handle.includes("w")) left = Math.min(Math.max(0, left + dx), right - min);
  if (handle.includes("e")) right = Math.max(Math.min(width, right + dx), left + min);
  if (handle.includes("n")) top = Math.min(Math.max(0, top + dy), bottom - min);
  if (handle.includes("s")) bottom = Math.max(Math.min(height, bottom + dy), top + min);
  if (ratio === null) return clampCrop({ x: left, y: top, width: right - left, height: bottom - top }, width, height);

  const horizontal = handle.includes("e") || handle.includes("w");
  const vertical = handle.includes("n") || handle.includes("s");
  let w = right - left;
  let h = bottom - top;
  if (horizontal && vertical) {
    // A corner: follow the axis the pointer moved more along, relative to the box.
    if (Math.abs(dx) / start.width >= Math.abs(dy) / start.height) h = w / ratio;
    else w = h * ratio;
    const anchorX = handle.includes("w") ? right : left;
    const anchorY = handle.includes("n") ? bottom : top;
    const maxW = handle.includes("w") ? anchorX : width - anchorX;
    const maxH = handle.includes("n") ? anchorY : height - anchorY;
    w = Math.min(w, maxW, maxH * ratio);
    h = w / ratio;
    return clampCrop({ x: handle.includes("w") ? anchorX - w : anchorX, y: handle.includes("n") ? anchorY - h : anchorY, width: w, height: h }, width, height);
  }
  if (horizontal) {
    const centre = start.y + start.height / 2;
    const maxH = 2 * Math.min(centre, height - centre);
    h = Math.min(w / ratio, maxH);
    w = h * ratio;
    const anchorX = handle.includes("w") ? right : left;
    return clampCrop({ x: handle.includes("w") ? anchorX - w : anchorX, y: centre - h / 2, width: w, height: h }, width, height);
  }
  const centre = start.x + start.width / 2;
  const maxW = 2 * Math.min(centre, width - centre);
  w = Math.min(h * ratio, maxW);
  h = w / ratio;
  const anchorY = handle.includes("n") ? bottom : top;
  return clampCrop({ x: centre - w / 2, y: handle.includes("n") ? anchorY - h : anchorY, width: w, height: h }, width, height);
}
