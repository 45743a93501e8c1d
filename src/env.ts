import type { Db } from "./db/client";
import type { Tenant } from "./db/schema";

/** Who made the request, established by the auth middleware. */
export type Principal = { readonly kind: "admin" } | { readonly kind: "tenant"; readonly tenant: Tenant; readonly keyId: string };

export interface AppEnv {
  Bindings: Env;
  Variables: {
    db: Db;
    principal: Principal;
    requestId: string;
  };
}
