// Package bench is the harness of `mps-archiver bench`: it measures a sync
// side by side with the physical ceiling and the naive design, in one
// invocation on one machine, against a throwaway PostgreSQL and the
// in-process simulator, running the real binary as a child process so that
// its peak RSS is the archiver's alone.
package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/pgtemp"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
)

// Report is the machine-readable result of `mps-archiver bench`.
type Report struct {
	Tasks    int      `json:"tasks"`
	Machine  string   `json:"machine"`
	Results  []Result `json:"results"`
	Ratios   Ratios   `json:"ratios"`
	Database string   `json:"database"`
}

// Result is one measurement.
type Result struct {
	Name        string  `json:"name"`
	Tasks       int     `json:"tasks"`
	Seconds     float64 `json:"seconds"`
	TasksPerSec float64 `json:"tasks_per_second"`
	APIRequests int64   `json:"api_requests,omitempty"`
	// DetailRequests are the DescribeTaskDetail share of APIRequests.
	DetailRequests int64  `json:"detail_requests,omitempty"`
	RowsWritten    int64  `json:"task_rows_written"`
	WALBytes       int64  `json:"wal_bytes,omitempty"`
	PeakRSSBytes   int64  `json:"peak_rss_bytes,omitempty"`
	Note           string `json:"note,omitempty"`
}

// Ratios compare measurements with each other and with their targets.
type Ratios struct {
	SyncVsCopy           float64 `json:"cold_sync_vs_copy_ceiling"`
	SyncVsNaive          float64 `json:"cold_sync_vs_naive"`
	RateLimitedVsLimit   float64 `json:"rate_limited_vs_10000_per_second"`
	PartitionedVsCursor  float64 `json:"latency_partitioned_vs_sequential"`
	DetailRateVsLimit    float64 `json:"detail_capture_vs_rate_limit,omitempty"`
	IncrementalVsFull    float64 `json:"incremental_vs_full_list_requests,omitempty"`
	RSSLargeVsSmallRatio float64 `json:"rss_large_vs_small,omitempty"`
}

// Options sizes a bench run. Zero values take the defaults noted.
type Options struct {
	// Self is the mps-archiver binary to run `sync` with (required).
	Self string
	// Tasks for the COPY ceiling, the cold sync and the re-sync (100,000).
	Tasks int
	// NaiveTasks for the naive per-row baseline (10,000).
	NaiveTasks int
	// LatencyTasks for the 30 ms latency runs (30,000).
	LatencyTasks int
	// RSSTasks, when set, adds a cold sync of that many tasks for peak RSS.
	RSSTasks int
	// Partitions of FINISH for the partitioned latency run (8).
	Partitions int
	// VariantTasks for the requests-per-run measurement against each API
	// variant (30,000; negative skips it).
	VariantTasks int
	// IncrementalTasks, when set, measures a steady-state incremental run
	// next to a full one over that many tasks and 1,000 changes.
	IncrementalTasks int
	// DetailTasks, when set, measures detail capture: that many tasks'
	// details queued, read for DetailFor at 100/s (peak RSS included).
	DetailTasks int
	DetailFor   time.Duration
	// Log receives progress lines.
	Log io.Writer
}

// Defaults are the sizes of an Options left zero.
var Defaults = Options{Tasks: 100_000, NaiveTasks: 10_000, LatencyTasks: 30_000, Partitions: 8, VariantTasks: 30_000}

// Run measures this machine and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	def := Defaults
	if o.Tasks == 0 {
		o.Tasks = def.Tasks
	}
	if o.NaiveTasks == 0 {
		o.NaiveTasks = def.NaiveTasks
	}
	if o.LatencyTasks == 0 {
		o.LatencyTasks = def.LatencyTasks
	}
	if o.Partitions == 0 {
		o.Partitions = def.Partitions
	}
	if o.VariantTasks == 0 {
		o.VariantTasks = def.VariantTasks
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.DetailFor <= 0 {
		o.DetailFor = 30 * time.Second
	}
	if o.Tasks < 1000 || o.NaiveTasks < 100 || o.LatencyTasks < 1000 {
		return nil, errors.New("bench: --tasks and --latency-tasks must be at least 1000, --naive-tasks at least 100")
	}
	n, naiveN, latencyN, rssN, partitions, variantN := &o.Tasks, &o.NaiveTasks, &o.LatencyTasks, &o.RSSTasks, &o.Partitions, &o.VariantTasks
	self := o.Self
	say := func(format string, a ...any) { fmt.Fprintf(o.Log, "bench: "+format+"\n", a...) }

	say("starting a throwaway PostgreSQL (default durability settings)")
	pg, err := pgtemp.Start(ctx, pgtemp.Options{Durable: true})
	if err != nil {
		return nil, err
	}
	defer pg.Stop(true)
	dbURL := pg.URL("postgres")
	if err := storage.MigrateUp(ctx, dbURL); err != nil {
		return nil, err
	}
	st, err := storage.OpenBenchDB(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer st.Close()

	secretID, secretKey := simulator.NewCredentials("AKIDbench")
	now := time.Now().UTC().Truncate(time.Second)
	clock := simulator.NewClock(now, 0)
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: clock}, nil)
	endpoint, stopSim, err := sim.ServeLoopback()
	if err != nil {
		return nil, err
	}
	defer stopSim()

	tmp, err := os.MkdirTemp("", "mps-archiver-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	b := &bencher{self: self, dir: tmp, db: dbURL, endpoint: endpoint, id: secretID, key: secretKey, st: st, sim: sim,
		details: "mode: none\n  rate_limit: 10000"}

	setPopulation := func(count int) []mps.Task {
		gen := simulator.DefaultGenConfig()
		gen.Tasks = count
		sim.SetTasks(simulator.Generate(gen, now))
		truth := sim.Truth()
		tasks := make([]mps.Task, 0, len(truth))
		for _, tt := range truth {
			raw, _ := json.Marshal(tt.TaskSimpleInfo)
			if t, ok := mps.DecodeTask(raw); ok {
				tasks = append(tasks, t)
			}
		}
		return tasks
	}
	rep := Report{Tasks: *n, Machine: machine(), Database: "PostgreSQL (throwaway, loopback, default settings)"}
	add := func(r *Result) {
		if r.Seconds > 0 {
			r.TasksPerSec = float64(r.Tasks) / r.Seconds
		}
		rep.Results = append(rep.Results, *r)
		say("%-34s %8d tasks %8.2fs %9.0f tasks/s", r.Name, r.Tasks, r.Seconds, r.TasksPerSec)
	}

	tasks := setPopulation(*n)
	pages := make([][]mps.Task, 0, len(tasks)/100+1)
	for i := 0; i < len(tasks); i += 100 {
		pages = append(pages, tasks[i:min(i+100, len(tasks))])
	}

	// (a) the ceiling and (b) a cold sync, unthrottled: each the median of
	// three, since a 2-core machine's figures move by a third between runs.
	say("(a) COPY ceiling, median of 3")
	var copies []time.Duration
	var copyWAL int64
	for range 3 {
		wal0, err := st.WALPosition(ctx)
		if err != nil {
			return nil, err
		}
		d, err := st.CopyCeiling(ctx, pages)
		if err != nil {
			return nil, err
		}
		wal1, err := st.WALPosition(ctx)
		if err != nil {
			return nil, err
		}
		copies, copyWAL = append(copies, d), wal1-wal0
	}
	slices.Sort(copies)
	copyRes := Result{Name: "copy_ceiling (1 commit per 100)", Tasks: len(tasks), Seconds: copies[1].Seconds(), RowsWritten: int64(len(tasks)), WALBytes: copyWAL, Note: "median of 3"}
	add(&copyRes)

	say("(b) cold sync, median of 3")
	var colds []Result
	for i := range 3 {
		if i > 0 {
			if err := st.ResetArchive(ctx); err != nil {
				return nil, err
			}
		}
		r, err := b.sync(ctx, "cold_sync", len(tasks), "rate_limit: 10000\n  burst: 100", 4)
		if err != nil {
			return nil, err
		}
		colds = append(colds, r)
	}
	slices.SortFunc(colds, func(a, b Result) int { return cmp.Compare(a.Seconds, b.Seconds) })
	cold := colds[1]
	cold.Note += ", median of 3"
	add(&cold)

	// (c) the naive baseline.
	say("(c) naive per-row upserts")
	naive := tasks[:min(*naiveN, len(tasks))]
	d, err := st.NaiveUpsert(ctx, naive)
	if err != nil {
		return nil, err
	}
	naiveRes := Result{Name: "naive_per_row_upsert", Tasks: len(naive), Seconds: d.Seconds(), RowsWritten: int64(len(naive))}
	add(&naiveRes)

	// (d) re-sync of unchanged data.
	say("(d) re-sync of unchanged data")
	b.args = []string{"--full"} // a full re-sync: every page read again
	resync, err := b.sync(ctx, "resync_unchanged", len(tasks), "rate_limit: 10000\n  burst: 100", 4)
	b.args = nil
	if err != nil {
		return nil, err
	}
	add(&resync)

	// (e) under the API's 100 req/s, with the client at 100 req/s.
	say("(e) sync under the 100 req/s limit")
	if err := st.ResetArchive(ctx); err != nil {
		return nil, err
	}
	sim.SetRateLimit(100)
	limited, err := b.sync(ctx, "rate_limited_100rps", len(tasks), "rate_limit: 100\n  burst: 1", 4)
	if err != nil {
		return nil, err
	}
	add(&limited)

	// (f) 30 ms latency at 100 req/s: one cursor vs partitions.
	say("(f) 30 ms API latency, 100 req/s: sequential cursor vs %d partitions", *partitions)
	lat := setPopulation(*latencyN)
	sim.SetFaults(simulator.Faults{Latency: 30 * time.Millisecond})
	if err := st.ResetArchive(ctx); err != nil {
		return nil, err
	}
	seq, err := b.sync(ctx, "latency30ms_sequential", len(lat), "rate_limit: 100\n  burst: 1", 1)
	if err != nil {
		return nil, err
	}
	add(&seq)
	if err := st.ResetArchive(ctx); err != nil {
		return nil, err
	}
	par, err := b.sync(ctx, fmt.Sprintf("latency30ms_%d_partitions", *partitions), len(lat), "rate_limit: 100\n  burst: 1", *partitions)
	if err != nil {
		return nil, err
	}
	add(&par)
	sim.SetFaults(simulator.Faults{})
	sim.SetRateLimit(-1)

	if *variantN > 0 {
		say("(h) requests per run against each API variant, %d tasks, default settings: a cold run, then a steady one", *variantN)
		setPopulation(*variantN)
		for _, v := range benchVariants {
			sim.SetVariant(v)
			if err := st.ResetArchive(ctx); err != nil {
				return nil, err
			}
			for _, phase := range []string{"cold", "steady"} {
				if phase == "steady" {
					b.args = []string{"--full"} // a full run that uses what the cold one learned
				}
				r, err := b.sync(ctx, "variant_"+v.String()+"_"+phase, *variantN, "rate_limit: 10000\n  burst: 100", 4)
				b.args = nil
				if err != nil {
					return nil, err
				}
				add(&r)
			}
		}
		sim.SetVariant(simulator.Variant{})
	}

	if o.IncrementalTasks > 0 {
		n := o.IncrementalTasks
		say("(j) steady state: %d tasks, then 500 new tasks and 500 long-running ones finishing in the next hour; an incremental run next to a full one", n)
		sim.SetTasks(withChanges(simulator.Generate(genConfig(n), now), now))
		if err := st.ResetArchive(ctx); err != nil {
			return nil, err
		}
		first, err := b.sync(ctx, "incremental_setup_full", n, "rate_limit: 10000\n  burst: 100", 4)
		if err != nil {
			return nil, err
		}
		add(&first)
		clock.Advance(time.Hour)
		inc, err := b.sync(ctx, "steady_incremental", n+1000, "rate_limit: 10000\n  burst: 100", 4)
		if err != nil {
			return nil, err
		}
		inc.Note = "1,000 changes"
		add(&inc)
		b.args = []string{"--full"}
		full, err := b.sync(ctx, "steady_full", n+1000, "rate_limit: 10000\n  burst: 100", 4)
		b.args = nil
		if err != nil {
			return nil, err
		}
		full.Note = "the same state, sync --full"
		add(&full)
		clock.Advance(-time.Hour)
		if full.APIRequests > 0 {
			rep.Ratios.IncrementalVsFull = float64(inc.APIRequests-inc.DetailRequests) / float64(full.APIRequests-full.DetailRequests)
		}
	}

	if o.DetailTasks > 0 {
		say("(i) detail capture of a %d-task backlog at details.rate_limit 100/s (the API's limit), for %s", o.DetailTasks, o.DetailFor)
		setPopulation(o.DetailTasks)
		if err := st.ResetArchive(ctx); err != nil {
			return nil, err
		}
		if _, err := b.sync(ctx, "detail_backlog_fill", o.DetailTasks, "rate_limit: 10000\n  burst: 100", 4); err != nil {
			return nil, err
		}
		pending, err := st.QueueAllDetails(ctx)
		if err != nil {
			return nil, err
		}
		b.details = fmt.Sprintf("mode: all\n  rate_limit: 100\n  sync_budget: %s", o.DetailFor)
		r, err := b.sync(ctx, "detail_capture_100rps", int(pending), "rate_limit: 10000\n  burst: 100", 4)
		b.details = "mode: none\n  rate_limit: 10000"
		if err != nil {
			return nil, err
		}
		stored, err := st.CountDetails(ctx)
		if err != nil {
			return nil, err
		}
		r.Tasks = int(stored)
		r.Note = fmt.Sprintf("%d pending at start; details/s vs 100/s configured", pending)
		add(&r)
		rep.Ratios.DetailRateVsLimit = r.TasksPerSec / 100
	}

	var big Result
	if *rssN > 0 {
		say("(g) cold sync of %d tasks for peak RSS", *rssN)
		large := setPopulation(*rssN)
		if err := st.ResetArchive(ctx); err != nil {
			return nil, err
		}
		big, err = b.sync(ctx, "cold_sync_large", len(large), "rate_limit: 10000\n  burst: 100", 4)
		if err != nil {
			return nil, err
		}
		add(&big)
	}

	detailRatio, incRatio := rep.Ratios.DetailRateVsLimit, rep.Ratios.IncrementalVsFull
	rep.Ratios = Ratios{
		DetailRateVsLimit:   detailRatio,
		IncrementalVsFull:   incRatio,
		SyncVsCopy:          cold.TasksPerSec / copyRes.TasksPerSec,
		SyncVsNaive:         cold.TasksPerSec / naiveRes.TasksPerSec,
		RateLimitedVsLimit:  limited.TasksPerSec / 10_000,
		PartitionedVsCursor: par.TasksPerSec / seq.TasksPerSec,
	}
	if big.PeakRSSBytes > 0 && cold.PeakRSSBytes > 0 {
		rep.Ratios.RSSLargeVsSmallRatio = float64(big.PeakRSSBytes) / float64(cold.PeakRSSBytes)
	}
	return &rep, nil
}

type bencher struct {
	self, dir, db, endpoint, id, key string
	// details is the YAML of the details section: capture is off unless a
	// measurement is about it, so that the list-sync figures are the
	// list's alone.
	details string
	// args are extra arguments of the next sync.
	args []string
	st   *storage.BenchDB
	sim  *simulator.Server
}

// sync runs `mps-archiver sync` as a child process, so its peak RSS is the
// archiver's alone, and measures what it did.
func (b *bencher) sync(ctx context.Context, name string, tasks int, mpsYAML string, partitions int) (Result, error) {
	cfg := filepath.Join(b.dir, name+".yaml")
	body := fmt.Sprintf("mps:\n  %s\n  max_attempts: 10\nsync:\n  partitions: %d\ndetails:\n  %s\nlog:\n  level: warn\n", mpsYAML, partitions, b.details)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return Result{}, err
	}
	time.Sleep(1100 * time.Millisecond) // let the statistics collector catch up
	rows0, err := b.st.TaskRowWrites(ctx)
	if err != nil {
		return Result{}, err
	}
	wal0, err := b.st.WALPosition(ctx)
	if err != nil {
		return Result{}, err
	}
	stats0 := b.sim.Stats()

	cmd := exec.CommandContext(ctx, b.self, append([]string{"sync", "--config", cfg}, b.args...)...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + b.dir,
		"DATABASE_URL=" + b.db, "MPS_ENDPOINT=" + b.endpoint,
		"TENCENTCLOUD_SECRET_ID=" + b.id, "TENCENTCLOUD_SECRET_KEY=" + b.key,
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, err
	}
	// getrusage's maxrss would count this (large) process's memory, which
	// the child shares until exec; VmHWM of the child's own address space,
	// sampled until it exits, does not.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var rss int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-done:
			if err != nil {
				return Result{}, fmt.Errorf("%s: sync failed: %v: %s", name, err, strings.TrimSpace(stderr.String()))
			}
			break wait
		case <-tick.C:
			rss = max(rss, vmHWM(cmd.Process.Pid))
		}
	}
	elapsed := time.Since(start)
	wal1, err := b.st.WALPosition(ctx)
	if err != nil {
		return Result{}, err
	}
	time.Sleep(1100 * time.Millisecond)
	rows1, err := b.st.TaskRowWrites(ctx)
	if err != nil {
		return Result{}, err
	}
	stats1 := b.sim.Stats()
	return Result{
		Name: name, Tasks: tasks, Seconds: elapsed.Seconds(),
		APIRequests:    stats1.Requests - stats0.Requests,
		DetailRequests: stats1.RequestsByStatus["detail"] - stats0.RequestsByStatus["detail"],
		RowsWritten:    rows1 - rows0, WALBytes: wal1 - wal0, PeakRSSBytes: rss,
		Note: fmt.Sprintf("partitions=%d", partitions),
	}, nil
}

// benchVariants are the readings of DescribeTasks the bench measures: the
// reference, each documented departure alone, and the international site's
// tokens with the image API's echoed end.
var benchVariants = []simulator.Variant{
	{},
	{Filters: simulator.FiltersFinishTime},
	{Filters: simulator.FiltersIgnored},
	{Filters: simulator.FiltersUnsupported},
	{DefaultStart72h: true},
	{ExclusiveTokens: true},
	{EchoLastToken: true},
	{ExclusiveTokens: true, EchoLastToken: true},
}

// TargetTasks is the smallest run whose ratios are judged against their
// targets.
const TargetTasks = 20000

// Write prints the report as a table with the ratios, their targets and
// whether each was met (not judged below TargetTasks).
func Write(w io.Writer, rep *Report) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "mps-archiver bench on %s, %s\n\n", rep.Machine, rep.Database)
	fmt.Fprintln(tw, "measurement\ttasks\tseconds\ttasks/s\tAPI requests\ttask rows written\tWAL bytes\tpeak RSS\t")
	for _, r := range rep.Results {
		rss := "-"
		if r.PeakRSSBytes > 0 {
			rss = fmt.Sprintf("%.1f MiB", float64(r.PeakRSSBytes)/(1<<20))
		}
		wal := "-"
		if r.WALBytes > 0 {
			wal = fmt.Sprint(r.WALBytes)
		}
		req := "-"
		if r.APIRequests > 0 {
			req = fmt.Sprint(r.APIRequests)
			if r.DetailRequests > 0 {
				req = fmt.Sprintf("%d list + %d detail", r.APIRequests-r.DetailRequests, r.DetailRequests)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%s\t%d\t%s\t%s\t\n", r.Name, r.Tasks, r.Seconds, r.TasksPerSec, req, r.RowsWritten, wal, rss)
	}
	tw.Flush()
	r := rep.Ratios
	largest := 0
	for _, res := range rep.Results {
		largest = max(largest, res.Tasks)
	}
	small := largest < TargetTasks
	verdict := func(met bool) string {
		switch {
		case small:
			return "not judged"
		case met:
			return "met"
		}
		return "MISSED"
	}
	fmt.Fprintf(w, "\ncold sync / COPY ceiling:            %.0f%%   (target >= 60%%: %s)\n", 100*r.SyncVsCopy, verdict(r.SyncVsCopy >= 0.6))
	fmt.Fprintf(w, "cold sync / naive per-row upsert:    %.1fx   (target >= 10x: %s)\n", r.SyncVsNaive, verdict(r.SyncVsNaive >= 10))
	fmt.Fprintf(w, "under 100 req/s / 10,000 tasks/s:    %.1f%%   (target >= 95%%: %s)\n", 100*r.RateLimitedVsLimit, verdict(r.RateLimitedVsLimit >= 0.95))
	fmt.Fprintf(w, "30 ms latency, partitions / cursor:  %.2fx   (target >= 3x: %s)\n", r.PartitionedVsCursor, verdict(r.PartitionedVsCursor >= 3))
	if r.IncrementalVsFull > 0 {
		fmt.Fprintf(w, "incremental / full DescribeTasks:     %.2f%%   (target <= 2%%: %s)\n", 100*r.IncrementalVsFull, verdict(r.IncrementalVsFull <= 0.02))
	}
	if r.DetailRateVsLimit > 0 {
		fmt.Fprintf(w, "detail capture / its 100/s limit:    %.1f%%   (target >= 95%%: %s)\n", 100*r.DetailRateVsLimit, verdict(r.DetailRateVsLimit >= 0.95))
	}
	if small {
		fmt.Fprintf(w, "\nThe targets are judged from %d tasks: below that, fixed costs (process start, connections, the\n"+
			"first pages) dominate every ratio. Run with --tasks 100000 for figures to compare with the README's.\n", TargetTasks)
	}
	if r.RSSLargeVsSmallRatio > 0 {
		fmt.Fprintf(w, "peak RSS large / small run:          %.2fx\n", r.RSSLargeVsSmallRatio)
	}
}

// vmHWM reads a process's peak resident set size from /proc.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb * 1024
		}
	}
	return 0
}

func machine() string {
	host, _ := os.Hostname()
	cpus := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = fmt.Sprint(strings.Count(string(b), "processor\t:"))
	}
	return fmt.Sprintf("%s (%s CPUs)", host, cpus)
}

func genConfig(n int) simulator.GenConfig {
	gen := simulator.DefaultGenConfig()
	gen.Tasks = n
	return gen
}

// withChanges adds what the hour after now brings: 500 tasks in flight for
// days that finish, and 500 new tasks that run to the end.
func withChanges(tasks []*simulator.Task, now time.Time) []*simulator.Task {
	for i := range 500 {
		c := now.Add(-time.Duration(24+i%96) * time.Hour)
		tasks = append(tasks, &simulator.Task{ID: fmt.Sprintf("long-%04d", i), Type: "WorkflowTask", SubTaskTypes: []string{"action-trans"},
			Create: c.UnixNano(), Begin: c.Add(time.Minute).UnixNano(), Finish: now.Add(time.Duration(1+i%50) * time.Minute).UnixNano()})
		c = now.Add(time.Duration(1+i%45) * time.Minute)
		tasks = append(tasks, &simulator.Task{ID: fmt.Sprintf("new-%04d", i), Type: "EditMediaTask", SubTaskTypes: []string{"action-editmedia"},
			Create: c.UnixNano(), Begin: c.Add(time.Minute).UnixNano(), Finish: c.Add(5 * time.Minute).UnixNano()})
	}
	return tasks
}
