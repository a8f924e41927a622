package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
)

// The bench reads the archive with pgx itself, where everything else goes
// through storage: the dashboard's SQL comes from a file at run time, and
// is measured as Grafana sends it, not as a method of the Store.

// HistoryReport is the history mode's result: archives of several months
// built through the real sync, and what reading each costs.
type HistoryReport struct {
	PerDay int `json:"tasks_per_day"`
	// Details is the details.mode of the syncs that built the archives.
	Details string `json:"details_mode"`
	// LedgerRunsPerDay is the rate the run ledger was padded to (0: the
	// build's own runs only).
	LedgerRunsPerDay int           `json:"ledger_runs_per_day"`
	Repetitions      int           `json:"repetitions"`
	Dashboard        string        `json:"dashboard"`
	Archives         []Archive     `json:"archives"`
	Ratios           HistoryRatios `json:"ratios"`
}

// Archive is one archive of the history mode: how it was built and what
// reading it cost. Timings are the medians of the repetitions.
type Archive struct {
	Months       int       `json:"months"`
	Since        time.Time `json:"since"`
	Until        time.Time `json:"until"`
	Tasks        int64     `json:"tasks"`
	Syncs        int       `json:"syncs"`
	BuildSeconds float64   `json:"build_seconds"`
	LedgerRuns   int64     `json:"ledger_runs"`
	Bytes        int64     `json:"database_bytes"`
	// Report30Tasks is the 30-day report's total: the same in every
	// archive, since the last 30 days are generated alike.
	Report30Tasks int64   `json:"report_30d_tasks"`
	Report30      Timing  `json:"report_30d"`
	Report12      *Timing `json:"report_12mo_by_month,omitempty"`
	Report12ByDay *Timing `json:"report_12mo_by_day,omitempty"`
	// Dashboard is the sum of the panels' queries over the last 30 days.
	Dashboard Timing        `json:"dashboard_30d"`
	Panels    []PanelTiming `json:"dashboard_panels"`
	// Variables are the template variables' queries, which Grafana runs
	// when the dashboard loads (not in Dashboard).
	Variables Timing `json:"dashboard_variables"`
}

// Timing is a measured duration over repetitions.
type Timing struct {
	Median float64 `json:"median_seconds"`
	Min    float64 `json:"min_seconds"`
	Max    float64 `json:"max_seconds"`
}

// PanelTiming is one dashboard panel's query.
type PanelTiming struct {
	Title  string  `json:"title"`
	Median float64 `json:"median_seconds"`
	Rows   int     `json:"rows"`
}

// HistoryRatios compare the archives: the largest with the smallest, and
// on the largest a 12-month report with a 30-day one.
type HistoryRatios struct {
	SmallMonths     int     `json:"smallest_months"`
	LargeMonths     int     `json:"largest_months"`
	Report30        float64 `json:"report_30d_largest_vs_smallest,omitempty"`
	Dashboard30     float64 `json:"dashboard_30d_largest_vs_smallest,omitempty"`
	Report12Vs30    float64 `json:"report_12mo_vs_30d,omitempty"`
	Report12DayVs30 float64 `json:"report_12mo_by_day_vs_30d,omitempty"`
}

// TargetPerDay is the smallest daily rate whose history ratios are judged:
// below it, fixed costs (a round trip, planning) hide what grows with the
// archive.
const TargetPerDay = 3000

// historyStep is the simulated time one sync of the build covers: a day,
// so that each run lists a day of tasks and the archive grows as a
// scheduled one does (but for the run ledger, which prepareArchive pads).
const historyStep = 24 * time.Hour

// historyArchive is an archive being built or measured.
type historyArchive struct {
	res  Archive
	name string
	url  string
	st   *storage.Store
	conn *pgx.Conn
	// panels are the dashboard's queries expanded for the last 30 days;
	// variableSQL its variables' queries.
	panels, variableSQL []string

	report30, report12, report12ByDay, dashboard, variables []time.Duration
	panelTimes                                              [][]time.Duration
}

func (a *historyArchive) close() {
	if a.st != nil {
		a.st.Close()
	}
	if a.conn != nil {
		a.conn.Close(context.Background())
	}
}

// history is the history mode: build an archive of each size through the
// real sync, then time the reads on all of them, interleaved so that the
// machine's drift falls on each alike.
func (r *benchRun) history(ctx context.Context) error {
	o := r.o
	h := &HistoryReport{PerDay: o.HistoryPerDay, Details: o.HistoryDetails, LedgerRunsPerDay: max(o.HistoryLedgerRuns, 0),
		Repetitions: o.HistoryReps, Dashboard: o.dashboard.Path}
	r.rep.History = h
	var archives []*historyArchive
	defer func() {
		for _, a := range archives {
			a.close()
		}
	}()
	for _, months := range o.HistoryMonths {
		a, err := r.buildArchive(ctx, months)
		if a != nil {
			archives = append(archives, a)
		}
		if err != nil {
			return err
		}
	}
	for _, a := range archives {
		if err := r.prepareArchive(ctx, a); err != nil {
			return err
		}
	}
	r.say("timing the reads: a warm-up, then %d repetitions on each archive in turn", o.HistoryReps)
	for rep := 0; rep <= o.HistoryReps; rep++ {
		for _, a := range archives {
			if err := a.measure(ctx, rep > 0); err != nil {
				return fmt.Errorf("%s: %w", a.name, err)
			}
		}
	}
	for _, a := range archives {
		a.summarise()
		h.Archives = append(h.Archives, a.res)
	}
	h.Ratios = historyRatios(h.Archives)
	return nil
}

// buildArchive creates a database and fills it through the real sync, a
// simulated day a run, from months before the bench's now up to it.
func (r *benchRun) buildArchive(ctx context.Context, months int) (*historyArchive, error) {
	o := r.o
	a := &historyArchive{name: fmt.Sprintf("history_%dmo", months)}
	a.url = r.pg.URL(a.name)
	a.res = Archive{Months: months, Since: r.now.AddDate(0, -months, 0), Until: r.now}
	if err := r.admin(ctx, "CREATE DATABASE "+a.name); err != nil {
		return nil, err
	}
	if err := storage.MigrateUp(ctx, a.url); err != nil {
		return nil, fmt.Errorf("migrate %s: %w", a.name, err)
	}
	// Unthrottled, as the cold sync; details as asked, with a budget that
	// lets each run read its day's outcomes.
	cfg := filepath.Join(r.b.dir, a.name+".yaml")
	body := fmt.Sprintf("mps:\n  %s\n  max_attempts: 10\ndetails:\n  mode: %s\n  rate_limit: 10000\n  sync_budget: 10m\nlog:\n  level: warn\n",
		unthrottled, o.HistoryDetails)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return nil, err
	}
	days := int(math.Ceil(a.res.Until.Sub(a.res.Since).Hours() / 24))
	r.say("history: building a %d-month archive through %d syncs (a simulated day each, %d tasks a day, details %s)",
		months, days, o.HistoryPerDay, o.HistoryDetails)
	wal0, err := r.st.WALPosition(ctx)
	if err != nil {
		return nil, err
	}
	stats0 := r.sim.Stats()
	var window []*simulator.Task
	var rss int64
	start := time.Now()
	for t := a.res.Since; t.Before(a.res.Until); {
		next := t.Add(historyStep)
		if next.After(a.res.Until) {
			next = a.res.Until
		}
		gen := simulator.DefaultGenConfig()
		// Seeded by the day, so that a day holds the same tasks in every
		// archive: the last 30 days of each are alike.
		gen.Seed = next.Unix() / int64(historyStep/time.Second)
		gen.Tasks = int(math.Round(float64(o.HistoryPerDay) * next.Sub(t).Hours() / 24))
		gen.Window = next.Sub(t)
		// The API lists a week; older tasks only cost the simulator memory.
		cut := next.Add(-simulator.Retention - historyStep).UnixNano()
		window = slices.DeleteFunc(window, func(t *simulator.Task) bool { return t.Create < cut })
		window = append(window, simulator.Generate(gen, next)...)
		r.sim.SetTasks(window)
		r.clock.Set(next)
		_, peak, err := r.b.exec(ctx, fmt.Sprintf("%s sync %d", a.name, a.res.Syncs+1), r.b.self, a.url, "sync", "--config", cfg)
		if err != nil {
			return a, err
		}
		rss = max(rss, peak)
		a.res.Syncs++
		if a.res.Syncs%30 == 0 {
			r.say("history: %s: %d of %d days, %s", a.name, a.res.Syncs, days, time.Since(start).Round(time.Second))
		}
		t = next
	}
	elapsed := time.Since(start)
	a.res.BuildSeconds = elapsed.Seconds()
	wal1, err := r.st.WALPosition(ctx)
	if err != nil {
		return a, err
	}
	if a.conn, err = pgx.Connect(ctx, a.url); err != nil {
		return a, fmt.Errorf("connect to %s: %w", a.name, err)
	}
	if err := a.conn.QueryRow(ctx, `SELECT count(*) FROM tasks`).Scan(&a.res.Tasks); err != nil {
		return a, fmt.Errorf("count the tasks of %s: %w", a.name, err)
	}
	stats1 := r.sim.Stats()
	res := Result{Name: a.name + "_build", Tasks: int(a.res.Tasks), Seconds: elapsed.Seconds(),
		APIRequests:    stats1.Requests - stats0.Requests,
		DetailRequests: stats1.RequestsByStatus["detail"] - stats0.RequestsByStatus["detail"],
		WALBytes:       wal1 - wal0, PeakRSSBytes: rss,
		Note: fmt.Sprintf("%d syncs, a simulated day each, details %s", a.res.Syncs, o.HistoryDetails)}
	// The statistics collector's count lags writes by up to a second.
	bdb, err := storage.OpenBenchDB(ctx, a.url)
	if err != nil {
		return a, err
	}
	time.Sleep(1100 * time.Millisecond)
	res.RowsWritten, err = bdb.TaskRowWrites(ctx)
	bdb.Close()
	if err != nil {
		return a, err
	}
	r.add(&res)
	return a, nil
}

// prepareArchive makes a built archive what a year of service leaves: the
// run ledger of a schedule, vacuumed and analysed (autovacuum's work over
// months, done now so it does not run during the timings); then it opens
// the Store and expands the dashboard.
func (r *benchRun) prepareArchive(ctx context.Context, a *historyArchive) error {
	if n := r.o.HistoryLedgerRuns; n > 0 {
		// The build runs once a simulated day and records each run at the
		// real time it ran; a deployment on a 5-minute schedule keeps 288
		// runs a day, every day, and the report and the dashboard read the
		// ledger. Synthetic rows, dated over the archive's months, stand in
		// for them.
		if _, err := a.conn.Exec(ctx, `
INSERT INTO sync_runs (started_at, finished_at, status, kind, trigger)
SELECT t, t + interval '2 seconds', 'succeeded', 'incremental', 'schedule'
  FROM generate_series($1::timestamptz, $2::timestamptz, $3::interval) t`,
			a.res.Since, a.res.Until.Add(-time.Minute), fmt.Sprintf("%d seconds", 86400/n)); err != nil {
			return fmt.Errorf("pad the run ledger of %s: %w", a.name, err)
		}
	}
	// The build's syncs read no usage (bench.exec turns it off); a year of
	// service leaves a busy account's figures: every day, three regions,
	// each transcoding specification (Standard, TESHD-10, Edit × three
	// codecs × five tiers), which the report and the dashboard reconcile
	// with the outputs.
	if _, err := a.conn.Exec(ctx, `
INSERT INTO usage_daily (day, region, type, specification, count, usage)
SELECT d::date, r, 'Transcode', p || '.' || c || '.' || t, 10, 600
  FROM generate_series(($1::timestamptz AT TIME ZONE 'Asia/Shanghai')::date, ($2::timestamptz AT TIME ZONE 'Asia/Shanghai')::date, interval '1 day') AS d,
       unnest(ARRAY['ap-guangzhou', 'ap-shanghai', 'ap-singapore']) AS r, unnest(ARRAY['Standard', 'TESHD-10', 'Edit']) AS p,
       unnest(ARRAY['H264', 'H265', 'AV1']) AS c, unnest(ARRAY['SD', 'HD', 'FHD', '2K', '4K']) AS t`,
		a.res.Since, a.res.Until); err != nil {
		return fmt.Errorf("usage figures of %s: %w", a.name, err)
	}
	r.say("history: %s: VACUUM ANALYZE", a.name)
	if _, err := a.conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return fmt.Errorf("vacuum %s: %w", a.name, err)
	}
	if _, err := a.conn.Exec(ctx, `CHECKPOINT`); err != nil {
		return fmt.Errorf("checkpoint %s: %w", a.name, err)
	}
	if err := a.conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM sync_runs), pg_database_size(current_database())`).Scan(&a.res.LedgerRuns, &a.res.Bytes); err != nil {
		return fmt.Errorf("size %s: %w", a.name, err)
	}
	var err error
	if a.st, err = storage.Open(ctx, a.url, storage.Options{ApplicationName: "mps-archiver-bench"}); err != nil {
		return err
	}
	// Each variable takes all its values, quoted as Grafana's All option
	// quotes them (a quote doubled).
	vars := map[string]string{}
	for _, v := range r.o.dashboard.Variables {
		a.variableSQL = append(a.variableSQL, v.Query)
		rows, err := a.conn.Query(ctx, v.Query, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			return fmt.Errorf("dashboard variable %s: %w", v.Name, err)
		}
		values, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("dashboard variable %s: %w", v.Name, err)
		}
		quoted := make([]string, len(values))
		for i, s := range values {
			quoted[i] = "'" + strings.ReplaceAll(s, "'", "''") + "'"
		}
		vars[v.Name] = "''"
		if len(quoted) > 0 {
			vars[v.Name] = strings.Join(quoted, ",")
		}
	}
	from, to := a.res.Until.AddDate(0, 0, -30), a.res.Until
	for _, p := range r.o.dashboard.Panels {
		sql, err := expandMacros(p.SQL, from, to, vars)
		if err != nil {
			return fmt.Errorf("dashboard panel %q: %w", p.Title, err)
		}
		a.panels = append(a.panels, sql)
	}
	a.panelTimes = make([][]time.Duration, len(a.panels))
	a.res.Panels = make([]PanelTiming, len(a.panels))
	for i, p := range r.o.dashboard.Panels {
		a.res.Panels[i].Title = p.Title
	}
	return nil
}

// measure times each read once; keep is false for the warm-up.
func (a *historyArchive) measure(ctx context.Context, keep bool) error {
	until := a.res.Until
	timeReport := func(into *[]time.Duration, p storage.ReportParams) (*storage.Report, error) {
		start := time.Now()
		rep, err := a.st.Report(ctx, p)
		if err != nil {
			return nil, err
		}
		if keep {
			*into = append(*into, time.Since(start))
		}
		return rep, nil
	}
	rep, err := timeReport(&a.report30, storage.ReportParams{Since: until.AddDate(0, 0, -30), Until: until, By: "day"})
	if err != nil {
		return err
	}
	a.res.Report30Tasks = rep.Total
	if a.res.Months >= 12 {
		year := until.AddDate(0, -12, 0)
		if _, err := timeReport(&a.report12, storage.ReportParams{Since: year, Until: until, By: "month"}); err != nil {
			return err
		}
		if _, err := timeReport(&a.report12ByDay, storage.ReportParams{Since: year, Until: until, By: "day"}); err != nil {
			return err
		}
	}
	// Grafana's PostgreSQL data source sends a panel's SQL as a simple
	// query: parsed and planned each time.
	run := func(sql string) (time.Duration, int, error) {
		start := time.Now()
		rows, err := a.conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			return 0, 0, err
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		return time.Since(start), n, rows.Err()
	}
	var total time.Duration
	for i, sql := range a.panels {
		d, n, err := run(sql)
		if err != nil {
			return fmt.Errorf("dashboard panel %q: %w", a.res.Panels[i].Title, err)
		}
		total += d
		a.res.Panels[i].Rows = n
		if keep {
			a.panelTimes[i] = append(a.panelTimes[i], d)
		}
	}
	var vars time.Duration
	for _, v := range a.variableSQL {
		d, _, err := run(v)
		if err != nil {
			return fmt.Errorf("dashboard variable: %w", err)
		}
		vars += d
	}
	if keep {
		a.dashboard = append(a.dashboard, total)
		a.variables = append(a.variables, vars)
	}
	return nil
}

// summarise turns the samples into medians.
func (a *historyArchive) summarise() {
	a.res.Report30 = timing(a.report30)
	a.res.Dashboard = timing(a.dashboard)
	a.res.Variables = timing(a.variables)
	if len(a.report12) > 0 {
		t, d := timing(a.report12), timing(a.report12ByDay)
		a.res.Report12, a.res.Report12ByDay = &t, &d
	}
	for i, s := range a.panelTimes {
		a.res.Panels[i].Median = timing(s).Median
	}
}

// historyRatios compares the largest archive with the smallest, and on the
// largest (12 months or more) a 12-month report with a 30-day one.
func historyRatios(archives []Archive) HistoryRatios {
	var q HistoryRatios
	if len(archives) == 0 {
		return q
	}
	small, large := archives[0], archives[0]
	for _, a := range archives {
		if a.Months < small.Months {
			small = a
		}
		if a.Months > large.Months {
			large = a
		}
	}
	q.SmallMonths, q.LargeMonths = small.Months, large.Months
	if large.Months > small.Months && small.Report30.Median > 0 && small.Dashboard.Median > 0 {
		q.Report30 = large.Report30.Median / small.Report30.Median
		q.Dashboard30 = large.Dashboard.Median / small.Dashboard.Median
	}
	if large.Report12 != nil && large.Report30.Median > 0 {
		q.Report12Vs30 = large.Report12.Median / large.Report30.Median
		q.Report12DayVs30 = large.Report12ByDay.Median / large.Report30.Median
	}
	return q
}

// timing is the median, minimum and maximum of samples.
func timing(samples []time.Duration) Timing {
	if len(samples) == 0 {
		return Timing{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Timing{Median: med.Seconds(), Min: s[0].Seconds(), Max: s[len(s)-1].Seconds()}
}

// admin runs a statement on the server's postgres database (CREATE and
// DROP DATABASE, which cannot run in the database they name).
func (r *benchRun) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, r.pg.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}
