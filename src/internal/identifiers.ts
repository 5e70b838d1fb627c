/**
 * Schema names: they end up in SQL text and channel names (values are always bound parameters;
 * identifiers cannot be), so they are checked against River's rules and quoted.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import { InvalidOptions } from "../Errors.ts"
import { show } from "./show.ts"

/** River's schema name rule; ≤ 46 chars so `<schema>.river_leadership` fits in 63. */
export const SCHEMA_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_]*$/
export const SCHEMA_MAX_LENGTH = 46

/** What is wrong with a schema name, or `undefined`. */
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
