/**
 * Scenario 9, River UI on an effect-river database: River UI v0.22.0 (its own `riverui`
 * command, built from its Go module, which ships the built frontend) runs against a schema that
 * only an effect-river runner uses, and headless Chromium (Debian's package, driven by
 * playwright-core) reads and acts on it: the job list shows effect-river's jobs with their args,
 * a job's page shows its errors and who attempted it, the queue list shows effect-river's
 * queue, and Cancel and Retry clicked in the UI act on the effect-river runner (the running job
 * is interrupted with its finalizers, the discarded one runs again). Screenshots are saved in
 * test-artifacts/ (gitignored).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { freePort } from "../../src/cli/embeddedPostgres.ts"
import { Behave, behave, Tricky } from "./utils/kinds.ts"
import { type EffectRunner, Scenario, waitFor } from "./utils/harness.ts"

const artifacts = join(import.meta.dirname, "..", "..", "test-artifacts")

let s: Scenario
let ui: ChildProcess | undefined
let browser: Browser | undefined
const uiOutput: Array<string> = []

beforeAll(async () => {
  s = await Scenario.create("river_ui")
  mkdirSync(artifacts, { recursive: true })
})
afterAll(async () => {
  await browser?.close().catch(() => {})
  ui?.kill("SIGKILL")
  await s?.dispose()
})

/** Starts River UI's own command on `schema`; resolves with its base URL once it is healthy. */
const startRiverUi = async (schema: string) => {
  const port = await freePort()
  ui = spawn(inject("RIVERUI_BIN"), ["--schema", schema], {
    // DEV must be off: vitest puts Vite's DEV=true in the environment, which makes River UI
    // serve its development index (scripts from a Vite dev server) instead of the built one.
    env: { ...process.env, DEV: "false", DATABASE_URL: s.url, RIVER_HOST: "127.0.0.1", PORT: String(port), RIVER_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  ui.stdout?.on("data", (chunk: Buffer) => uiOutput.push(chunk.toString("utf8")))
  ui.stderr?.on("data", (chunk: Buffer) => uiOutput.push(chunk.toString("utf8")))
  const base = `http://127.0.0.1:${port}`
  await waitFor("River UI answers its health check", async () => (await fetch(`${base}/api/health-checks/complete`)).ok, 60_000, 100)
  return base
}

const launch = () =>
  chromium.launch({
    executablePath: inject("CHROMIUM_BIN"),
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ]
  })

/** Waits until the page's text contains every string (River UI refreshes itself). */
const expectText = async (page: Page, texts: ReadonlyArray<string>, timeoutMs = 30_000) => {
  try {
    await waitFor(`page shows ${JSON.stringify(texts)}`, async () => {
      const body = await page.innerText("body")
      return texts.every((t) => body.includes(t))
    }, timeoutMs, 200)
  } catch (error) {
    throw new Error(`${String(error)}\npage text:\n${(await page.innerText("body")).slice(0, 3000)}\nRiver UI:\n${uiOutput.join("").slice(-2000)}`)
  }
}

const state = (runner: EffectRunner, id: bigint) => s.run(runner.client.get(id)).then((row) => row.state)

describe("River UI on an effect-river database", () => {
  it("lists effect-river's jobs, errors and queues; Cancel and Retry act on the effect-river runner", async () => {
    const schema = await s.effectSchema("ui")
    const runner = await s.runner(schema, {
      id: "effect-ui-runner",
      queues: { ui_queue: { maxWorkers: 4 } },
      retryPolicy: () => "1 hour"
    })
    const client = runner.client
    const tricky = {
      big_id: 42n,
      small: 7,
      ratio: 0.5,
      at: new Date("2024-02-29T23:59:59.123Z"),
      text: "Grüße, 世界 👋",
      html: "<script>alert('x')</script> & <b>",
      flag: true,
      nested: { name: "nested <&>", inner: { depth: 2, values: [1n, 2n] } },
      tags: ["ui"],
      counts: { a: 1n },
      optional: null
    }
    const done = (await s.run(client.insert(Tricky, tricky, { queue: "ui_queue", tags: ["from_ts"] }))).job
    const failed = (await s.run(client.insert(Behave, behave("fail", "boom <b>bad</b> ü"), { queue: "ui_queue" }))).job
    const blocked = (await s.run(client.insert(Behave, behave("block"), { queue: "ui_queue" }))).job
    const discarded = (await s.run(client.insert(Behave, behave("fail_once", "first try fails"), { queue: "ui_queue", maxAttempts: 1 }))).job
    await waitFor("effect-river worked the four jobs", async () =>
      (await state(runner, done.id)) === "completed" && (await state(runner, failed.id)) === "retryable" &&
      (await state(runner, blocked.id)) === "running" && (await state(runner, discarded.id)) === "discarded")

    const base = await startRiverUi(schema)
    browser = await launch()
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })

    // Job list: effect-river's jobs with their args, by state.
    await page.goto(`${base}/jobs?state=completed`)
    await expectText(page, ["interop_tricky", "Grüße, 世界 👋", "<script>alert('x')</script> & <b>", "ui_queue"])
    await page.screenshot({ path: join(artifacts, "river-ui-jobs-completed.png"), fullPage: true })
    await page.goto(`${base}/jobs?state=retryable`)
    await expectText(page, ["interop_behave", "boom <b>bad</b> ü"])

    // A job's page: state, attempt, error and who attempted it.
    await page.goto(`${base}/jobs/${failed.id}`)
    await expectText(page, ["Retryable", "1 / 25", "boom <b>bad</b> ü", "effect-ui-runner", "Failed"])
    await page.screenshot({ path: join(artifacts, "river-ui-job-failed.png"), fullPage: true })

    // Queue list: effect-river's queue, with its running job.
    await page.goto(`${base}/queues`)
    await expectText(page, ["ui_queue", "Active"])
    await page.screenshot({ path: join(artifacts, "river-ui-queues.png"), fullPage: true })

    // Cancel in the UI interrupts the job running in effect-river; its finalizer runs.
    page.on("dialog", (dialog) => void dialog.accept())
    await page.goto(`${base}/jobs/${blocked.id}`)
    await expectText(page, ["Running"])
    await page.getByRole("button", { name: "Cancel", exact: true }).click()
    await waitFor("effect-river interrupted the job cancelled in River UI", () => runner.recorder.interrupted.get(blocked.id))
    expect(runner.recorder.finalized.has(blocked.id)).toBe(true)
    await waitFor("the job is cancelled", async () => (await state(runner, blocked.id)) === "cancelled")
    await expectText(page, ["Cancelled"])
    await page.screenshot({ path: join(artifacts, "river-ui-job-cancelled.png"), fullPage: true })

    // Retry in the UI makes the discarded job available; effect-river runs it again.
    await page.goto(`${base}/jobs/${discarded.id}`)
    await expectText(page, ["Discarded", "first try fails"])
    await page.getByRole("button", { name: "Retry", exact: true }).click()
    const retried = await waitFor("effect-river completed the job retried in River UI", async () => {
      const row = await s.run(client.get(discarded.id))
      return row.state === "completed" ? row : undefined
    })
    expect(retried.attempt).toBe(2)
    expect(runner.recorder.worksOf(discarded.id).map((w) => w.attempt)).toEqual([1, 2])
    await expectText(page, ["Completed"])
    await page.screenshot({ path: join(artifacts, "river-ui-job-retried.png"), fullPage: true })
    await runner.stop()
  })
})
