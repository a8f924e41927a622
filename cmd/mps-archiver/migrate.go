package main

import (
	"context"
	"fmt"
	"strconv"
)

// runMigrate manages the schema: up [N], down [N|all], version, force V.
func runMigrate(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "migrate", "up | down [N|all] | version | force VERSION")
	var cf commonFlags
	cf.register(fs, env)
	if stop, err := handleParse(parseFlags(fs, args)); stop {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := cf.load(env)
	if err != nil {
		return err
	}
	if err := cfg.Validate(false); err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	mg, err := st.NewMigrator(ctx)
	if err != nil {
		return err
	}
	defer mg.Close()

	switch rest[0] {
	case "up":
		if len(rest) > 1 {
			return fmt.Errorf("migrate up takes no argument (got %q)", rest[1])
		}
		if err := mg.Up(); err != nil {
			return err
		}
	case "down":
		// One step by default: dropping the whole archive must be asked for.
		steps := 1
		if len(rest) > 1 {
			if rest[1] == "all" {
				steps = 0
			} else if steps, err = strconv.Atoi(rest[1]); err != nil || steps < 1 {
				return fmt.Errorf("migrate down: %q is not a positive number of steps or \"all\"", rest[1])
			}
		}
		if err := mg.Down(steps); err != nil {
			return err
		}
	case "force":
		if len(rest) != 2 {
			return fmt.Errorf("migrate force needs exactly one VERSION")
		}
		v, err := strconv.Atoi(rest[1])
		if err != nil || v < -1 {
			return fmt.Errorf("migrate force: %q is not a version number", rest[1])
		}
		if err := mg.Force(v); err != nil {
			return err
		}
	case "version":
	default:
		return fmt.Errorf("migrate: unknown action %q (want up, down, version or force)", rest[0])
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
}
