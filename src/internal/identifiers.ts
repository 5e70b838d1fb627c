/**
 * Validation of identifiers that end up in SQL text or channel names. Values are always bound
 * parameters; identifiers cannot be, so they are checked against River's rules and quoted.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import { InvalidOptions } from "../Errors.ts"

/** River's schema name rule; ≤ 46 chars so `<schema>.river_leadership` fits in 63. */
export const SCHEMA_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_]*$/
export const SCHEMA_MAX_LENGTH = 46

/**
 * Short rendering of a rejected value for error messages: JSON where JSON can say it, and the
 * value's own name where it cannot (an invalid `Date`, `NaN`, `Infinity`, `undefined`, a bigint,
 * a function), so a message never reads "(got null)" for something that was not null.
 */
export const show = (value: unknown): string => {
  const text = render(value, 0)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

const render = (value: unknown, depth: number): string => {
  switch (typeof value) {
    case "number":
      return Object.is(value, -0) ? "-0" : String(value)
    case "bigint":
      return `${value}n`
    case "undefined":
      return "undefined"
    case "symbol":
      return value.toString()
    case "function":
      return "a function"
    case "string":
      return JSON.stringify(value)
    case "boolean":
      return String(value)
  }
  if (value === null) return "null"
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString()
  if (depth > 3) return "…"
  try {
    if (Array.isArray(value)) return `[${value.map((v) => render(v, depth + 1)).join(",")}]`
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") return JSON.stringify(value) ?? String(value)
    return `{${Object.entries(value as object).map(([k, v]) => `${JSON.stringify(k)}:${render(v, depth + 1)}`).join(",")}}`
  } catch {
    return String(value)
  }
}

export const schemaNameProblem = (schema: unknown): string | undefined => {
  if (typeof schema !== "string") return "must be a string"
  if (schema.length > SCHEMA_MAX_LENGTH) return `must be at most ${SCHEMA_MAX_LENGTH} characters`
  if (!SCHEMA_PATTERN.test(schema)) return "must match ^[a-zA-Z_][a-zA-Z0-9_]*$"
  return undefined
}

/** Fails with `InvalidOptions` (field `schema`) unless `schema` is absent or a valid name. */
export const validateSchema = (schema: string | undefined): Effect.Effect<string | undefined, InvalidOptions> => {
  if (schema === undefined || schema === "") return Effect.succeed(undefined)
  const problem = schemaNameProblem(schema)
  return problem === undefined
    ? Effect.succeed(schema)
    : Effect.fail(new InvalidOptions({ field: "schema", rule: problem, value: show(schema) }))
}

/** `"schema".` for a configured schema, or the empty string (search_path applies). */
export const schemaPrefix = (schema: string | undefined): string =>
  schema === undefined || schema === "" ? "" : `"${schema}".`
