/**
 * One PostgreSQL per `vitest run`: the server named by DATABASE_URL, or an embedded server on
 * 127.0.0.1 with a free port and a temp data directory that is removed afterwards.
 * Test files create their own databases on it (see test/utils/db.ts).
 */
import type { TestProject } from "vitest/node"
import { startEmbeddedPostgres } from "../src/cli/embeddedPostgres.ts"

declare module "vitest" {
  export interface ProvidedContext {
    DATABASE_URL: string
  }
}

export default async function setup(project: TestProject) {
  const given = process.env.DATABASE_URL
  if (given !== undefined && given !== "") {
    project.provide("DATABASE_URL", given)
    return
  }
  const server = await startEmbeddedPostgres()
  project.provide("DATABASE_URL", server.url)
  process.env.DATABASE_URL = server.url
  return async () => {
    await server.stop()
  }
}
