package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/bench"
)

// runBench measures the archiver side by side with the physical limit and
// the naive design, in one run, on this machine (see internal/bench).
func runBench(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "bench", "[--tasks N] [--json FILE]")
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
	jsonOut := fs.String("json", "", "also write the report as JSON to this file (- for stdout)")
	if stop, err := parse(fs, args, 0); stop {
		return err
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
