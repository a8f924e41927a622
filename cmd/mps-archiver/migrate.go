package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/mps-archiver/mps-archiver/storage"
)

// runMigrate manages the schema: up [N], down [N|all], version, force V.
func runMigrate(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "migrate", "up | down [N|all] | version | force VERSION")
	var cf commonFlags
	cf.register(fs, env)
	if stop, err := parse(fs, args, 2); stop {
		return err
	}
	// The command line is checked before anything is connected to: a typo
	// is a usage error, whatever the configuration.
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errUsage
	}
	var apply func(mg *storage.Migrator) error
	switch rest[0] {
	case "up", "version":
		if len(rest) > 1 {
			return usageErrorf("%s takes no argument (got %q)", rest[0], rest[1])
		}
		if rest[0] == "up" {
			apply = (*storage.Migrator).Up
		}
	case "down":
		// One step by default: dropping the whole archive must be asked for.
		steps := 1
		if len(rest) > 1 {
			var err error
			if rest[1] == "all" {
				steps = 0
			} else if steps, err = strconv.Atoi(rest[1]); err != nil || steps < 1 {
				return usageErrorf("down: %q is not a positive number of steps or \"all\"", rest[1])
			}
		}
		apply = func(mg *storage.Migrator) error { return mg.Down(steps) }
	case "force":
		if len(rest) != 2 {
			return usageErrorf("force needs exactly one VERSION")
		}
		v, err := strconv.Atoi(rest[1])
		if err != nil || v < -1 {
			return usageErrorf("force: %q is not a version number", rest[1])
		}
		apply = func(mg *storage.Migrator) error { return mg.Force(v) }
	default:
		return usageErrorf("unknown action %q (want up, down, version or force)", rest[0])
	}
	cfg, err := cf.loadValid(env, false)
	if err != nil {
		return err
	}
	return storage.Migrate(ctx, cfg.DatabaseURL, func(mg *storage.Migrator) error {
		if apply != nil {
			if err := apply(mg); err != nil {
				return err
			}
		}
		v, dirty, ok, err := mg.Version()
		if err != nil {
			return err
		}
		switch {
		case !ok:
			fmt.Fprintln(env.Stdout, "schema version: none (no migration applied)")
		case dirty:
			fmt.Fprintf(env.Stdout, "schema version: %d (dirty: a migration failed half-way; see `mps-archiver migrate force`)\n", v)
		default:
			fmt.Fprintf(env.Stdout, "schema version: %d\n", v)
		}
		return nil
	})
}
