/**
 * JSON as River's `jsonb` columns need it, shared by every reader and writer of `args`,
 * `metadata` and `errors`:
 *
 * - {@link parseJson} reads losslessly: an integer literal beyond ±2^53 (a Go `int64` such as
 *   `1460323737035677698`) becomes a `bigint` instead of a rounded `number`. Text without a run
 *   of 16 digits cannot hold one and takes plain `JSON.parse`, so ordinary rows pay one scan.
 * - {@link stringifyJson} writes a `bigint` back as a bare JSON number (Go's `int64` form).
 * - {@link toJsonb} also makes the text storable: PostgreSQL's `jsonb` rejects `\u0000` and
 *   unpaired UTF-16 surrogates, so both become U+FFFD (Go's `json.Marshal` does the same for
 *   invalid UTF-8). Used for what the runtime writes on its own (errors, metadata, checkpoints);
 *   caller input is rejected instead ({@link findUnstorableString}).
 *
 * @internal
 */

const LONG_DIGITS = /\d{16}/
const INTEGER = /^-?\d+$/

type RawJson = (text: string) => unknown
const rawJSON: RawJson = (JSON as unknown as { readonly rawJSON: RawJson }).rawJSON

type SourceReviver = (this: unknown, key: string, value: unknown, context?: { readonly source?: string }) => unknown

const bigIntReviver: SourceReviver = (_key, value, context) =>
  typeof value === "number" && !Number.isSafeInteger(value) && context?.source !== undefined &&
    INTEGER.test(context.source)
    ? BigInt(context.source)
    : value

/** Parses JSON text; integers beyond ±2^53 become `bigint`s. */
export const parseJson = (text: string): unknown =>
  text.length >= 16 && LONG_DIGITS.test(text)
    ? JSON.parse(text, bigIntReviver as (this: unknown, key: string, value: unknown) => unknown)
    : JSON.parse(text)

const bigIntReplacer = (_key: string, value: unknown): unknown =>
  typeof value === "bigint" ? rawJSON(value.toString()) : value

/**
 * `JSON.stringify`, with `bigint`s written as bare JSON numbers. Throws as `JSON.stringify` does
 * (cycles); `undefined` for values JSON cannot represent at the top level.
 */
export const stringifyJson = (value: unknown): string | undefined => {
  try {
    return JSON.stringify(value)
  } catch (error) {
    // Only a bigint makes the plain call throw where this one succeeds.
    if (!(error instanceof TypeError) || !/BigInt/i.test(error.message)) throw error
    return JSON.stringify(value, bigIntReplacer)
  }
}

/**
 * Escapes `JSON.stringify` writes for what `jsonb` cannot store: `\u0000`, and a lone surrogate
 * (well-formed pairs are written as characters, so every `\ud800`–`\udfff` escape is unpaired).
 * The lookbehind skips escaped backslashes (`\\u0000` is the text `\u0000`).
 */
const UNSTORABLE_ESCAPE = /(?<=(?:^|[^\\])(?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/g

/** Replaces, in JSON text written by `JSON.stringify`, what `jsonb` cannot store by U+FFFD. */
export const sanitizeJsonText = (text: string): string =>
  text.includes("\\u0000") || text.includes("\\ud") ? text.replace(UNSTORABLE_ESCAPE, "\\ufffd") : text

/**
 * JSON text `jsonb` accepts: {@link stringifyJson}, then NUL and lone surrogates as U+FFFD.
 * `undefined` becomes `null`.
 */
export const toJsonb = (value: unknown): string => sanitizeJsonText(stringifyJson(value) ?? "null")

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** True if `jsonb` cannot store the string (a NUL, or a lone UTF-16 surrogate). */
export const isUnstorableString = (s: string): boolean => s.includes("\0") || LONE_SURROGATE.test(s)

/** Where in a value a problem is: object keys and array indexes from the top. */
export type JsonPath = ReadonlyArray<string | number>

/** A path as Effect Schema prints it: `["a"][2]["b c"]`. */
export const schemaPath = (path: JsonPath): string =>
  path.map((p) => typeof p === "number" ? `[${p}]` : `[${JSON.stringify(p)}]`).join("")

/** A path as an option field suffix: `.a[2]["b c"]`. */
export const fieldPath = (path: JsonPath): string =>
  path.map((p) =>
    typeof p === "number" ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`
  ).join("")

/**
 * The first string, value or key, that `jsonb` cannot store, with its path (for a key: the path
 * of its object) and what is wrong; `undefined` if there is none. Cheap for JSON text without
 * escapes: callers pass the text they stringified from the value.
 */
export const findUnstorableString = (
  value: unknown,
  text: string
): { readonly path: JsonPath; readonly problem: string } | undefined => {
  if (!text.includes("\\u")) return undefined
  const describe = (s: string) =>
    `${s.includes("\0") ? "contains U+0000 (NUL)" : "contains a lone UTF-16 surrogate"}, which PostgreSQL's jsonb cannot store`
  const walk = (v: unknown, path: Array<string | number>): { readonly path: JsonPath; readonly problem: string } | undefined => {
    if (typeof v === "string") return isUnstorableString(v) ? { path: [...path], problem: describe(v) } : undefined
    if (typeof v !== "object" || v === null) return undefined
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i)
        const found = walk(v[i], path)
        path.pop()
        if (found !== undefined) return found
      }
      return undefined
    }
    for (const [k, x] of Object.entries(v)) {
      if (isUnstorableString(k)) return { path: [...path], problem: `has a key (${JSON.stringify(k)}) that ${describe(k)}` }
      path.push(k)
      const found = walk(x, path)
      path.pop()
      if (found !== undefined) return found
    }
    return undefined
  }
  return walk(value, [])
}
