/**
 * A job kind: its River kind name, the `Schema` of its args, and its default insert options.
 * Defined once and shared by services that only insert jobs and by the workers that run them.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { JobKind } from "effect-river"
 *
 * export const SendEmail = JobKind.make("send_email", {
 *   args: Schema.Struct({ to: Schema.String, subject: Schema.String }),
 *   options: { queue: "email", maxAttempts: 5 }
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import * as SchemaGetter from "effect/SchemaGetter"
import type { InvalidArgs, InvalidOptions } from "./Errors.ts"
import type * as InsertOptions from "./InsertOptions.ts"
import * as internal from "./internal/jobKind.ts"

/**
 * The type id of job kinds.
 *
 * @since 0.1.0
 * @category constants
 */
export const TypeId: "~effect-river/JobKind" = internal.TypeId

/**
 * River's kind name rule, plus the table's length limit (1–127 characters).
 *
 * @since 0.1.0
 * @category constants
 */
export const KIND_PATTERN: RegExp = internal.KIND_PATTERN

/**
 * An args schema usable for jobs: no services needed to encode or decode.
 *
 * @since 0.1.0
 * @category models
 */
export type ArgsSchema<A, I> = Schema.Codec<A, I, never, never>

/**
 * A job kind.
 *
 * @since 0.1.0
 * @category models
 */
export interface JobKind<in out A, in out I = A> {
  readonly [TypeId]: typeof TypeId
  /** The kind name stored in `river_job.kind`. */
  readonly kind: string
  /** The args schema: its `Type` is what workers see; args are stored as its canonical JSON (`Schema.toCodecJson`). */
  readonly args: ArgsSchema<A, I>
  /** Default insert options for this kind (between the insert call's and the client's). */
  readonly options: InsertOptions.InsertOptions
  /** Builds an insert request for `Client.insertMany`. */
  readonly of: (args: A, options?: InsertOptions.InsertOptions) => InsertRequest
  /**
   * @internal encodes args to JSON text, or describes why it cannot: the schema's issues, keys it
   * does not declare, or a string `jsonb` cannot store (`\u0000`, a lone surrogate).
   */
  readonly encode: (args: unknown) => Result.Result<string, InvalidArgs>
  /** @internal decodes stored args. */
  readonly decode: (json: unknown) => Result.Result<A, InvalidArgs>
  /** @internal the reason the kind name or default options are invalid, if they are. */
  readonly problem: InvalidOptions | undefined
  /**
   * @internal the shape of the stored args (the encoded side of the JSON codec), for River's
   * unique keys: which objects are structs (field order) and which are maps (sorted keys).
   */
  readonly argsJsonAst: SchemaAST.AST
}

/**
 * Args type of a job kind.
 *
 * @since 0.1.0
 * @category models
 */
export type Args<K> = K extends JobKind<infer A, infer _I> ? A : never

/**
 * One job to insert: a kind, its args and per-insert options.
 *
 * @since 0.1.0
 * @category models
 */
export interface InsertRequest {
  readonly jobKind: JobKind<any, any>
  readonly args: unknown
  readonly options: InsertOptions.InsertOptions | undefined
}

/**
 * Defines a job kind.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <S extends Schema.Codec<any, any, never, never>>(
  kind: string,
  definition: {
    readonly args: S
    readonly options?: InsertOptions.InsertOptions | undefined
  }
) => JobKind<S["Type"], S["Encoded"]> = internal.make

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const INTEGER_TEXT = /^-?\d{1,20}$/

/** The stored form of {@link Int64}: what a Go `int64` looks like in JSON, read losslessly. */
const Int64Json = Schema.declare(
  (u): u is number | bigint | string =>
    typeof u === "bigint" || (typeof u === "number" && Number.isSafeInteger(u)) ||
    (typeof u === "string" && INTEGER_TEXT.test(u)),
  {
    expected: "an int64 (a JSON integer, a bigint, or an integer string; a number beyond ±2^53 has lost digits)",
    // Already JSON as effect-river reads and writes it: bigints are bare JSON numbers.
    toCodecJson: () => undefined
  }
)

/**
 * A Go `int64` in job args or a resumable cursor: Type `bigint`, stored as a bare JSON number
 * (as Go's `encoding/json` writes an `int64`), never rounded.
 *
 * effect-river reads `args` and `metadata` losslessly: an integer beyond ±2^53 arrives as a
 * `bigint`, which `Schema.Number` rejects (the attempt fails with `InvalidArgs` instead of
 * running with a rounded value). Declare such fields with `Int64`. Decoding accepts a JSON
 * integer (a safe `number` or a `bigint`) and, leniently, an integer string; anything outside
 * −2^63 … 2^63 − 1, a fraction, or an unsafe `number` (already rounded) is rejected.
 * (`Schema.BigInt` is different: its canonical JSON form is a string, which a Go `int64` field
 * does not accept.)
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { JobKind } from "effect-river"
 *
 * // Go: type TransferArgs struct { Account int64 `json:"account"`; Cents int `json:"cents"` }
 * export const Transfer = JobKind.make("transfer", {
 *   args: Schema.Struct({ account: JobKind.Int64, cents: Schema.Int })
 * })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Int64: Schema.Codec<bigint, number | bigint | string> = Int64Json.pipe(
  Schema.decodeTo(Schema.BigInt.check(Schema.isBetweenBigInt({ minimum: INT64_MIN, maximum: INT64_MAX })), {
    decode: SchemaGetter.transform((u: number | bigint | string) => BigInt(u)),
    encode: SchemaGetter.transform((b: bigint) => b)
  })
)

/**
 * True if the value is a job kind.
 *
 * @since 0.1.0
 * @category guards
 */
export const isJobKind = (u: unknown): u is JobKind<unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u
