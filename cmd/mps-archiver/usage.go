package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
	usagearchive "github.com/mps-archiver/mps-archiver/usage"
)

// runUsage reads billed usage (DescribeUsageData) now, whatever
// usage.schedule says: the first run backfills the 365 days the API keeps.
func runUsage(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "usage", "[flags]", apiEnvironment, fmt.Sprintf(`Reads what MPS billed, per Beijing day, region, task type and specification,
into usage_daily: the %d days the API keeps for a region or type never read,
else from the last day read, reading again the last usage.refresh_days.
serve reads usage on usage.schedule, and sync when that schedule has come
round; this command reads it now. usage_runs records each run.

Exit statuses:
  0  every query answered and stored
  1  a query failed (the others were stored; the next run goes on from them)
  2  usage error (or usage.mode is off)
  3  skipped: another process is reading usage`, mps.UsageRetentionDays))
	var cf commonFlags
	cf.register(fs, env)
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	cfg, err := cf.loadValid(env, true)
	if err != nil {
		return err
	}
	if !cfg.UsageOn() {
		return usageErrorf("usage.mode is off (%s): nothing to read", "MPS_USAGE_MODE")
	}
	if _, err := cfg.UsageProblems(); err != nil {
		return err
	}
	log := newLogger(env.Stderr, cfg.Log)
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	a, err := newArchiver(ctx, cfg, log, st)
	if err != nil {
		return err
	}
	res, err := a.usage.Run(ctx, "command")
	if errors.Is(err, usagearchive.ErrLocked) {
		return &exitError{code: exitLocked, err: err}
	}
	a.metrics.ObserveUsage(res, err)
	logUsage(log, res, err)
	if err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("usage run %d failed: %w", res.RunID, err), logged: true}
	}
	fmt.Fprintf(env.Stdout, "Read usage %s..%s in %d request(s) (%s): %d figure(s) added, %d revised.\n",
		res.From.Format(time.DateOnly), res.To.Format(time.DateOnly), res.Requests, res.Duration.Round(time.Millisecond), res.Added, res.Revised)
	return nil
}
