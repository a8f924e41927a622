package main

import (
	"context"
	"fmt"

	"github.com/mps-archiver/mps-archiver/mps"
)

// runDetails manages the detail queue: `details requeue` reads again what
// was given up or could not be decided while MPS may still hold it.
func runDetails(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "details", "[flags] requeue", fmt.Sprintf(`Subcommands:
  requeue  queue again, for another reading, every task created in the last
           %d hours whose detail was given up after errors (a CAM policy
           without mps:DescribeTaskDetail, expired credentials, an outage)
           or could not be decided, and make every queued job claimable now.
           A running serve or the next sync reads them.`, int(mps.Window.Hours())))
	var cf commonFlags
	cf.register(fs, env)
	if stop, err := parse(fs, args, 1); stop {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "requeue" {
		return usageErrorf("want `mps-archiver details requeue` (see `mps-archiver details -h`)")
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
	requeued, woken, err := st.RequeueDetails(ctx, cfg.Details.Retention)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Requeued %d task(s) whose detail was given up or undecided; %d queued job(s) may be read at once.\n", requeued, woken)
	return nil
}
