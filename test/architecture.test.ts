/**
 * The architecture's rules (docs/architecture.md), checked on the sources:
 *
 * - A public module (`src/*.ts`) takes from `src/internal/` only types, and implementations it
 *   re-exports under their public name with their public type, Effect's way
 *   (`export const make: (…) => … = internal.make`); it never calls into internal code itself.
 * - An internal module takes values from a public module only when that module takes no value
 *   from `src/internal/` (`Errors`, `Job`), so no import cycle can leave a binding uninitialized.
 * - SQL with positional parameters is sent only by the driver (`src/internal/driver/`).
 * - Every error class is defined in `Errors.ts` (the command line's own `CliError` aside).
 * - Every export of a public module has JSDoc with `@since` and one `@category` of the short list.
 */
import { assert, describe, it } from "@effect/vitest"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const src = join(root, "src")

const files = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : []
  })

const all = files(src)
const rel = (path: string) => relative(root, path)
const isInternal = (path: string) => rel(path).startsWith("src/internal/")
const publicModules = all.filter((path) => /^src\/[A-Z]\w*\.ts$/.test(rel(path)))
const read = (path: string) => readFileSync(path, "utf8")

interface Import {
  readonly typeOnly: boolean
  readonly namespace: string | undefined
  readonly names: ReadonlyArray<string>
  readonly from: string
}

/** The file's import declarations (`import type` and per-name `type` are type-only). */
const imports = (text: string): ReadonlyArray<Import> =>
  [...text.matchAll(/^import\s+(type\s+)?([\s\S]*?)\s+from\s+"([^"]+)"/gm)].map((m) => {
    const clause = m[2]!
    const namespace = /^\*\s+as\s+(\w+)$/.exec(clause.trim())?.[1]
    const names = namespace !== undefined
      ? []
      : (/\{([\s\S]*)\}/.exec(clause)?.[1] ?? "").split(",").map((n) => n.trim()).filter((n) => n !== "" && !n.startsWith("type "))
    return { typeOnly: m[1] !== undefined || (namespace === undefined && names.length === 0), namespace, names, from: m[3]! }
  })

const resolvesInto = (file: string, specifier: string, dir: string) =>
  specifier.startsWith(".") && rel(join(file, "..", specifier)).startsWith(dir)

/** Public modules that take no value from src/internal/. */
const leaves = new Set(
  publicModules.filter((file) => imports(read(file)).every((i) => i.typeOnly || !resolvesInto(file, i.from, "src/internal/")))
)

/** The end of the call whose `(` is at `open`: skips strings, template literals and nested brackets. */
const callArguments = (text: string, open: number): string => {
  let depth = 0
  let quote: string | undefined
  for (let i = open; i < text.length; i++) {
    const c = text[i]!
    if (quote !== undefined) {
      if (c === "\\") i++
      else if (c === quote) quote = undefined
      continue
    }
    if (c === "\"" || c === "'" || c === "`") quote = c
    else if (c === "(" || c === "[" || c === "{") depth++
    else if (c === ")" || c === "]" || c === "}") {
      depth--
      if (depth === 0) return text.slice(open + 1, i)
    }
  }
  return text.slice(open + 1)
}

/** Whether a call's argument list has more than one argument (a top-level comma). */
const hasSecondArgument = (args: string): boolean => {
  let depth = 0
  let quote: string | undefined
  for (let i = 0; i < args.length; i++) {
    const c = args[i]!
    if (quote !== undefined) {
      if (c === "\\") i++
      else if (c === quote) quote = undefined
      continue
    }
    if (c === "\"" || c === "'" || c === "`") quote = c
    else if (c === "(" || c === "[" || c === "{") depth++
    else if (c === ")" || c === "]" || c === "}") depth--
    else if (c === "," && depth === 0) return true
  }
  return false
}

const CATEGORIES = new Set(["constructors", "models", "schemas", "services", "layers", "errors", "guards", "constants", "operations"])

describe("architecture", () => {
  it("public modules take from src/internal/ only types, and implementations they re-export", () => {
    const problems: Array<string> = []
    for (const file of publicModules) {
      const text = read(file)
      for (const i of imports(text)) {
        if (i.typeOnly || !resolvesInto(file, i.from, "src/internal/")) continue
        if (i.namespace === undefined) {
          problems.push(`${rel(file)}: named value import from ${i.from} (${i.names.join(", ")})`)
          continue
        }
        for (const use of text.matchAll(new RegExp(`\\b${i.namespace}\\.(\\w+)`, "g"))) {
          const before = text.slice(0, use.index)
          const declaration = before.slice(before.lastIndexOf("\nexport const ") + 1)
          const name = /^export const (\w+)/.exec(declaration)?.[1]
          const ends = /^\s*(?:\n|$)/.test(text.slice(use.index + use[0].length))
          if (!(name === use[1] && /=\s*$/.test(before) && ends)) {
            problems.push(`${rel(file)}: ${use[0]} used other than as \`export const ${use[1]}: … = ${use[0]}\``)
          }
        }
      }
    }
    assert.deepStrictEqual(problems, [])
  })

  it("internal modules take values only from public modules that take none from src/internal/", () => {
    const problems: Array<string> = []
    for (const file of all.filter(isInternal)) {
      for (const i of imports(read(file))) {
        if (i.typeOnly || !i.from.startsWith(".")) continue
        const target = join(file, "..", i.from)
        if (publicModules.includes(target) && !leaves.has(target)) problems.push(`${rel(file)} imports values from ${rel(target)}`)
      }
    }
    assert.deepStrictEqual(problems, [])
    assert.isTrue(leaves.has(join(src, "Errors.ts")))
  })

  it("only the driver sends SQL with positional parameters", () => {
    const problems: Array<string> = []
    for (const file of all.filter((path) => !rel(path).startsWith("src/internal/driver/"))) {
      const text = read(file)
      for (const call of text.matchAll(/\.unsafe(?:<[^>(]*>)?\(/g)) {
        const args = callArguments(text, call.index + call[0].length - 1)
        if (hasSecondArgument(args)) problems.push(`${rel(file)}: sql.unsafe with parameters: ${args.slice(0, 60)}`)
      }
    }
    assert.deepStrictEqual(problems, [])
  })

  it("every error class is defined in Errors.ts", () => {
    const problems: Array<string> = []
    for (const file of all.filter((path) => rel(path) !== "src/Errors.ts" && !rel(path).startsWith("src/cli/"))) {
      for (const m of read(file).matchAll(/class (\w+) extends (?:Schema\.TaggedError|Data\.TaggedError|Error)\b/g)) {
        problems.push(`${rel(file)}: ${m[1]}`)
      }
    }
    assert.deepStrictEqual(problems, [])
  })

  it("every export of a public module has JSDoc with @since and one @category of the short list", () => {
    const problems: Array<string> = []
    for (const file of publicModules) {
      const text = read(file)
      const exports = [
        ...text.matchAll(/^export (?:const|function|class|interface|type|declare) (\w+)/gm),
        ...[...text.matchAll(/^export \{([\s\S]*?)\} from/gm)].flatMap((block) =>
          [...block[1]!.matchAll(/(\/\*\*[\s\S]*?\*\/)\s*(\w+)/g)].map((item) => ({ 0: item[2]!, 1: item[2]!, doc: item[1]! }))
        )
      ]
      for (const e of exports) {
        const doc = "doc" in e
          ? e.doc
          : (() => {
            const before = text.slice(0, (e as RegExpMatchArray).index).trimEnd()
            return before.endsWith("*/") ? before.slice(before.lastIndexOf("/**")) : ""
          })()
        const categories = [...doc.matchAll(/@category ([\w -]+)/g)].map((m) => m[1]!.trim())
        if (!doc.includes("@since")) problems.push(`${rel(file)}: ${e[1]} has no @since`)
        if (categories.length !== 1 || !CATEGORIES.has(categories[0]!)) {
          problems.push(`${rel(file)}: ${e[1]} has @category ${categories.join(", ") || "none"}`)
        }
      }
    }
    assert.deepStrictEqual(problems, [])
  })
})
