/**
 * JSON without precision loss, for the suite's own plumbing (River's int64 ids and args beyond
 * 2^53): `parse` turns integers outside the safe range into bigints (through the reviver's
 * source text), `stringify` writes bigints as JSON numbers (`JSON.rawJSON`).
 */

declare global {
  interface JSON {
    rawJSON(text: string): unknown
  }
}

/** Parses JSON; integers beyond ±2^53 become bigints. */
export const parse = (text: string): unknown =>
  JSON.parse(text, function(this: unknown, _key: string, value: unknown, context?: { source?: string }) {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context?.source !== undefined && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source)
    }
    return value
  } as (this: unknown, key: string, value: unknown) => unknown)

/** Stringifies; bigints become JSON numbers with all their digits. */
export const stringify = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? JSON.rawJSON(v.toString()) : v))
