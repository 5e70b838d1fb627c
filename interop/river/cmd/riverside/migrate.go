package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

type migrationVersion struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
}

// runMigrate runs one rivermigrate operation and prints its result as JSON.
func runMigrate(args []string) int {
	if len(args) < 1 {
		return fail(errors.New("migrate needs up, down, list or validate"))
	}
	command := args[0]
	flags := flag.NewFlagSet("migrate "+command, flag.ContinueOnError)
	databaseURL := flags.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL")
	schema := flags.String("schema", "", "schema of River's tables")
	targetVersion := flags.Int("target-version", 0, "target version")
	maxSteps := flags.Int("max-steps", 0, "maximum number of steps")
	if err := flags.Parse(args[1:]); err != nil {
		return fail(err)
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, *databaseURL)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{
		Schema: *schema,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return fail(err)
	}
	var out any
	switch command {
	case "up", "down":
		direction := rivermigrate.DirectionUp
		if command == "down" {
			direction = rivermigrate.DirectionDown
		}
		res, err := migrator.Migrate(ctx, direction, &rivermigrate.MigrateOpts{TargetVersion: *targetVersion, MaxSteps: *maxSteps})
		if err != nil {
			return fail(err)
		}
		versions := []migrationVersion{}
		for _, v := range res.Versions {
			versions = append(versions, migrationVersion{Version: v.Version, Name: v.Name})
		}
		out = map[string]any{"direction": string(res.Direction), "versions": versions}
	case "list":
		existing, err := migrator.ExistingVersions(ctx)
		if err != nil {
			return fail(err)
		}
		applied := []migrationVersion{}
		for _, m := range existing {
			applied = append(applied, migrationVersion{Version: m.Version, Name: m.Name})
		}
		all := migrator.AllVersions()
		known := []migrationVersion{}
		for _, m := range all {
			known = append(known, migrationVersion{Version: m.Version, Name: m.Name})
		}
		out = map[string]any{"applied": applied, "all": known}
	case "validate":
		res, err := migrator.Validate(ctx, &rivermigrate.ValidateOpts{TargetVersion: *targetVersion})
		if err != nil {
			return fail(err)
		}
		messages := res.Messages
		if messages == nil {
			messages = []string{}
		}
		out = map[string]any{"ok": res.OK, "messages": messages}
	default:
		return fail(fmt.Errorf("unknown migrate command %q", command))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		return fail(err)
	}
	return 0
}

func fail(err error) int {
	_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"error": err.Error()})
	fmt.Fprintln(os.Stderr, "riverside:", err)
	return 1
}
