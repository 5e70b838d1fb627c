/**
 * Every ```ts block of README.md typechecks: extracted to .tmp/readme-snippets/ (imports of
 * `effect-river` pointed at src/), checked with the project's tsc and compiler options (unused
 * names allowed: snippets show values without using them).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const dir = join(root, ".tmp", "readme-snippets")

/** The ```ts blocks of a markdown text, with the line each starts on. */
const tsBlocks = (markdown: string): ReadonlyArray<{ readonly line: number; readonly code: string }> => {
  const blocks: Array<{ line: number; code: string }> = []
  const lines = markdown.split("\n")
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== "```ts") continue
    const start = i + 1
    let end = start
    while (end < lines.length && lines[end]!.trim() !== "```") end++
    blocks.push({ line: start + 1, code: lines.slice(start, end).join("\n") })
    i = end
  }
  return blocks
}

/** `effect-river` and `effect-river/<Module>` imports pointed at the sources. */
const pointAtSources = (code: string) =>
  code
    .replace(/from "effect-river"/g, `from "../../src/index.ts"`)
    .replace(/from "effect-river\/(\w+)"/g, (_, module: string) => `from "../../src/${module}.ts"`)

describe("README", () => {
  it.live("every ts snippet typechecks", () =>
    Effect.gen(function*() {
      const blocks = tsBlocks(readFileSync(join(root, "README.md"), "utf8"))
      assert.isAtLeast(blocks.length, 7, "the README's snippets were found")
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(dir, { recursive: true })
      const files = blocks.map((block, i) => {
        const file = `snippet-${String(i + 1).padStart(2, "0")}-line-${block.line}.ts`
        // A module of its own even when it has no import or export.
        writeFileSync(join(dir, file), `${pointAtSources(block.code)}\nexport {}\n`)
        return file
      })
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          extends: "../../tsconfig.json",
          compilerOptions: { noUnusedLocals: false, noUnusedParameters: false },
          include: files
        })
      )
      const result = yield* Effect.callback<{ readonly code: number; readonly output: string }>((resume) => {
        execFile(join(root, "node_modules", ".bin", "tsc"), ["-p", join(dir, "tsconfig.json")], { cwd: root, timeout: 120_000 }, (error, stdout, stderr) =>
          resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, output: stdout + stderr })))
      })
      assert.strictEqual(result.code, 0, `README snippets do not typecheck (files in .tmp/readme-snippets/):\n${result.output}`)
    }), { timeout: 180_000 })
})
