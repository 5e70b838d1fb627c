/**
 * River's unique key: the key string River builds for a unique job, and its SHA-256 (the
 * `unique_key` column). A River Go client and this runtime must build byte-identical strings for
 * the same job, or they cannot deduplicate against each other, so every rule here follows River
 * (`internal/dbunique`, River master):
 *
 * - `&kind=<kind>` unless `excludeKind`;
 * - `&args=<json>` if `byArgs`: all top-level keys of the encoded args, sorted by their UTF-8
 *   bytes, each value as Go's `encoding/json` wrote it; or, with chosen keys (River's
 *   `river:"unique"` fields), only those paths (`a.b` = key `b` inside `a`), sorted, rebuilt as
 *   nested objects, missing ones skipped (all missing: the segment is `&args=` and nothing else);
 * - `&period=<RFC 3339, UTC, whole seconds>` if `byPeriod`: the job's `scheduledAt` (else now)
 *   truncated to a multiple of the period counted from Go's zero time 0001-01-01T00:00:00Z;
 * - `&queue=<queue>` if `byQueue`.
 *
 * River writes each value's raw bytes as `json.Marshal` produced them, so nested objects keep Go's
 * order: a struct's fields in declaration order, a map's keys sorted bytewise. JavaScript objects
 * put integer-like keys first, so the order is taken from the args schema instead (the encoded
 * side of its JSON codec, `argsAst`): an object the schema declares as struct fields is written
 * in field order (a TypeScript struct mirrors its Go struct's declaration order), any other object
 * (a record, `Schema.Unknown`, no schema) with its keys sorted bytewise, as Go writes a map; a union
 * uses the member the value is.
 *
 * Args are taken from the JSON text that is stored for the job (what River hashes is the encoded
 * args it stores, too), parsed losslessly, and re-rendered as Go would encode them: compact; `<`, `>`, `&`, U+2028,
 * U+2029 escaped as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`; other control characters
 * as `\b \f \n \r \t` or `\u00XX`; a lone surrogate as `\ufffd`. Object keys of the rebuilt
 * top-level object are written the way River writes them (sjson's rule): verbatim between quotes
 * unless they contain a control character, a non-ASCII character, `"` or `\`, in which case they
 * are encoded like a Go string.
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import { createHash } from "node:crypto"
import { parseJson } from "./json.ts"

/** Unique options after validation and defaults, ready to build keys. */
export interface ResolvedUnique {
  /** `false`: args not part of the key; `true`: all top-level keys; else the chosen paths (sorted, deduplicated). */
  readonly byArgs: boolean | ReadonlyArray<ReadonlyArray<string>>
  /** The period in nanoseconds, or `undefined`. */
  readonly byPeriodNanos: bigint | undefined
  readonly byQueue: boolean
  readonly excludeKind: boolean
  /** `unique_states` as `bit(8)` text, e.g. `"11110101"`. */
  readonly statesBitmask: string
}

/** What a key is built from. */
export interface UniqueKeyInput {
  readonly kind: string
  /** The encoded args as stored (JSON text of an object). */
  readonly argsJson: string
  /**
   * The shape of the stored args: the encoded side of the args schema's JSON codec. Without it,
   * every nested object is written as a Go map (keys sorted).
   */
  readonly argsAst?: SchemaAST.AST | undefined
  readonly queue: string
  /** The job's `scheduledAt` in epoch milliseconds, or `undefined` (then `nowMillis` is used). */
  readonly scheduledAtMillis: number | undefined
  readonly nowMillis: number
}

// ---------------------------------------------------------------------------------------------
// Go encoding/json

const HEX = "0123456789abcdef"

/** A string as Go's `encoding/json` writes it (with its default HTML escaping). */
export const goString = (s: string): string => {
  let out = "\""
  let start = 0
  const n = s.length
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    let escape: string | undefined
    if (c < 0x20) {
      escape = c === 0x08
        ? "\\b"
        : c === 0x0c
        ? "\\f"
        : c === 0x0a
        ? "\\n"
        : c === 0x0d
        ? "\\r"
        : c === 0x09
        ? "\\t"
        : `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}`
    } else if (c === 0x22) escape = "\\\""
    else if (c === 0x5c) escape = "\\\\"
    else if (c === 0x3c) escape = "\\u003c"
    else if (c === 0x3e) escape = "\\u003e"
    else if (c === 0x26) escape = "\\u0026"
    else if (c === 0x2028) escape = "\\u2028"
    else if (c === 0x2029) escape = "\\u2029"
    else if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < n ? s.charCodeAt(i + 1) : 0
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++ // a well-formed pair: written as is
        continue
      }
      escape = "\\ufffd" // invalid UTF-8 in Go becomes this escape
    }
    if (escape !== undefined) {
      out += s.slice(start, i) + escape
      start = i + 1
    }
  }
  return out + s.slice(start) + "\""
}

/** A parsed JSON value as Go's `encoding/json` writes it: compact, object keys in their order. */
export const goJson = (value: unknown): string => {
  if (value === null) return "null"
  switch (typeof value) {
    case "string":
      return goString(value)
    case "number":
      // Go writes float64 with the same shortest round-trip digits and the same switch to
      // exponent form (< 1e-6 or >= 1e21) as ECMAScript; only negative zero differs.
      return Number.isFinite(value) ? (Object.is(value, -0) ? "-0" : String(value)) : "null"
    case "bigint":
      // An integer beyond ±2^53, read losslessly (a Go int64): its digits, as Go writes them.
      return value.toString()
    case "boolean":
      return value ? "true" : "false"
    case "object": {
      if (Array.isArray(value)) return `[${value.map(goJson).join(",")}]`
      const parts: Array<string> = []
      for (const [k, v] of Object.entries(value)) parts.push(`${goString(k)}:${goJson(v)}`)
      return `{${parts.join(",")}}`
    }
    default:
      return "null"
  }
}

/** A key of an object River assembles itself (sjson's rule, kept by River's `appendJSONKey`). */
export const riverObjectKey = (key: string): string => {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c < 0x20 || c > 0x7f || c === 0x22 || c === 0x5c) return goString(key)
  }
  return `"${key}"`
}

/** Orders strings by their UTF-8 bytes (Go's string order), i.e. by code point. */
export const compareUtf8 = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) {
      // UTF-16 puts surrogates (code points >= U+10000) below U+E000..U+FFFF; UTF-8 does not.
      const fx = x >= 0xe000 ? x - 0x800 : x >= 0xd800 ? x + 0x2000 : x
      const fy = y >= 0xe000 ? y - 0x800 : y >= 0xd800 ? y + 0x2000 : y
      return fx - fy
    }
  }
  return a.length - b.length
}

// ---------------------------------------------------------------------------------------------
// Go's order for nested objects, from the args schema

const isPlainObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const guards = new WeakMap<SchemaAST.AST, (u: unknown) => boolean>()

/** Whether a value is of an (encoded-side) AST's type, memoized per node. */
const isOf = (ast: SchemaAST.AST, value: unknown): boolean => {
  let guard = guards.get(ast)
  if (guard === undefined) {
    guard = Schema.is(Schema.make<Schema.Top>(ast))
    guards.set(ast, guard)
  }
  return guard(value)
}

/**
 * The AST that describes `value`: suspensions resolved, a union narrowed to the first member
 * the value is (`undefined` when none is: then the value is treated as unknown JSON).
 */
const shapeOf = (ast: SchemaAST.AST | undefined, value: unknown): SchemaAST.AST | undefined => {
  for (let depth = 0; ast !== undefined && depth < 32; depth++) {
    if (ast._tag === "Suspend") ast = ast.thunk()
    else if (ast._tag === "Union") ast = ast.types.find((member) => isOf(member, value))
    else return ast
  }
  return ast
}

/** The AST of key `key` of an object of shape `ast`. */
const fieldAst = (ast: SchemaAST.AST | undefined, key: string): SchemaAST.AST | undefined => {
  if (ast?._tag !== "Objects") return undefined
  for (const ps of ast.propertySignatures) if (ps.name === key) return ps.type
  return ast.indexSignatures[0]?.type
}

/**
 * A parsed JSON value as Go's `encoding/json` wrote it for the shape `ast`: struct fields in
 * declaration order, map keys (and every object of unknown shape) sorted bytewise.
 */
export const goJsonShaped = (value: unknown, ast: SchemaAST.AST | undefined): string => {
  if (typeof value !== "object" || value === null) return goJson(value)
  const shape = shapeOf(ast, value)
  if (Array.isArray(value)) {
    const parts = new Array<string>(value.length)
    for (let i = 0; i < value.length; i++) {
      const element = shape?._tag === "Arrays" ? (shape.elements[i] ?? shape.rest[0]) : undefined
      parts[i] = goJsonShaped(value[i], element)
    }
    return `[${parts.join(",")}]`
  }
  const object = value as Record<string, unknown>
  const parts: Array<string> = []
  let rest: Array<string>
  if (shape?._tag === "Objects" && shape.propertySignatures.length > 0) {
    // A struct: declared fields first, in declaration order.
    const declared = new Set<string>()
    for (const ps of shape.propertySignatures) {
      const name = ps.name as string
      declared.add(name)
      if (Object.hasOwn(object, name)) parts.push(`${goString(name)}:${goJsonShaped(object[name], ps.type)}`)
    }
    rest = Object.keys(object).filter((k) => !declared.has(k))
  } else {
    rest = Object.keys(object)
  }
  const valueAst = shape?._tag === "Objects" ? shape.indexSignatures[0]?.type : undefined
  for (const k of rest.sort(compareUtf8)) parts.push(`${goString(k)}:${goJsonShaped(object[k], valueAst)}`)
  return `{${parts.join(",")}}`
}

// ---------------------------------------------------------------------------------------------
// Args segment

/** All top-level keys, sorted, values as Go writes them. */
const allArgs = (args: Record<string, unknown>, ast: SchemaAST.AST | undefined): string => {
  const keys = Object.keys(args).sort(compareUtf8)
  let out = "{"
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) out += ","
    out += `${riverObjectKey(keys[i]!)}:${goJsonShaped(args[keys[i]!], fieldAst(ast, keys[i]!))}`
  }
  return out + "}"
}

type Tree = Map<string, Tree | string>

const renderTree = (tree: Tree): string => {
  const parts: Array<string> = []
  for (const [k, v] of tree) parts.push(`${riverObjectKey(k)}:${typeof v === "string" ? v : renderTree(v)}`)
  return `{${parts.join(",")}}`
}

/** Only the chosen paths (already sorted), rebuilt as nested objects in that order. */
const chosenArgs = (
  args: Record<string, unknown>,
  ast: SchemaAST.AST | undefined,
  paths: ReadonlyArray<ReadonlyArray<string>>
): string => {
  const root: Tree = new Map()
  for (const path of paths) {
    let value: unknown = args
    let shape: SchemaAST.AST | undefined = ast
    let found = true
    for (const component of path) {
      if (isPlainObject(value) && Object.hasOwn(value, component)) {
        shape = fieldAst(shapeOf(shape, value), component)
        value = value[component]
      } else {
        found = false
        break
      }
    }
    if (!found) continue
    let node = root
    for (let i = 0; i < path.length - 1; i++) {
      let child = node.get(path[i]!)
      if (child === undefined || typeof child === "string") {
        child = new Map()
        node.set(path[i]!, child)
      }
      node = child
    }
    node.set(path[path.length - 1]!, goJsonShaped(value, shape))
  }
  return root.size === 0 ? "" : renderTree(root)
}

/**
 * Splits a chosen `byArgs` entry into path components (`a.b` → `["a", "b"]`), as River joins
 * the JSON names of nested `river:"unique"` fields with dots. A backslash makes the next
 * character literal (`a\.b` is the single key `a.b`), as in River's gjson/sjson paths.
 */
export const splitPath = (path: string): ReadonlyArray<string> => {
  if (!path.includes("\\")) return path.split(".")
  const components: Array<string> = []
  let current = ""
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!
    if (c === "\\") {
      if (i + 1 < path.length) current += path[++i]
    } else if (c === ".") {
      components.push(current)
      current = ""
    } else current += c
  }
  components.push(current)
  return components
}

/** Normalizes chosen paths: split, deduplicated, sorted by UTF-8 bytes of the joined path (River sorts the joined paths). */
export const normalizePaths = (paths: ReadonlyArray<string>): ReadonlyArray<ReadonlyArray<string>> =>
  [...new Set(paths)].sort(compareUtf8).map(splitPath)

// ---------------------------------------------------------------------------------------------
// Period

/** Seconds from Go's zero time (0001-01-01T00:00:00Z) to the Unix epoch. */
const GO_ZERO_TO_UNIX_SECONDS = 62_135_596_800n
const NANOS_PER_SECOND = 1_000_000_000n

/**
 * Go's `time.Time.Truncate(period)` of an instant (epoch milliseconds), formatted with
 * `time.RFC3339` in UTC (no fractional seconds, `Z`).
 */
export const periodBound = (millis: number, periodNanos: bigint): string => {
  const sinceZero = BigInt(Math.floor(millis)) * 1_000_000n + GO_ZERO_TO_UNIX_SECONDS * NANOS_PER_SECOND
  const remainder = ((sinceZero % periodNanos) + periodNanos) % periodNanos
  const truncated = sinceZero - remainder - GO_ZERO_TO_UNIX_SECONDS * NANOS_PER_SECOND
  let seconds = truncated / NANOS_PER_SECOND
  if (truncated % NANOS_PER_SECOND < 0n) seconds -= 1n // floor for instants before 1970
  return formatRfc3339(Number(seconds))
}

const pad = (n: number, width: number): string => String(n).padStart(width, "0")

/** Go's `time.RFC3339` layout in UTC: `2006-01-02T15:04:05Z`. */
const formatRfc3339 = (unixSeconds: number): string => {
  const d = new Date(unixSeconds * 1000)
  const year = d.getUTCFullYear()
  const y = year < 0 ? `-${pad(-year, 4)}` : pad(year, 4)
  return `${y}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}T${pad(d.getUTCHours(), 2)}:${
    pad(d.getUTCMinutes(), 2)
  }:${pad(d.getUTCSeconds(), 2)}Z`
}

// ---------------------------------------------------------------------------------------------
// Key

/** The key string River builds for a job (before hashing). */
export const uniqueKeyString = (unique: ResolvedUnique, input: UniqueKeyInput): string => {
  let key = unique.excludeKind ? "" : `&kind=${input.kind}`
  if (unique.byArgs !== false) {
    const parsed: unknown = parseJson(input.argsJson)
    // River rejects args that are not an object; an empty array counts as `{}`. Kinds always
    // encode to an object here, so only the object case matters in practice.
    const args = isPlainObject(parsed) ? parsed : {}
    const ast = shapeOf(input.argsAst, args)
    key += `&args=${unique.byArgs === true ? allArgs(args, ast) : chosenArgs(args, ast, unique.byArgs)}`
  }
  if (unique.byPeriodNanos !== undefined) {
    key += `&period=${periodBound(input.scheduledAtMillis ?? input.nowMillis, unique.byPeriodNanos)}`
  }
  if (unique.byQueue) key += `&queue=${input.queue}`
  return key
}

/** SHA-256 of the key string's UTF-8 bytes (the `unique_key` column). */
export const uniqueKeyHash = (keyString: string): Uint8Array => createHash("sha256").update(keyString, "utf8").digest()

/** SHA-256 of the key string, as lowercase hex (sent to SQL and decoded there). */
export const uniqueKeyHex = (keyString: string): string => createHash("sha256").update(keyString, "utf8").digest("hex")
