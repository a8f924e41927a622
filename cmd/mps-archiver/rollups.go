package main

import (
	"context"
	"fmt"
	"time"
)

// runRollups checks the daily rollups against the raw rows, or builds them
// again from those rows.
func runRollups(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "rollups", "[flags] check | rebuild", `The report_* views, report and the dashboards read daily rollups that the
archive's writes keep in step, in the same transaction (docs/reporting.md).
Subcommands:
  check    recompute every rollup from the raw rows, in one snapshot, and
           print one line per group that differs; exit 1 if any does. It
           reads the whole archive (about a second per million tasks).
  rebuild  empty the rollups and build them again from the raw rows, a
           month at a time, in one transaction: syncs and detail workers
           wait until it commits; readers do not. It needs the role that
           owns the schema (the one migrate uses).`)
	var cf commonFlags
	cf.register(fs, env)
	if stop, err := parse(fs, args, 1); stop {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "check" && fs.Arg(0) != "rebuild" {
		return usageErrorf("want `mps-archiver rollups check` or `rollups rebuild` (see `mps-archiver rollups -h`)")
	}
	cfg, err := cf.loadValid(env, false)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	if fs.Arg(0) == "rebuild" {
		err := st.RebuildRollups(ctx, func(month time.Time, done, total int) {
			fmt.Fprintf(env.Stderr, "rollups: built %s (%d of %d months)\n", month.Format("2006-01"), done, total)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "Rebuilt the rollups from the raw rows in %s.\n", time.Since(start).Round(time.Millisecond))
		return nil
	}
	diffs, err := st.CheckRollups(ctx)
	if err != nil {
		return err
	}
	for _, d := range diffs {
		fmt.Fprintln(env.Stdout, d)
	}
	if len(diffs) > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("%d rollup group(s) differ from the raw rows; `mps-archiver rollups rebuild` rebuilds them", len(diffs))}
	}
	fmt.Fprintf(env.Stdout, "The rollups equal the raw rows (checked in %s).\n", time.Since(start).Round(time.Millisecond))
	return nil
}
