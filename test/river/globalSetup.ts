/**
 * Installs what the River conformance suite needs, once per `npm run test:river`:
 *
 * - River's side, built from interop/river (pinned in its go.mod): `riverside` (a River v0.51.2
 *   client and migrator driven over stdin/stdout) and River UI v0.22.0's own command `riverui`
 *   (its Go module ships the built frontend), into interop/river/bin (gitignored);
 * - Debian's `chromium` for the River UI scenario, when /usr/bin/chromium is absent (never a
 *   downloaded browser; playwright-core drives the system one).
 *
 * The Go builds and the apt install run at the same time.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    RIVERSIDE_BIN: string
    RIVERUI_BIN: string
    CHROMIUM_BIN: string
  }
}

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const goModule = join(root, "interop", "river")
const bin = join(goModule, "bin")
export const CHROMIUM = "/usr/bin/chromium"

const run = (command: string, args: ReadonlyArray<string>, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) =>
  new Promise<void>((resolve, reject) => {
    const started = Date.now()
    const child = spawn(command, args, {
      cwd: options.cwd ?? root,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const output: Array<string> = []
    child.stdout.on("data", (chunk: Buffer) => output.push(chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => output.push(chunk.toString("utf8")))
    child.on("error", (error) => reject(new Error(`${command} ${args.join(" ")}: ${error.message}`)))
    child.on("exit", (code) => {
      if (code === 0) {
        process.stderr.write(`test:river setup: ${command} ${args.join(" ")} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`)
        resolve()
      } else {
        reject(new Error(`${command} ${args.join(" ")} exited ${code}:\n${output.join("").slice(-4000)}`))
      }
    })
  })

const buildGo = async () => {
  mkdirSync(bin, { recursive: true })
  await run("go", ["mod", "download"], { cwd: goModule })
  // One after the other: on two cores, parallel builds only fight over them.
  await run("go", ["build", "-buildvcs=false", "-o", join(bin, "riverside"), "./cmd/riverside"], { cwd: goModule })
  await run("go", ["build", "-buildvcs=false", "-o", join(bin, "riverui"), "riverqueue.com/riverui/cmd/riverui"], { cwd: goModule })
}

const installChromium = async () => {
  if (existsSync(CHROMIUM)) return
  const env = { DEBIAN_FRONTEND: "noninteractive" }
  await run("apt-get", ["update"], { env })
  await run("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], { env })
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium, but ${CHROMIUM} is missing`)
}

export default async function setup(project: TestProject) {
  await Promise.all([buildGo(), installChromium()])
  project.provide("RIVERSIDE_BIN", join(bin, "riverside"))
  project.provide("RIVERUI_BIN", join(bin, "riverui"))
  project.provide("CHROMIUM_BIN", CHROMIUM)
}
