/**
 * Options: the one table of defaults, and the one parser every public constructor validates its
 * options with (`Runner.make`, `Client.make`, `Worker.make`, `PeriodicJob.make`, `Testing.work`).
 *
 * Each constructor declares its options as an Effect `Schema` built from the option schemas here
 * ({@link duration}, {@link integer}, {@link string}), with its defaults taken from
 * {@link defaults}; {@link decode} runs it and turns the first problem into `InvalidOptions` naming
 * the field (`queues.default.maxWorkers`, `leadership.ttl`), the rule it broke and the value given,
 * before any SQL. Rules that relate fields to each other are checked by the constructor after
 * decoding.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import * as SchemaIssue from "effect/SchemaIssue"
import { InvalidOptions } from "../Errors.ts"
import { show } from "./show.ts"

/**
 * Every option's default, in one table (River's values unless noted). The README's option tables
 * and each option's `@default` say the same.
 */
export const defaults = {
  runner: {
    /** River's; since issue 16 it throttles neither a draining backlog nor a trickle (producer.ts). */
    fetchCooldown: "100 millis",
    fetchPollInterval: "1 second",
    jobTimeout: "1 minute",
    softStopTimeout: "30 seconds",
    stopFlushTimeout: "5 seconds",
    completerFlushInterval: "50 millis",
    schedulerInterval: "5 seconds",
    /** Not River's (River has no cancel check): 1 s without LISTEN, 5 s with it. */
    cancelCheckInterval: { listening: "5 seconds", pollOnly: "1 second" },
    /** With LISTEN a fallback for a lost pause or resume notification (River 0.51.1). */
    queuePollInterval: { listening: "1 minute", pollOnly: "2 seconds" },
    clockSkewWarning: "1 second",
    leadership: { ttl: "15 seconds", electInterval: "5 seconds", renewInterval: "5 seconds" },
    /** Or the job timeout + 1 hour, when that is longer. */
    rescueStuckJobsAfter: "1 hour",
    rescuerInterval: "30 seconds",
    retention: { cancelled: "24 hours", completed: "24 hours", discarded: "7 days" },
    jobCleanerInterval: "30 seconds",
    queueRetention: "24 hours",
    queueCleanerInterval: "1 hour",
    queueRefreshInterval: "10 minutes",
    eventBuffer: 1_000
  },
  client: {
    /** River's; since issue 16 the first insert after a quiet period of a tenth of it notifies at once. */
    insertNotifyCooldown: "100 millis"
  }
} as const

/** A `Duration.Input` as a `Duration`, if it is one. */
const toDuration = (input: unknown): Duration.Duration | undefined => {
  try {
    const decoded = Duration.fromInput(input as Duration.Input)
    return Option.isSome(decoded) ? decoded.value : undefined
  } catch {
    return undefined
  }
}

/**
 * An option read from any input: `accept` returns the value, or `undefined` when the input breaks
 * the rule (whose text is the error's `rule`).
 */
const option = <A>(target: Schema.Codec<A>, accept: (input: unknown) => A | undefined, rule: string): Schema.Codec<A, unknown> =>
  Schema.Unknown.pipe(
    Schema.check(Schema.makeFilter((input) => accept(input) !== undefined, { message: rule })),
    Schema.decodeTo(target, {
      decode: SchemaGetter.transform((input: unknown) => accept(input)!),
      encode: SchemaGetter.transform((value: A) => value as unknown)
    })
  )

/** What a duration option must be. */
export interface DurationRule {
  /** At least this many milliseconds. */
  readonly min?: number | undefined
  /** More than 0. */
  readonly positive?: boolean | undefined
  /** The rule's text; default "must be a duration of at least <min> ms" (or "must be a duration"). */
  readonly rule?: string | undefined
}

const acceptDuration = (spec: DurationRule) => (input: unknown): Duration.Duration | undefined => {
  const d = toDuration(input)
  if (d === undefined) return undefined
  const millis = Duration.toMillis(d)
  if (spec.min !== undefined && !(millis >= spec.min)) return undefined
  if (spec.positive === true && !(millis > 0)) return undefined
  return d
}

const durationRule = (spec: DurationRule) =>
  spec.rule ?? (spec.min === undefined ? "must be a duration" : `must be a duration of at least ${spec.min} ms`)

/** A duration option (`"5 seconds"`, a `Duration`, milliseconds…) as a `Duration`. */
export const duration = (spec: DurationRule = {}): Schema.Codec<Duration.Duration, unknown> =>
  option(Schema.Duration, acceptDuration(spec), durationRule(spec))

/** A duration option that also accepts the words in `literals` (`"none"`, `"forever"`, `"off"`) as they are. */
export const durationOr = <const L extends string>(
  literals: ReadonlyArray<L>,
  spec: DurationRule = {}
): Schema.Codec<Duration.Duration | L, unknown> => {
  const accept = acceptDuration(spec)
  return option(
    Schema.Union([Schema.Duration, Schema.Literals(literals)]) as unknown as Schema.Codec<Duration.Duration | L>,
    (input) => (literals as ReadonlyArray<unknown>).includes(input) ? input as L : accept(input),
    durationRule(spec)
  )
}

/** An integer option from `min` to `max`. */
export const integer = (min: number, max: number, rule: string): Schema.Codec<number, unknown> =>
  option(Schema.Number, (input) => (Number.isInteger(input) && (input as number) >= min && (input as number) <= max ? input as number : undefined), rule)

/** A string option of 1 to `maxLength` characters. */
export const string = (maxLength: number, rule: string): Schema.Codec<string, unknown> =>
  option(Schema.String, (input) => (typeof input === "string" && input.length > 0 && input.length <= maxLength ? input : undefined), rule)

/** A boolean option. */
export const boolean = (rule: string): Schema.Codec<boolean, unknown> =>
  option(Schema.Boolean, (input) => (typeof input === "boolean" ? input : undefined), rule)

/** An array option of `min` to `max` elements, each decoded by `element` (its problems name its index). */
export const array = <A>(element: Schema.Codec<A, unknown>, min: number, max: number, rule: string): Schema.Codec<ReadonlyArray<A>, unknown> =>
  Schema.Unknown.pipe(
    Schema.check(Schema.makeFilter((input) => Array.isArray(input) && input.length >= min && input.length <= max, { message: rule })),
    Schema.decodeTo(Schema.Array(element) as unknown as Schema.Codec<ReadonlyArray<A>, unknown>, {
      decode: SchemaGetter.transform((input: unknown) => input),
      encode: SchemaGetter.transform((value: unknown) => value)
    })
  )

/** A string option matching `pattern`. */
export const matching = (pattern: RegExp, rule: string): Schema.Codec<string, unknown> =>
  option(Schema.String, (input) => (typeof input === "string" && pattern.test(input) ? input : undefined), rule)

/** An optional option: `undefined` or absent decodes to `fallback` (given as input, so it passes the same rules). */
export const withDefault = <A, I>(schema: Schema.Codec<A, I>, fallback: NoInfer<I>) =>
  schema.pipe(Schema.withDecodingDefault(Effect.succeed(fallback)))

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** The value at `path` inside `input`, for the error's `value`. */
const at = (input: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
  let current = input
  for (const key of path) {
    if (typeof current !== "object" || current === null) return undefined
    current = (current as Record<PropertyKey, unknown>)[key]
  }
  return current
}

/**
 * Decodes options with their schema. The first problem is `InvalidOptions`: `field` is its path
 * (`a.b`, after `prefix`), `rule` what the option must be, `value` what was given.
 */
export const decode = <A>(
  schema: Schema.Codec<A, unknown>,
  input: unknown,
  prefix = ""
): Result.Result<A, InvalidOptions> => {
  const decoded = Schema.decodeUnknownResult(schema)(input ?? {}, { errors: "first" })
  if (Result.isSuccess(decoded)) return Result.succeed(decoded.success)
  const [issue] = formatter(decoded.failure.issue).issues
  const path = (issue?.path ?? []).map((segment) => typeof segment === "object" ? (segment as { key: PropertyKey }).key : segment)
  const field = prefix + path.map(String).join(".")
  return Result.fail(
    new InvalidOptions({
      field: field === "" ? "options" : field,
      rule: issue === undefined ? "is invalid" : issue.message === "Missing key" ? "is required" : issue.message,
      value: show(at(input, path))
    })
  )
}

/** {@link decode} as an Effect. */
export const decodeEffect = <A>(schema: Schema.Codec<A, unknown>, input: unknown, prefix = ""): Effect.Effect<A, InvalidOptions> =>
  Effect.fromResult(decode(schema, input, prefix))
