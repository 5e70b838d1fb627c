/**
 * How a rejected value is named in an error message (`InvalidOptions.value`, `InvalidArgs`).
 *
 * @internal
 */

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
