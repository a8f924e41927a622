package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mps-archiver/mps-archiver/migrations"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/storage"
)

// runMigrate manages the schema: up [N], down [N|all], version, force V.
func runMigrate(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "migrate", "up | down [N|all] | version | force VERSION", fmt.Sprintf(`down reverts migrations, newest first, and DELETES what they created with
its data: reverting 9 drops every captured outcome, 3 every recorded status
change, 2 every archived task, 1 the run ledger. The archive is the only
copy of tasks older than %d days. down asks for confirmation on a terminal;
elsewhere it needs --yes. force VERSION marks the schema clean at VERSION
(one this binary knows, or -1) after a failed migration was fixed by hand.`, int(mps.Window.Hours()/24)))
	var cf commonFlags
	cf.register(fs, env)
	yes := fs.Bool("yes", false, "confirm that down may delete archived data (needed when no terminal can ask; may also follow the action)")
	// "migrate down --yes" is how people type it: the flag package stops at
	// the action, so --yes is taken wherever it stands.
	args = slices.DeleteFunc(slices.Clone(args), func(a string) bool {
		if a == "--yes" || a == "-yes" {
			*yes = true
			return true
		}
		return false
	})
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
		apply = func(mg *storage.Migrator) error {
			if err := confirmDown(env, mg, steps, *yes); err != nil {
				return err
			}
			return mg.Down(steps)
		}
	case "force":
		if len(rest) != 2 {
			return usageErrorf("force needs exactly one VERSION")
		}
		v, err := strconv.Atoi(rest[1])
		if err != nil || v < -1 {
			return usageErrorf("force: %q is not a version number", rest[1])
		}
		if v >= 0 && !slices.ContainsFunc(migrations.Versions(), func(m migrations.Migration) bool { return m.Version == uint(v) }) {
			return usageErrorf("force: this binary knows schema versions 1..%d (and -1, none): %d is not one of them", migrations.Latest(), v)
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
		mg.Progress = func(msg string) { fmt.Fprintf(env.Stderr, "migrate: %s\n", msg) }
		before, _, _, err := mg.Version()
		if err != nil {
			return err
		}
		if apply != nil {
			if err := apply(mg); err != nil {
				return err
			}
		}
		v, dirty, ok, err := mg.Version()
		if err != nil {
			return err
		}
		if rest[0] == "up" {
			// Say what changed: the release notes name these versions.
			var applied []string
			for _, m := range migrations.Versions() {
				if m.Version > before && m.Version <= v {
					applied = append(applied, fmt.Sprintf("%d (%s)", m.Version, m.Name))
				}
			}
			if len(applied) == 0 {
				fmt.Fprintln(env.Stdout, "nothing to apply: the schema is up to date")
			} else {
				fmt.Fprintf(env.Stdout, "applied %s\n", strings.Join(applied, ", "))
			}
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

// confirmDown says what down would delete and asks for a "yes" on a
// terminal, or wants --yes.
func confirmDown(env *Env, mg *storage.Migrator, steps int, yes bool) error {
	v, _, ok, err := mg.Version()
	if err != nil {
		return err
	}
	if !ok || v == 0 {
		return nil // nothing to revert
	}
	applied := 0
	for _, m := range migrations.Versions() {
		if m.Version <= v {
			applied++
		}
	}
	if steps > applied {
		return usageErrorf("down %d: only %d migrations are applied; nothing was changed (`down all` reverts every one)", steps, applied)
	}
	var reverted, dropped []string
	all := migrations.Versions()
	for i := len(all) - 1; i >= 0; i-- {
		m := all[i]
		if m.Version > v {
			continue
		}
		if steps > 0 && len(reverted) == steps {
			break
		}
		reverted = append(reverted, fmt.Sprintf("%d (%s)", m.Version, m.Name))
		dropped = append(dropped, m.DroppedTables()...)
	}
	what := "schema versions " + strings.Join(reverted, ", ")
	// What it deletes, in rows: the archive may be the only copy.
	if counts, err := mg.RowCounts(context.Background(), dropped); err == nil && len(counts) > 0 {
		var parts []string
		for _, t := range dropped {
			if n, ok := counts[t]; ok {
				parts = append(parts, fmt.Sprintf("%d rows of %s", n, t))
			}
		}
		what += "; it drops " + strings.Join(parts, ", ")
	}
	if yes {
		return nil
	}
	if !env.Terminal || env.Stdin == nil {
		return usageErrorf("down would revert %s and delete what they hold; nothing was changed: run again with --yes to confirm", what)
	}
	fmt.Fprintf(env.Stderr, "This reverts %s and deletes what they hold, for good.\nType yes to go on: ", what)
	answer, _ := bufio.NewReader(env.Stdin).ReadString('\n')
	if strings.TrimSpace(answer) != "yes" {
		return errors.New("not confirmed; nothing was changed")
	}
	return nil
}
