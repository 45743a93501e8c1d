// Fault injection: wrappers around the real local bindings that fail at chosen points.

export type Fault = "fail" | "hang";

/** An R2 bucket that fails (or never answers) the operations `when` picks; the rest reach the real bucket. */
export function faultyBucket(real: R2Bucket, when: (operation: string, key: string) => Fault | undefined): R2Bucket {
  return new Proxy(real, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const operation = String(property);
        const key = typeof args[0] === "string" ? args[0] : Array.isArray(args[0]) ? String(args[0][0]) : "";
        const fault = when(operation, key);
        if (fault === "fail") return Promise.reject(new Error(`injected R2 ${operation} failure for ${key}`));
        if (fault === "hang") return new Promise(() => undefined);
        const result: unknown = value.apply(target, args);
        if (operation === "createMultipartUpload") {
          return (result as Promise<R2MultipartUpload>).then((upload) => faultyUpload(upload, key, when));
        }
        return result;
      };
    },
  });
}

function faultyUpload(real: R2MultipartUpload, key: string, when: (operation: string, key: string) => Fault | undefined): R2MultipartUpload {
  return new Proxy(real, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const fault = when(`multipart.${String(property)}`, key);
        if (fault === "fail") return Promise.reject(new Error(`injected R2 multipart ${String(property)} failure`));
        return value.apply(target, args);
      };
    },
  });
}

/** A D1 database whose statements matching `when(sql)` fail when run. */
export function faultyD1(real: D1Database, when: (sql: string) => boolean): D1Database {
  const unwrapped = new WeakMap<D1PreparedStatement, { statement: D1PreparedStatement; sql: string }>();
  const wrapStatement = (statement: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const proxy = new Proxy(statement, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== "function") return value;
        if (property === "bind") return (...args: unknown[]) => wrapStatement(value.apply(target, args) as D1PreparedStatement, sql);
        if (["run", "all", "first", "raw"].includes(String(property)) && when(sql)) {
          return () => Promise.reject(new Error(`injected D1 failure: ${sql.slice(0, 60)}`));
        }
        return value.bind(target);
      },
    });
    unwrapped.set(proxy, { statement, sql });
    return proxy;
  };
  return new Proxy(real, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (property === "prepare") return (sql: string) => wrapStatement(real.prepare(sql), sql);
      if (property === "batch") {
        return (statements: D1PreparedStatement[]) => {
          const reals = statements.map((statement) => unwrapped.get(statement) ?? { statement, sql: "" });
          if (reals.some((entry) => when(entry.sql))) return Promise.reject(new Error("injected D1 batch failure"));
          return real.batch(reals.map((entry) => entry.statement));
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A queue whose sends fail. */
export function failingQueue(): Queue {
  const fail = () => Promise.reject(new Error("injected queue send failure"));
  return { send: fail, sendBatch: fail } as unknown as Queue;
}
