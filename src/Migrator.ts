/**
 * Applies and reverts River's database schema (migration line `main`, versions 1 to 8), keeping
 * River's own history table `river_migration`, so a database migrated here is one River's Go
 * client accepts as migrated, and the other way round. effect-river's own state (flow control's
 * rate-limit table) lives in a second line, `effect-river`, in the same history: River's migrator
 * reads only line `main` and leaves other lines alone, as it does River Pro's.
 *
 * Every operation needs only a `SqlClient.SqlClient` (any PostgreSQL client of the caller's);
 * identifiers are validated and values are bound parameters.
 *
 * **Details**
 *
 * - Each version runs in its own transaction, which also writes (up) or deletes (down) its
 *   `river_migration` row `('main', version)`. A failing version rolls back alone; the versions
 *   before it stay applied.
 * - Each transaction first takes an advisory lock keyed on the schema, then reads the history,
 *   so concurrent migrators (several processes starting at once) apply every version once.
 * - Rows of other migration lines (River Pro's `workflow`, `sequence`) are left alone.
 * - {@link up} without a line or a target applies line `main`, then line `effect-river`; every
 *   other operation works on one line, `main` unless `line` says otherwise. Reverting `main`
 *   below version 5 (River's history without lines) reverts line `effect-river` first.
 * - Versions 1 to 4 predate the `line` column: their rows are written in River's old shape
 *   `(version)` until version 5 rebuilds the table keyed by `(line, version)`.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Effect, Redacted } from "effect"
 * import { Migrator } from "effect-river"
 *
 * const program = Effect.gen(function*() {
 *   const applied = yield* Migrator.up({ schema: "river" }) // to the latest version
 *   const status = yield* Migrator.list({ schema: "river" }) // { current, applied, pending }
 * }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL!) })))
 * ```
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as SqlClient from "effect/sql/SqlClient"
import type { DatabaseError, InvalidOptions, MigrationError } from "./Errors.ts"
import * as internal from "./internal/migrator.ts"

/**
 * One version of the migration line: its SQL in both directions, with the schema placeholder
 * comment (`TEMPLATE: schema`) in front of every object reference.
 *
 * @since 0.1.0
 * @category models
 */
export interface Migration {
  readonly version: number
  /** River's name for the version, e.g. `initial_schema`. */
  readonly name: string
  readonly up: string
  readonly down: string
}

/**
 * A version applied or reverted by {@link up} or {@link down}.
 *
 * @since 0.1.0
 * @category models
 */
export interface MigrationRun {
  /** The migration line of the version: River's `main` or effect-river's own. */
  readonly line: MigrationLine
  readonly version: number
  readonly name: string
  /** Time spent running the version's SQL, as measured by the `Clock`. */
  readonly duration: Duration.Duration
}

/**
 * A row of the history table for line `main`.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppliedMigration {
  readonly version: number
  /** `undefined` for a version newer than this library knows (see `MigrationStatus.current`). */
  readonly name: string | undefined
  readonly createdAt: Date
}

/**
 * A version not applied yet.
 *
 * @since 0.1.0
 * @category models
 */
export interface PendingMigration {
  readonly version: number
  readonly name: string
}

/**
 * Result of {@link list}.
 *
 * @since 0.1.0
 * @category models
 */
export interface MigrationStatus {
  /** Highest applied version of line `main`; 0 when none. Above {@link latestVersion} when the database is ahead. */
  readonly current: number
  readonly applied: ReadonlyArray<AppliedMigration>
  /** Versions above `current`, oldest first. */
  readonly pending: ReadonlyArray<PendingMigration>
}

/**
 * A migration line: River's `main`, or `effect-river` (effect-river's own state: the flow-control
 * rate-limit table).
 *
 * @since 0.1.0
 * @category models
 */
export type MigrationLine = "main" | "effect-river"

/**
 * Options of {@link up}.
 *
 * @since 0.1.0
 * @category models
 */
export interface UpOptions {
  /**
   * Schema holding River's tables, created if missing. When absent, statements are left
   * unqualified and the connection's `search_path` applies.
   */
  readonly schema?: string | undefined
  /**
   * Only this line. @default both: `main`, then `effect-river` (only `main` when `targetVersion`
   * is given)
   */
  readonly line?: MigrationLine | undefined
  /** Last version to apply (of `line`, `main` by default). @default the line's latest */
  readonly targetVersion?: number | undefined
}

/**
 * Options of {@link down}.
 *
 * @since 0.1.0
 * @category models
 */
export interface DownOptions {
  /** Schema holding River's tables; the `search_path` applies when absent. */
  readonly schema?: string | undefined
  /** Version to return to: versions above it are reverted. 0 reverts everything. */
  readonly targetVersion: number
  /** The line to revert. @default "main" */
  readonly line?: MigrationLine | undefined
}

/**
 * Options of {@link list}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListOptions {
  /** Schema holding River's tables; the `search_path` applies when absent. */
  readonly schema?: string | undefined
  /** The line to list. @default "main" */
  readonly line?: MigrationLine | undefined
}

/**
 * Options of {@link sql}. Versions run from `fromVersion` (exclusive) to `targetVersion`
 * (inclusive) going up, and from `fromVersion` (inclusive) down to `targetVersion` (exclusive)
 * going down.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqlOptions {
  readonly direction: "up" | "down"
  /** Schema to qualify object names with; left unqualified when absent. */
  readonly schema?: string | undefined
  /** The version the database is at. @default 0 going up, latestVersion going down */
  readonly fromVersion?: number | undefined
  /** The version to end at. @default latestVersion going up, 0 going down */
  readonly targetVersion?: number | undefined
  /** The line whose SQL to render. @default "main" */
  readonly line?: MigrationLine | undefined
}

/**
 * The migration line these migrations belong to in `river_migration`.
 *
 * @since 0.1.0
 * @category constants
 */
export const line: "main" = internal.line

/**
 * Every version of line `main`, oldest first (compiled from `migrations/*.sql`).
 *
 * @since 0.1.0
 * @category constants
 */
export const migrations: ReadonlyArray<Migration> = internal.migrations

/**
 * The newest version of line `main` this library knows: 8 (River v0.48 and later; version 8 is a no-op on PostgreSQL).
 *
 * @since 0.1.0
 * @category constants
 */
export const latestVersion: number = internal.latestVersion

/**
 * Every version of effect-river's own line `effect-river`, oldest first (compiled from
 * `migrations/effect-river/*.sql`): version 1 creates `effect_river_rate_limit`, the state of
 * rate-limited queues (`Runner` `queues.<name>.rateLimit`).
 *
 * @since 0.1.0
 * @category constants
 */
export const ownMigrations: ReadonlyArray<Migration> = internal.ownMigrations

/**
 * Applies the pending versions up to `targetVersion` (default: the latest), each in its own
 * transaction, and returns what it applied (nothing when the database is already there).
 * Creates the schema if it does not exist.
 *
 * **Gotchas**
 *
 * - Fails with `InvalidOptions` (bad schema name) or `MigrationError` `UnknownVersion` /
 *   `InvalidTarget` before sending any SQL; with `InvalidTarget` too when the database is
 *   already past the target (use {@link down}), and with `DatabaseAhead` when it is past
 *   {@link latestVersion}. Then nothing is changed.
 * - A failing version fails with `MigrationError` `Failed` naming it; it is rolled back, the
 *   versions applied before it stay.
 * - Run it outside of a transaction of your own: inside one, each version becomes a savepoint,
 *   and version 6 cannot use the enum value version 4 adds until that value is committed.
 *
 * @since 0.1.0
 * @category operations
 */
export const up: (options?: UpOptions) => Effect.Effect<ReadonlyArray<MigrationRun>, MigrationError | InvalidOptions | DatabaseError, SqlClient.SqlClient> = internal.up

/**
 * Reverts the applied versions above `targetVersion`, newest first, each in its own
 * transaction, and returns what it reverted. Target 0 removes every River object (version 1's
 * down drops `river_migration` itself, like River); the schema itself stays.
 *
 * **Gotchas**
 *
 * - Same planning errors as {@link up}; `InvalidTarget` when the database is below the target.
 * - Reverting version 5 fails (`Failed`, version 5) while `river_migration` holds rows of other
 *   migration lines, as in River: the older table shape cannot keep them.
 * - Reverting version 4 leaves the enum value `pending` in place (PostgreSQL cannot drop an
 *   enum value); version 4 tolerates it when applied again.
 *
 * @since 0.1.0
 * @category operations
 */
export const down: (options: DownOptions) => Effect.Effect<ReadonlyArray<MigrationRun>, MigrationError | InvalidOptions | DatabaseError, SqlClient.SqlClient> = internal.down

/**
 * Reads the history of line `main`: the current version, the applied versions with their
 * timestamps, and the pending ones. Changes nothing and takes no lock. A database ahead of
 * this library is reported (`current > latestVersion`, unknown names `undefined`), not failed.
 *
 * @since 0.1.0
 * @category operations
 */
export const list: (options?: ListOptions) => Effect.Effect<MigrationStatus, InvalidOptions | DatabaseError, SqlClient.SqlClient> = internal.list

/**
 * Options of {@link validate}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ValidateOptions {
  /** Schema holding River's tables; the `search_path` applies when absent. */
  readonly schema?: string | undefined
  /** Check only the versions up to this one. @default latestVersion */
  readonly targetVersion?: number | undefined
  /** The line to check. @default "main" */
  readonly line?: MigrationLine | undefined
}

/**
 * Result of {@link validate}: `ok` when every version up to the target is applied; otherwise
 * `messages` says why, in the words of River's `migrate-validate`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ValidationResult {
  readonly ok: boolean
  readonly messages: ReadonlyArray<string>
}

/**
 * Checks that the database has every version up to `targetVersion` (default: the latest), like
 * River's `rivermigrate.Validate` / `river migrate-validate`: not ok with
 * `Unapplied migrations: [6 7 8]` when some are missing. Changes nothing and takes no lock.
 *
 * **Gotchas**
 *
 * A database ahead of this library is not ok here (River's validate ignores versions it does
 * not know): {@link up} and {@link down} refuse it.
 *
 * @since 0.1.0
 * @category operations
 */
export const validate: (options?: ValidateOptions) => Effect.Effect<ValidationResult, MigrationError | InvalidOptions | DatabaseError, SqlClient.SqlClient> = internal.validate

/**
 * The SQL that {@link up} or {@link down} would run between two versions, with the schema
 * substituted, one commented section per version, for printing or for another migration tool.
 * Needs no database. Empty when the range is empty.
 *
 * **Gotchas**
 *
 * The text holds the versions' own statements only, as River's `migrate-get` prints them: it
 * does not write `river_migration` rows. Run each version in its own transaction (version 6 uses
 * the enum value version 4 adds).
 *
 * @since 0.1.0
 * @category operations
 */
export const sql: (options: SqlOptions) => Effect.Effect<string, MigrationError | InvalidOptions> = internal.sql

/**
 * Applies pending migrations when the layer is built ({@link up} with the same options), so a
 * runner or client layer provided after it never meets a schema that is behind. Put it between
 * the `SqlClient` layer and the runner:
 * `Runner.layer(…).pipe(Layer.provide(Migrator.layer()), Layer.provide(PgClient.layer(…)))` —
 * or `Layer.provideMerge` to keep the `SqlClient` in the output.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: UpOptions
): Layer.Layer<never, MigrationError | InvalidOptions | DatabaseError, SqlClient.SqlClient> =>
  Layer.effectDiscard(up(options))
