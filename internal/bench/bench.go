// Package bench is the harness of `mps-archiver bench`: it measures a sync
// side by side with the physical ceiling and the naive design, in one
// invocation on one machine, against a throwaway PostgreSQL and the
// in-process simulator, running the real binary as a child process so that
// its peak RSS is the archiver's alone. Its history mode builds archives
// of months through the real sync and measures what reading them costs.
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
	// History is the history mode's (--history).
	History *HistoryReport `json:"history,omitempty"`
	// Baseline is the cold sync side by side with another binary
	// (--baseline).
	Baseline *BaselineReport `json:"baseline,omitempty"`
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
	ProofLogOnVsOff      float64 `json:"cold_sync_proof_log_on_vs_off"`
	RateLimitedVsLimit   float64 `json:"rate_limited_vs_10000_per_second"`
	PartitionedVsCursor  float64 `json:"latency_partitioned_vs_sequential"`
	DetailRateVsLimit    float64 `json:"detail_capture_vs_rate_limit,omitempty"`
	IncrementalVsFull    float64 `json:"incremental_vs_full_list_requests,omitempty"`
	RSSLargeVsSmallRatio float64 `json:"rss_large_vs_small,omitempty"`
	// ParquetVsPgDump is pg_dump -Fc's size of a month over its Parquet
	// export's: how many times smaller the export is.
	ParquetVsPgDump float64 `json:"pg_dump_fc_vs_parquet_bytes,omitempty"`
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

	// History runs the history measurements instead of the others: an
	// archive of each of HistoryMonths (1 and 12) built through the real
	// sync at HistoryPerDay tasks a day (3,000), then the 30-day report,
	// a 12-month one and the dashboard's queries timed on each, the
	// median of HistoryReps (9) after a warm-up.
	History       bool
	HistoryPerDay int
	HistoryMonths []int
	HistoryReps   int
	// HistoryDetails is details.mode of the build ("failed": the outcome
	// rollups and panels get rows, for a twentieth of what "all" costs,
	// whose one commit an outcome makes the build hours long).
	HistoryDetails string
	// HistoryLedgerRuns pads each archive's run ledger to this many runs a
	// day (288, a 5-minute schedule; negative: the build's own runs only).
	HistoryLedgerRuns int
	// Dashboard is the Grafana dashboard JSON whose panels are timed
	// (deploy/grafana/mps-task-archive.json).
	Dashboard string

	// Baseline, when set, is another mps-archiver binary (the previous
	// release) whose cold sync of Tasks is measured against this one's,
	// BaselineRounds (3) times each, alternately.
	Baseline       string
	BaselineRounds int

	// Log receives progress lines.
	Log io.Writer

	dashboard                    *Dashboard
	thisVersion, baselineVersion string
}

// Defaults are the sizes of an Options left zero.
var Defaults = Options{Tasks: 100_000, NaiveTasks: 10_000, LatencyTasks: 30_000, Partitions: 8, VariantTasks: 30_000,
	HistoryPerDay: 3000, HistoryMonths: []int{1, 12}, HistoryReps: 9, HistoryDetails: "failed", HistoryLedgerRuns: 288,
	Dashboard: "deploy/grafana/mps-task-archive.json", BaselineRounds: 3}

// Run measures this machine and returns the report: a throwaway
// PostgreSQL and the in-process simulator are started, then each
// measurement is a step, in order.
func Run(ctx context.Context, o Options) (*Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	// What can fail in a second fails before minutes of building.
	if o.History {
		if o.dashboard, err = LoadDashboard(o.Dashboard); err != nil {
			return nil, err
		}
	}
	if o.Baseline != "" {
		if o.baselineVersion, err = version(ctx, o.Baseline); err != nil {
			return nil, fmt.Errorf("--baseline: %w", err)
		}
		if o.thisVersion, err = version(ctx, o.Self); err != nil {
			return nil, err
		}
	}
	r, stop, err := start(ctx, o)
	if err != nil {
		return nil, err
	}
	defer stop()
	if o.History {
		if err := r.history(ctx); err != nil {
			return nil, err
		}
		if err := r.baseline(ctx); err != nil {
			return nil, err
		}
		return &r.rep, nil
	}
	tasks := r.population(o.Tasks)
	for _, step := range []func(context.Context) error{
		func(ctx context.Context) error { return r.copyCeiling(ctx, tasks) },   // (a)
		func(ctx context.Context) error { return r.coldSync(ctx, len(tasks)) }, // (b)
		r.coldExport, // (l)
		func(ctx context.Context) error { return r.naiveUpserts(ctx, tasks) },     // (c)
		func(ctx context.Context) error { return r.resync(ctx, len(tasks)) },      // (d)
		func(ctx context.Context) error { return r.rateLimited(ctx, len(tasks)) }, // (e)
		r.latency,       // (f)
		r.variants,      // (h)
		r.incremental,   // (j)
		r.detailCapture, // (i)
		r.largeRSS,      // (g)
		r.baseline,      // (k)
	} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	r.ratios()
	return &r.rep, nil
}

// withDefaults fills what o leaves zero and checks the sizes.
func (o Options) withDefaults() (Options, error) {
	def := Defaults
	for _, f := range []struct{ v, d *int }{{&o.Tasks, &def.Tasks}, {&o.NaiveTasks, &def.NaiveTasks}, {&o.LatencyTasks, &def.LatencyTasks},
		{&o.Partitions, &def.Partitions}, {&o.VariantTasks, &def.VariantTasks}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.DetailFor <= 0 {
		o.DetailFor = 30 * time.Second
	}
	if o.Tasks < 1000 || o.NaiveTasks < 100 || o.LatencyTasks < 1000 {
		return o, errors.New("bench: --tasks and --latency-tasks must be at least 1000, --naive-tasks at least 100")
	}
	for _, f := range []struct{ v, d *int }{{&o.HistoryPerDay, &def.HistoryPerDay}, {&o.HistoryReps, &def.HistoryReps},
		{&o.HistoryLedgerRuns, &def.HistoryLedgerRuns}, {&o.BaselineRounds, &def.BaselineRounds}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if len(o.HistoryMonths) == 0 {
		o.HistoryMonths = def.HistoryMonths
	}
	// Each size is a database of its own, named by its months.
	o.HistoryMonths = slices.Compact(slices.Sorted(slices.Values(o.HistoryMonths)))
	o.HistoryDetails = cmp.Or(o.HistoryDetails, def.HistoryDetails)
	o.Dashboard = cmp.Or(o.Dashboard, def.Dashboard)
	switch {
	case o.HistoryPerDay < 1:
		return o, fmt.Errorf("bench: --history-per-day %d: want at least 1", o.HistoryPerDay)
	case o.HistoryReps < 1:
		return o, fmt.Errorf("bench: --history-reps %d: want at least 1", o.HistoryReps)
	case o.HistoryLedgerRuns > 86400:
		return o, fmt.Errorf("bench: --history-ledger-runs %d: want at most one a second (86400)", o.HistoryLedgerRuns)
	case o.BaselineRounds < 2:
		return o, fmt.Errorf("bench: --baseline-rounds %d: want at least 2", o.BaselineRounds)
	}
	switch o.HistoryDetails {
	case "all", "failed", "none":
	default:
		return o, fmt.Errorf("bench: --history-details %q: want all, failed or none", o.HistoryDetails)
	}
	for _, m := range o.HistoryMonths {
		if m < 1 || m > 120 {
			return o, fmt.Errorf("bench: --history-months %d: want 1 to 120", m)
		}
	}
	return o, nil
}

// benchRun is one bench's state: its options, what it started, the report
// being built and the results the ratios are made of.
type benchRun struct {
	o     Options
	b     *bencher
	pg    *pgtemp.Server
	st    *storage.BenchDB
	sim   *simulator.Server
	clock *simulator.Clock
	now   time.Time
	rep   Report

	copyRes, cold, coldOff, naiveRes, limited, seq, par, big Result
}

// start brings up a throwaway PostgreSQL with default durability, the
// schema, the simulator on loopback and a scratch directory; stop takes
// them down.
func start(ctx context.Context, o Options) (_ *benchRun, stop func(), err error) {
	var undo []func()
	stop = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	r := &benchRun{o: o}
	r.say("starting a throwaway PostgreSQL (default durability settings)")
	pg, err := pgtemp.Start(ctx, pgtemp.Options{Durable: true})
	if err != nil {
		return nil, nil, err
	}
	undo = append(undo, func() { pg.Stop(true) })
	r.pg = pg
	dbURL := pg.URL("postgres")
	if err := storage.MigrateUp(ctx, dbURL); err != nil {
		return nil, nil, err
	}
	if r.st, err = storage.OpenBenchDB(ctx, dbURL); err != nil {
		return nil, nil, err
	}
	undo = append(undo, r.st.Close)

	secretID, secretKey := simulator.NewCredentials("AKIDbench")
	r.now = time.Now().UTC().Truncate(time.Second)
	r.clock = simulator.NewClock(r.now, 0)
	r.sim = simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: r.clock}, nil)
	endpoint, stopSim, err := r.sim.ServeLoopback()
	if err != nil {
		return nil, nil, err
	}
	undo = append(undo, stopSim)
	tmp, err := os.MkdirTemp("", "mps-archiver-bench-")
	if err != nil {
		return nil, nil, err
	}
	undo = append(undo, func() { os.RemoveAll(tmp) })
	r.b = &bencher{self: o.Self, dir: tmp, db: dbURL, endpoint: endpoint, id: secretID, key: secretKey, st: r.st, sim: r.sim,
		details: "mode: none\n  rate_limit: 10000"}
	r.rep = Report{Tasks: o.Tasks, Machine: machine(), Database: "PostgreSQL (throwaway, loopback, default settings)"}
	return r, stop, nil
}

func (r *benchRun) say(format string, a ...any) { fmt.Fprintf(r.o.Log, "bench: "+format+"\n", a...) }

// population makes the simulator hold count generated tasks, and returns
// them as the list shows them.
func (r *benchRun) population(count int) []mps.Task {
	gen := simulator.DefaultGenConfig()
	gen.Tasks = count
	r.sim.SetTasks(simulator.Generate(gen, r.now))
	truth := r.sim.Truth()
	tasks := make([]mps.Task, 0, len(truth))
	for _, tt := range truth {
		raw, _ := json.Marshal(tt.TaskSimpleInfo)
		if t, ok := mps.DecodeTask(raw); ok {
			tasks = append(tasks, t)
		}
	}
	return tasks
}

// add records a result.
func (r *benchRun) add(res *Result) {
	if res.Seconds > 0 {
		res.TasksPerSec = float64(res.Tasks) / res.Seconds
	}
	r.rep.Results = append(r.rep.Results, *res)
	r.say("%-34s %8d tasks %8.2fs %9.0f tasks/s", res.Name, res.Tasks, res.Seconds, res.TasksPerSec)
}

// unthrottled is the client settings of a sync that the API does not slow.
const unthrottled = "rate_limit: 10000\n  burst: 100"

// copyCeiling is (a): COPY of the tasks in pages of 100, a commit each,
// the median of three (a 2-core machine's figures move by a third between
// runs).
func (r *benchRun) copyCeiling(ctx context.Context, tasks []mps.Task) error {
	r.say("(a) COPY ceiling, median of 3")
	pages := make([][]mps.Task, 0, len(tasks)/100+1)
	for i := 0; i < len(tasks); i += 100 {
		pages = append(pages, tasks[i:min(i+100, len(tasks))])
	}
	var copies []time.Duration
	var copyWAL int64
	for range 3 {
		wal0, err := r.st.WALPosition(ctx)
		if err != nil {
			return err
		}
		d, err := r.st.CopyCeiling(ctx, pages)
		if err != nil {
			return err
		}
		wal1, err := r.st.WALPosition(ctx)
		if err != nil {
			return err
		}
		copies, copyWAL = append(copies, d), wal1-wal0
	}
	slices.Sort(copies)
	r.copyRes = Result{Name: "copy_ceiling (1 commit per 100)", Tasks: len(tasks), Seconds: copies[1].Seconds(), RowsWritten: int64(len(tasks)), WALBytes: copyWAL, Note: "median of 3"}
	r.add(&r.copyRes)
	return nil
}

// coldSync is (b): a cold sync, unthrottled, the median of three; beside
// it the same with the proof log switched off, alternating (off first),
// for what the log costs; then verify of the archive the last one left.
func (r *benchRun) coldSync(ctx context.Context, n int) error {
	r.say("(b) cold sync, median of 3, alternating with 3 with the proof log off")
	var colds, offs []Result
	for i := range 6 {
		if i > 0 {
			if err := r.st.ResetArchive(ctx); err != nil {
				return err
			}
		}
		on := i%2 == 1
		if err := r.st.SetProofLog(ctx, on); err != nil {
			return err
		}
		name := "cold_sync_proof_log_off"
		if on {
			name = "cold_sync"
		}
		res, err := r.b.sync(ctx, name, n, unthrottled, 4)
		if err != nil {
			return err
		}
		if on {
			colds = append(colds, res)
		} else {
			offs = append(offs, res)
		}
	}
	byTime := func(a, b Result) int { return cmp.Compare(a.Seconds, b.Seconds) }
	slices.SortFunc(colds, byTime)
	slices.SortFunc(offs, byTime)
	r.cold, r.coldOff = colds[1], offs[1]
	r.cold.Note += ", median of 3"
	r.coldOff.Note += ", median of 3"
	r.add(&r.coldOff)
	r.add(&r.cold)
	return r.verify(ctx, "verify")
}

// verify times `mps-archiver verify` of the archive as it stands (its
// tasks/s are facts a second), with its peak RSS.
func (r *benchRun) verify(ctx context.Context, name string) error {
	leaves, err := r.st.ProofLeaves(ctx)
	if err != nil {
		return err
	}
	elapsed, rss, err := r.b.exec(ctx, name, r.b.self, r.b.db, "verify")
	if err != nil {
		return err
	}
	res := Result{Name: name, Tasks: int(leaves), Seconds: elapsed.Seconds(), PeakRSSBytes: rss,
		Note: fmt.Sprintf("%d facts of the proof log, peak RSS %d MiB", leaves, rss>>20)}
	r.add(&res)
	return nil
}

// naiveUpserts is (c): the naive baseline, an upsert a row.
func (r *benchRun) naiveUpserts(ctx context.Context, tasks []mps.Task) error {
	r.say("(c) naive per-row upserts")
	naive := tasks[:min(r.o.NaiveTasks, len(tasks))]
	d, err := r.st.NaiveUpsert(ctx, naive)
	if err != nil {
		return err
	}
	r.naiveRes = Result{Name: "naive_per_row_upsert", Tasks: len(naive), Seconds: d.Seconds(), RowsWritten: int64(len(naive))}
	r.add(&r.naiveRes)
	return nil
}

// resync is (d): a full re-sync of unchanged data, every page read again.
func (r *benchRun) resync(ctx context.Context, n int) error {
	r.say("(d) re-sync of unchanged data")
	r.b.args = []string{"--full"}
	res, err := r.b.sync(ctx, "resync_unchanged", n, unthrottled, 4)
	r.b.args = nil
	if err != nil {
		return err
	}
	r.add(&res)
	return nil
}

// rateLimited is (e): under the API's 100 req/s, with the client at 100.
func (r *benchRun) rateLimited(ctx context.Context, n int) error {
	r.say("(e) sync under the 100 req/s limit")
	if err := r.st.ResetArchive(ctx); err != nil {
		return err
	}
	r.sim.SetRateLimit(100)
	var err error
	if r.limited, err = r.b.sync(ctx, "rate_limited_100rps", n, "rate_limit: 100\n  burst: 1", 4); err != nil {
		return err
	}
	r.add(&r.limited)
	return nil
}

// latency is (f): 30 ms latency at 100 req/s, one cursor against
// partitions.
func (r *benchRun) latency(ctx context.Context) error {
	r.say("(f) 30 ms API latency, 100 req/s: sequential cursor vs %d partitions", r.o.Partitions)
	lat := r.population(r.o.LatencyTasks)
	r.sim.SetFaults(simulator.Faults{Latency: 30 * time.Millisecond})
	defer func() { r.sim.SetFaults(simulator.Faults{}); r.sim.SetRateLimit(-1) }()
	var err error
	if err = r.st.ResetArchive(ctx); err != nil {
		return err
	}
	if r.seq, err = r.b.sync(ctx, "latency30ms_sequential", len(lat), "rate_limit: 100\n  burst: 1", 1); err != nil {
		return err
	}
	r.add(&r.seq)
	if err = r.st.ResetArchive(ctx); err != nil {
		return err
	}
	if r.par, err = r.b.sync(ctx, fmt.Sprintf("latency30ms_%d_partitions", r.o.Partitions), len(lat), "rate_limit: 100\n  burst: 1", r.o.Partitions); err != nil {
		return err
	}
	r.add(&r.par)
	return nil
}

// variants is (h): requests per run against each API variant, a cold run
// then a steady (full) one that uses what the cold one learned.
func (r *benchRun) variants(ctx context.Context) error {
	n := r.o.VariantTasks
	if n <= 0 {
		return nil
	}
	r.say("(h) requests per run against each API variant, %d tasks, default settings: a cold run, then a steady one", n)
	r.population(n)
	defer r.sim.SetVariant(simulator.Variant{})
	for _, v := range benchVariants {
		r.sim.SetVariant(v)
		if err := r.st.ResetArchive(ctx); err != nil {
			return err
		}
		for _, phase := range []string{"cold", "steady"} {
			if phase == "steady" {
				r.b.args = []string{"--full"}
			}
			res, err := r.b.sync(ctx, "variant_"+v.String()+"_"+phase, n, unthrottled, 4)
			r.b.args = nil
			if err != nil {
				return err
			}
			r.add(&res)
		}
	}
	return nil
}

// incremental is (j): the steady state, an incremental run next to a full
// one over the same 1,000 changes.
func (r *benchRun) incremental(ctx context.Context) error {
	n := r.o.IncrementalTasks
	if n <= 0 {
		return nil
	}
	r.say("(j) steady state: %d tasks, then 500 new tasks and 500 long-running ones finishing in the next hour; an incremental run next to a full one", n)
	r.sim.SetTasks(withChanges(simulator.Generate(genConfig(n), r.now), r.now))
	if err := r.st.ResetArchive(ctx); err != nil {
		return err
	}
	first, err := r.b.sync(ctx, "incremental_setup_full", n, unthrottled, 4)
	if err != nil {
		return err
	}
	r.add(&first)
	r.clock.Advance(time.Hour)
	defer r.clock.Advance(-time.Hour)
	inc, err := r.b.sync(ctx, "steady_incremental", n+1000, unthrottled, 4)
	if err != nil {
		return err
	}
	inc.Note = "1,000 changes"
	r.add(&inc)
	r.b.args = []string{"--full"}
	full, err := r.b.sync(ctx, "steady_full", n+1000, unthrottled, 4)
	r.b.args = nil
	if err != nil {
		return err
	}
	full.Note = "the same state, sync --full"
	r.add(&full)
	if full.APIRequests > 0 {
		r.rep.Ratios.IncrementalVsFull = float64(inc.APIRequests-inc.DetailRequests) / float64(full.APIRequests-full.DetailRequests)
	}
	return nil
}

// detailCapture is (i): a backlog of details read at the API's 100/s for
// DetailFor.
func (r *benchRun) detailCapture(ctx context.Context) error {
	n := r.o.DetailTasks
	if n <= 0 {
		return nil
	}
	r.say("(i) detail capture of a %d-task backlog at details.rate_limit 100/s (the API's limit), for %s", n, r.o.DetailFor)
	r.population(n)
	if err := r.st.ResetArchive(ctx); err != nil {
		return err
	}
	if _, err := r.b.sync(ctx, "detail_backlog_fill", n, unthrottled, 4); err != nil {
		return err
	}
	pending, err := r.st.QueueAllDetails(ctx)
	if err != nil {
		return err
	}
	r.b.details = fmt.Sprintf("mode: all\n  rate_limit: 100\n  sync_budget: %s", r.o.DetailFor)
	res, err := r.b.sync(ctx, "detail_capture_100rps", int(pending), unthrottled, 4)
	r.b.details = "mode: none\n  rate_limit: 10000"
	if err != nil {
		return err
	}
	stored, err := r.st.CountDetails(ctx)
	if err != nil {
		return err
	}
	res.Tasks = int(stored)
	res.Note = fmt.Sprintf("%d pending at start; details/s vs 100/s configured", pending)
	r.add(&res)
	r.rep.Ratios.DetailRateVsLimit = res.TasksPerSec / 100
	return nil
}

// largeRSS is (g): a cold sync of RSSTasks, for peak RSS.
func (r *benchRun) largeRSS(ctx context.Context) error {
	if r.o.RSSTasks <= 0 {
		return nil
	}
	r.say("(g) cold sync of %d tasks for peak RSS", r.o.RSSTasks)
	large := r.population(r.o.RSSTasks)
	if err := r.st.ResetArchive(ctx); err != nil {
		return err
	}
	var err error
	if r.big, err = r.b.sync(ctx, "cold_sync_large", len(large), unthrottled, 4); err != nil {
		return err
	}
	r.add(&r.big)
	return r.verify(ctx, "verify_large")
}

// ratios compares the measurements with each other.
func (r *benchRun) ratios() {
	q := &r.rep.Ratios
	q.SyncVsCopy = r.cold.TasksPerSec / r.copyRes.TasksPerSec
	q.SyncVsNaive = r.cold.TasksPerSec / r.naiveRes.TasksPerSec
	q.ProofLogOnVsOff = r.cold.TasksPerSec / r.coldOff.TasksPerSec
	q.RateLimitedVsLimit = r.limited.TasksPerSec / 10_000
	q.PartitionedVsCursor = r.par.TasksPerSec / r.seq.TasksPerSec
	if r.big.PeakRSSBytes > 0 && r.cold.PeakRSSBytes > 0 {
		q.RSSLargeVsSmallRatio = float64(r.big.PeakRSSBytes) / float64(r.cold.PeakRSSBytes)
	}
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
	elapsed, rss, err := b.exec(ctx, name, b.self, b.db, append([]string{"sync", "--config", cfg}, b.args...)...)
	if err != nil {
		return Result{}, err
	}
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
	if rep.History == nil {
		writeRatios(w, rep)
	} else {
		writeHistory(w, rep.History)
	}
	if rep.Baseline != nil {
		writeBaseline(w, rep.Baseline)
	}
}

// writeRatios prints the standard measurements' ratios against their
// targets.
func writeRatios(w io.Writer, rep *Report) {
	r := rep.Ratios
	largest := 0
	for _, res := range rep.Results {
		largest = max(largest, res.Tasks)
	}
	small := largest < TargetTasks
	verdict := judge(small)
	fmt.Fprintf(w, "\ncold sync / COPY ceiling:            %.0f%%   (target >= 60%%: %s)\n", 100*r.SyncVsCopy, verdict(r.SyncVsCopy >= 0.6))
	fmt.Fprintf(w, "cold sync / naive per-row upsert:    %.1fx   (target >= 10x: %s)\n", r.SyncVsNaive, verdict(r.SyncVsNaive >= 10))
	fmt.Fprintf(w, "under 100 req/s / 10,000 tasks/s:    %.1f%%   (target >= 95%%: %s)\n", 100*r.RateLimitedVsLimit, verdict(r.RateLimitedVsLimit >= 0.95))
	fmt.Fprintf(w, "30 ms latency, partitions / cursor:  %.2fx   (target >= 3x: %s)\n", r.PartitionedVsCursor, verdict(r.PartitionedVsCursor >= 3))
	if r.ParquetVsPgDump > 0 {
		fmt.Fprintf(w, "month as Parquet vs pg_dump -Fc:     %.2fx smaller\n", r.ParquetVsPgDump)
	}
	if r.ProofLogOnVsOff > 0 {
		fmt.Fprintf(w, "cold sync, proof log on / off:       %.2fx   (target >= 0.9x: %s)\n", r.ProofLogOnVsOff, verdict(r.ProofLogOnVsOff >= 0.9))
	}
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

// exec runs bin with args as a child process against the database db and
// the simulator, and returns how long it ran and its peak RSS.
func (b *bencher) exec(ctx context.Context, name, bin, db string, args ...string) (time.Duration, int64, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + b.dir,
		"DATABASE_URL=" + db, "MPS_ENDPOINT=" + b.endpoint,
		"TENCENTCLOUD_SECRET_ID=" + b.id, "TENCENTCLOUD_SECRET_KEY=" + b.key,
		// A sync reads billed usage when it is due (the first time: a
		// backfill of 90 requests): not what a sync's figures measure, and
		// an older binary (--baseline) has none. By variable, which an
		// older binary ignores, where a config key would be refused.
		"MPS_USAGE_MODE=off",
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	// getrusage's maxrss would count this (large) process's memory, which
	// the child shares until exec; VmHWM of the child's own address space,
	// sampled until it exits, does not.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var rss int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %s failed: %v: %s", name, args[0], err, strings.TrimSpace(stderr.String()))
			}
			return time.Since(start), rss, nil
		case <-tick.C:
			rss = max(rss, vmHWM(cmd.Process.Pid))
		}
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

// judge returns how a target reads in a report: "met", "MISSED", or, at
// sizes too small for the target to be judged, "not judged".
func judge(small bool) func(met bool) string {
	return func(met bool) string {
		switch {
		case small:
			return "not judged"
		case met:
			return "met"
		}
		return "MISSED"
	}
}
