import type { Limits } from "../config";
import { ProblemError } from "../errors";
import { checkOutboundUrl } from "../jobs/outbound";
import { parseVariantSpec, type VariantSpec } from "../processing/variants";
import type { TenantConfig } from "../tenants/config";
import { renderLimitsFrom } from "../transform/render";

export type ProcessingMode = "sync" | "async";

/** What an upload asks to be done with its files besides storing them. */
export interface ProcessingPlan {
  variants?: VariantSpec;
  mode?: ProcessingMode;
  callbackUrl?: string;
}

/** The upload fields (multipart parts, or query/header for PUT) that make the plan. */
export const PLAN_FIELDS = ["variants", "mode", "callback_url"] as const;
export type PlanField = (typeof PLAN_FIELDS)[number];

export function isPlanField(name: string): name is PlanField {
  return (PLAN_FIELDS as readonly string[]).includes(name);
}

/** Validates one plan field into the plan; a bad value is a 400 naming the field. */
export function applyPlanField(plan: ProcessingPlan, field: PlanField, text: string, config: TenantConfig | undefined, limits: Limits): void {
  switch (field) {
    case "variants": {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        throw new ProblemError(400, "invalid-parameter", "Expected a JSON object for variants but it is not valid JSON.", { parameter: "variants" });
      }
      plan.variants = parseVariantSpec(value, config, renderLimitsFrom(limits));
      return;
    }
    case "mode":
      if (text !== "sync" && text !== "async") {
        throw new ProblemError(400, "invalid-parameter", `Expected sync or async for mode but received ${JSON.stringify(text.slice(0, 32))}`, {
          parameter: "mode",
        });
      }
      plan.mode = text;
      return;
    case "callback_url":
      plan.callbackUrl = checkOutboundUrl(text, "callback_url", limits.allowInsecureOutbound).href;
      return;
  }
}

/**
 * Sync by default; async when asked, when a callback is given, or when the upload needs more
 * renditions (files × variants) than AUTO_ASYNC_RENDITIONS, so a big request cannot run into
 * the Worker's time limits.
 */
export function runsAsync(plan: ProcessingPlan, files: number, limits: Limits): boolean {
  if (plan.mode === "sync") return false;
  if (plan.mode === "async" || plan.callbackUrl !== undefined) return true;
  return files * Object.keys(plan.variants ?? {}).length > limits.autoAsyncRenditions;
}
