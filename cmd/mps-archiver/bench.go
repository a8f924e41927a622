package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/bench"
)

// runBench measures the archiver side by side with the physical limit and
// the naive design, in one run, on this machine (see internal/bench).
func runBench(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "bench", "[--tasks N] [--history [--history-per-day N] [--history-months 1,12]] [--baseline BINARY] [--json FILE]")
	def := bench.Defaults
	o := bench.Options{Log: env.Stderr}
	fs.IntVar(&o.Tasks, "tasks", def.Tasks, "tasks for the COPY ceiling, the cold sync and the re-sync")
	fs.IntVar(&o.NaiveTasks, "naive-tasks", def.NaiveTasks, "tasks for the naive per-row baseline")
	fs.IntVar(&o.LatencyTasks, "latency-tasks", def.LatencyTasks, "tasks for the 30 ms latency runs")
	fs.IntVar(&o.RSSTasks, "rss-tasks", 0, "also cold-sync this many tasks (e.g. 1000000) to show peak RSS is flat")
	fs.IntVar(&o.Partitions, "partitions", def.Partitions, "FINISH partitions for the partitioned latency run")
	fs.IntVar(&o.VariantTasks, "variant-tasks", def.VariantTasks, "tasks for the requests-per-run measurement against each API variant (negative: skip)")
	fs.IntVar(&o.IncrementalTasks, "incremental-tasks", 0, "also measure a steady-state incremental run next to a full one over this many tasks (e.g. 200000) and 1,000 changes")
	fs.IntVar(&o.DetailTasks, "detail-tasks", 0, "also measure detail capture with a backlog of this many tasks (e.g. 100000)")
	fs.DurationVar(&o.DetailFor, "detail-for", 30*time.Second, "how long the detail capture measurement reads")
	fs.BoolVar(&o.History, "history", false, "run only the history measurements: build archives of --history-months through the real sync, then time the 30-day report, a 12-month one and the dashboard's queries on each")
	fs.IntVar(&o.HistoryPerDay, "history-per-day", def.HistoryPerDay, "tasks a day in the history archives (targets are judged from 3000; e.g. 300 for a smoke test)")
	months := fs.String("history-months", "1,12", "sizes of the history archives in months, comma-separated")
	fs.IntVar(&o.HistoryReps, "history-reps", def.HistoryReps, "timed repetitions of each read, after a warm-up (the median is reported)")
	fs.StringVar(&o.HistoryDetails, "history-details", def.HistoryDetails, "details.mode of the syncs that build the history archives: all (an outcome a commit: hours at 3000 a day), failed or none")
	fs.IntVar(&o.HistoryLedgerRuns, "history-ledger-runs", def.HistoryLedgerRuns, "pad each archive's run ledger to this many runs a day, as a schedule keeps (288: every 5 minutes; -1: the build's own runs only)")
	fs.StringVar(&o.Dashboard, "dashboard", def.Dashboard, "the Grafana dashboard JSON whose panel queries the history mode times")
	fs.StringVar(&o.Baseline, "baseline", "", "another mps-archiver binary (the previous release): also cold-sync --tasks with it and with this one, alternately, and compare")
	fs.IntVar(&o.BaselineRounds, "baseline-rounds", def.BaselineRounds, "cold syncs of each binary with --baseline (at least 2)")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file (- for stdout)")
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	for _, f := range strings.Split(*months, ",") {
		m, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || m < 1 {
			return usageErrorf("--history-months %q: want whole months, comma-separated (1,12)", *months)
		}
		o.HistoryMonths = append(o.HistoryMonths, m)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	o.Self = self
	rep, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	bench.Write(env.Stdout, rep)
	if *jsonOut == "" {
		return nil
	}
	var w io.Writer = env.Stdout
	if *jsonOut != "-" {
		f, err := os.Create(*jsonOut)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
