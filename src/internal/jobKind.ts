/**
 * The implementation of the public `JobKind` module: a kind's args codec (the schema's canonical
 * JSON codec), the encoding checks that run before any SQL (undeclared keys, strings `jsonb`
 * cannot store, args that are not an object) and the decoding with its int64 hint.
 *
 * @internal
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { InvalidArgs, InvalidOptions } from "../Errors.ts"
import type * as InsertOptions from "../InsertOptions.ts"
import type { JobKind } from "../JobKind.ts"
import * as InsertOptionsInternal from "./insertOptions.ts"
import { findUnstorableString, schemaPath, stringifyJson } from "./json.ts"
import { show } from "./show.ts"

/** The type id of job kinds. */
export const TypeId = "~effect-river/JobKind" as const

/** River's kind name rule, plus the table's length limit (1–127 characters). */
export const KIND_PATTERN = /^\w[\w\-[\]<>/.·:+]+$/u

/** Defines a job kind (the public `JobKind.make`). */
export const make = <S extends Schema.Codec<any, any, never, never>>(
  kind: string,
  definition: {
    readonly args: S
    readonly options?: InsertOptions.InsertOptions | undefined
  }
): JobKind<S["Type"], S["Encoded"]> => {
  // The canonical JSON codec of the args schema: what the schema encodes to, with values that
  // have no JSON form (bigint, Date, …) given one, so stored args are always JSON.
  const json = Schema.toCodecJson(definition.args)
  const encodeResult = Schema.encodeUnknownResult(json)
  const decodeResult = Schema.decodeUnknownResult(json)
  const options = definition.options ?? {}
  const problem = kindProblem(kind) ?? InsertOptionsInternal.validate(options, "kind options.")
  const self: JobKind<S["Type"], S["Encoded"]> = {
    [TypeId]: TypeId,
    kind,
    args: definition.args,
    options,
    problem,
    argsJsonAst: SchemaAST.toEncoded(json.ast),
    of: (args, insertOptions) => ({ jobKind: self, args, options: insertOptions }),
    encode: (args) => {
      // Keys the schema does not declare are rejected (a misspelt field would otherwise vanish).
      const encoded = encodeResult(args, { errors: "all", onExcessProperty: "error" })
      if (Result.isFailure(encoded)) {
        return Result.fail(new InvalidArgs({ kind, issues: encoded.failure.message }))
      }
      let json: string | undefined
      try {
        json = stringifyJson(encoded.success)
      } catch (cause) {
        return Result.fail(
          new InvalidArgs({
            kind,
            issues: `the encoded args are not JSON (${String(cause)}); use a schema that encodes to JSON, ` +
              "e.g. Schema.BigIntFromString instead of Schema.BigInt"
          })
        )
      }
      if (json === undefined || json[0] !== "{") {
        return Result.fail(new InvalidArgs({ kind, issues: `args must encode to a JSON object, got ${show(encoded.success)}` }))
      }
      const unstorable = findUnstorableString(encoded.success, json)
      if (unstorable !== undefined) {
        return Result.fail(new InvalidArgs({ kind, issues: `at ${schemaPath(unstorable.path) || "the args"}: ${unstorable.problem}` }))
      }
      return Result.succeed(json)
    },
    decode: (json) => {
      const decoded = decodeResult(json, { errors: "all" })
      if (Result.isSuccess(decoded)) return Result.succeed(decoded.success)
      const hint = containsBigInt(json)
        ? "\n(the args hold an integer beyond ±2^53, read as a bigint so that no digit is lost: " +
          "declare such a field with JobKind.Int64)"
        : ""
      return Result.fail(new InvalidArgs({ kind, issues: decoded.failure.message + hint }))
    }
  }
  return self
}

const containsBigInt = (value: unknown): boolean => {
  if (typeof value === "bigint") return true
  if (typeof value !== "object" || value === null) return false
  return (Array.isArray(value) ? value : Object.values(value)).some(containsBigInt)
}

const kindProblem = (kind: unknown): InvalidOptions | undefined => {
  if (typeof kind !== "string" || kind.length === 0 || kind.length > 127 || !KIND_PATTERN.test(kind)) {
    return new InvalidOptions({
      field: "kind",
      rule: "must be 2 to 127 characters: a word character, then word characters or any of - [ ] < > / . · : +",
      value: show(kind)
    })
  }
  return undefined
}

