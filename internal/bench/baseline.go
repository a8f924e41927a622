package bench

import (
	"cmp"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
)

// BaselineReport compares this binary's unthrottled cold sync with
// another's (the previous release), run alternately on the same
// population, each on a fresh database that binary migrated.
type BaselineReport struct {
	Binary      string `json:"binary"`
	Version     string `json:"version"`
	ThisVersion string `json:"this_version"`
	Tasks       int    `json:"tasks"`
	Rounds      int    `json:"rounds"`
	// The medians of the rounds.
	BaselineTasksPerSec float64 `json:"baseline_tasks_per_second"`
	ThisTasksPerSec     float64 `json:"this_tasks_per_second"`
	Ratio               float64 `json:"this_vs_baseline"`
}

// version is the first line of `bin version`.
func version(ctx context.Context, bin string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "", fmt.Errorf("run %s version: %w", bin, err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line, nil
}

// baseline cold-syncs the same population with the baseline binary and
// with this one, alternately (baseline, this, baseline, this …) so that
// the machine's drift falls on both alike.
func (r *benchRun) baseline(ctx context.Context) error {
	o := r.o
	if o.Baseline == "" {
		return nil
	}
	n := o.Tasks
	br := &BaselineReport{Binary: o.Baseline, Version: o.baselineVersion, ThisVersion: o.thisVersion, Tasks: n, Rounds: o.BaselineRounds}
	r.rep.Baseline = br
	r.say("cold sync of %d tasks, unthrottled: %s against this binary, %d rounds each, alternating, a fresh database each", n, o.baselineVersion, o.BaselineRounds)
	// On the real clock, as the standard cold sync: a frozen clock far
	// behind would be one a binary that holds the API's Date to its own
	// might not believe.
	now := time.Now().UTC().Truncate(time.Second)
	r.clock.Set(now)
	r.sim.SetTasks(simulator.Generate(genConfig(n), now))
	r.sim.SetRateLimit(-1)
	var base, this []Result
	for round := 1; round <= o.BaselineRounds; round++ {
		for _, side := range []struct {
			label, bin, version string
			into                *[]Result
		}{{"baseline", o.Baseline, o.baselineVersion, &base}, {"this", o.Self, o.thisVersion, &this}} {
			res, err := r.coldSyncWith(ctx, fmt.Sprintf("cold_sync_%s_%d", side.label, round), side.bin, n)
			if err != nil {
				return err
			}
			res.Note += ", " + side.version
			r.add(&res)
			*side.into = append(*side.into, res)
		}
	}
	br.BaselineTasksPerSec, br.ThisTasksPerSec = medianRate(base), medianRate(this)
	if br.BaselineTasksPerSec > 0 {
		br.Ratio = br.ThisTasksPerSec / br.BaselineTasksPerSec
	}
	return nil
}

// coldSyncWith is one unthrottled cold sync by bin on a database of its
// own, which bin migrates first (the binaries' schemas differ).
func (r *benchRun) coldSyncWith(ctx context.Context, name, bin string, n int) (Result, error) {
	if err := r.admin(ctx, "CREATE DATABASE "+name); err != nil {
		return Result{}, err
	}
	defer r.admin(context.WithoutCancel(ctx), "DROP DATABASE "+name+" WITH (FORCE)")
	url := r.pg.URL(name)
	if _, _, err := r.b.exec(ctx, name+" migrate", bin, url, "migrate", "up"); err != nil {
		return Result{}, err
	}
	st, err := storage.OpenBenchDB(ctx, url)
	if err != nil {
		return Result{}, err
	}
	defer st.Close()
	// The checkpoint that CREATE DATABASE and the migration started must
	// not fall inside one binary's run and not the other's.
	if err := r.admin(ctx, "CHECKPOINT"); err != nil {
		return Result{}, err
	}
	b := *r.b
	b.self, b.db, b.st, b.args = bin, url, st, nil
	res, err := b.sync(ctx, name, n, unthrottled, 4)
	if err != nil {
		return res, err
	}
	// BenchDB counts the partitions of tasks, and a schema before
	// migration 16 has none (pg_partition_tree of a plain table is empty).
	// The database is fresh: every row version counted is this run's.
	res.RowsWritten, err = rowWrites(ctx, url)
	return res, err
}

// rowWrites is the row versions ever written to tasks, partitioned or not.
func rowWrites(ctx context.Context, url string) (int64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("count row writes: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int64
	if err := conn.QueryRow(ctx, `
SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables
 WHERE relid = 'tasks'::regclass OR relid IN (SELECT relid FROM pg_partition_tree('tasks'))`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count row writes: %w", err)
	}
	return n, nil
}

// medianRate is the median tasks/s of runs.
func medianRate(runs []Result) float64 {
	if len(runs) == 0 {
		return 0
	}
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b Result) int { return cmp.Compare(a.TasksPerSec, b.TasksPerSec) })
	if len(s)%2 == 0 {
		return (s[len(s)/2-1].TasksPerSec + s[len(s)/2].TasksPerSec) / 2
	}
	return s[len(s)/2].TasksPerSec
}
