package usage_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
	"github.com/mps-archiver/mps-archiver/usage"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	secretID  = "AKIDusage0000"
	secretKey = "usage-secret-key-77a0"
)

// now is a fixed instant, early in a Beijing day, so that tasks still
// finish on it.
var now = time.Date(2026, 11, 20, 18, 30, 0, 0, time.UTC)

func newSim(n int) *simulator.Server {
	cfg := simulator.DefaultGenConfig()
	cfg.Tasks, cfg.FailureShare, cfg.Vocabulary = n, 0.3, simulator.VocabularyMixed
	clock := simulator.NewClock(now, 0)
	return simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: clock},
		simulator.Generate(cfg, now))
}

func newArchiver(r *archivetest.Rig) *usage.Archiver {
	return usage.New(usage.Config{Regions: mps.UsageRegions, Types: mps.UsageTypes, RefreshDays: 7, Now: r.Sim.Clock().Now},
		r.Client, r.Store, slog.New(slog.DiscardHandler))
}

// assertUsage compares usage_daily's non-zero figures with the simulator's
// truth over the 365 days up to the clock's today.
func assertUsage(t *testing.T, r *archivetest.Rig) {
	t.Helper()
	today := mps.UsageDay(r.Sim.Clock().Now())
	truth := r.Sim.UsageTruth(today.AddDate(0, 0, -(mps.UsageRetentionDays-1)), today)
	want := map[string]string{}
	types, regions := map[string]bool{}, map[string]bool{}
	for _, f := range truth {
		want[fmt.Sprint(f.Day.Format(time.DateOnly), f.Region, f.Type, f.Specification)] = fmt.Sprint(f.Count, " ", f.Usage)
		types[f.Type], regions[f.Region] = true, true
	}
	got := map[string]string{}
	for _, row := range pgtest.Query(t, r.DB, `SELECT to_char(day, 'YYYY-MM-DD'), region, type, specification, count, usage::text
	                                             FROM usage_daily WHERE count > 0 OR usage > 0`) {
		got[fmt.Sprint(row[0], row[1], row[2], row[3])] = fmt.Sprint(row[4], " ", row[5])
	}
	bad := 0
	for k, w := range want {
		if got[k] != w {
			if bad++; bad <= 5 {
				t.Errorf("usage %s: archived %q, the API says %q", k, got[k], w)
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			if bad++; bad <= 5 {
				t.Errorf("usage %s: archived %q, which the API does not report", k, g)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d figures differ from the API's %d", bad, len(want))
	}
	// The population reaches these, in these regions: the comparison
	// covered each.
	for _, typ := range []string{"Transcode", "Snapshot", "AIAnalysis", "AIRecognition", "AIReview"} {
		if !types[typ] {
			t.Errorf("the truth has no %s figure: the test compares less than it says", typ)
		}
	}
	for _, region := range []string{"ap-guangzhou", "ap-shanghai", "ap-singapore"} {
		if !regions[region] {
			t.Errorf("the truth has no figure in %s", region)
		}
	}
}

// TestBackfillThenRefresh: a first run reads the 365 days the API keeps
// for every region and type, in at most 5 queries of at most 90 days per
// region, each naming its region and every type; the archive then equals
// the API's figures. A later run reads one query per region, and the
// figures the day's newly finished tasks changed are revised.
func TestBackfillThenRefresh(t *testing.T) {
	sim := newSim(3000)
	r := archivetest.NewRig(t, sim, secretID, secretKey, nil)
	a := newArchiver(r)
	ctx := context.Background()
	res, err := a.Run(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Backfill || res.Failed != 0 || res.Requests != res.Queries {
		t.Fatalf("first run: %+v", res)
	}
	perRegion := map[string]int{}
	for _, q := range sim.UsageQueries() {
		if len(q.Regions) != 1 || q.Types != len(mps.UsageTypes) {
			t.Fatalf("a query named regions %v and %d types: every query names one region and every type", q.Regions, q.Types)
		}
		if span := q.End.Sub(q.Start); span > mps.UsageMaxSpanDays*24*time.Hour {
			t.Fatalf("a query spans %s: more than %d days", span, mps.UsageMaxSpanDays)
		}
		perRegion[q.Regions[0]]++
	}
	if len(perRegion) != len(mps.UsageRegions) {
		t.Fatalf("queried %d regions, want %d", len(perRegion), len(mps.UsageRegions))
	}
	for region, n := range perRegion {
		if n > 5 {
			t.Errorf("%s: the backfill took %d queries, want at most 5", region, n)
		}
	}
	if got := pgtest.Scalar[int64](t, r.DB, `SELECT count(*) FROM usage_coverage WHERE last_day - first_day = 364`); got != int64(len(mps.UsageRegions)*len(mps.UsageTypes)) {
		t.Errorf("%d region and type pairs cover 365 days, want all %d", got, len(mps.UsageRegions)*len(mps.UsageTypes))
	}
	assertUsage(t, r)
	if res.Added == 0 || res.Revised != 0 {
		t.Errorf("first run: %d added, %d revised", res.Added, res.Revised)
	}

	// Six hours later: more tasks have finished today.
	sim.Clock().Advance(6 * time.Hour)
	before := len(sim.UsageQueries())
	res, err = a.Run(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(sim.UsageQueries()) - before; n != len(mps.UsageRegions) || res.Backfill {
		t.Errorf("refresh: %d queries (backfill %v), want one per region (%d)", n, res.Backfill, len(mps.UsageRegions))
	}
	if res.Revised == 0 {
		t.Errorf("refresh: nothing revised, though tasks finished meanwhile")
	}
	if kept := pgtest.Scalar[int64](t, r.DB, `SELECT count(*) FROM usage_revisions`); kept != res.Revised {
		t.Errorf("%d revised figures, %d kept in usage_revisions", res.Revised, kept)
	}
	assertUsage(t, r)
	ledger := pgtest.Query(t, r.DB, `SELECT status, backfill, requests, figures_added + figures_revised > 0 FROM usage_runs ORDER BY id`)
	if fmt.Sprint(ledger) != fmt.Sprintf("[[succeeded true %d true] [succeeded false %d true]]", perRegionTotal(perRegion), len(mps.UsageRegions)) {
		t.Errorf("usage_runs: %v", ledger)
	}
}

func perRegionTotal(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestDefaultsTrap: asked without types and regions, the API answers for
// Transcode in ap-guangzhou alone, which is less than there is.
func TestDefaultsTrap(t *testing.T) {
	sim := newSim(2000)
	r := archivetest.NewRig(t, sim, secretID, secretKey, nil)
	today := mps.UsageDay(now)
	from := today.AddDate(0, 0, -30)
	ans, err := r.Client.UsageData(context.Background(), mps.UsageQuery{From: from, To: today})
	if err != nil {
		t.Fatal(err)
	}
	rows := ans.Rows
	var defaults, guangzhouTranscode, all float64
	for _, row := range rows {
		if row.Type != "Transcode" {
			t.Errorf("the defaults answered %s", row.Type)
		}
		defaults += amount(t, row.Usage)
	}
	for _, f := range sim.UsageTruth(from, today) {
		all += amount(t, f.Usage)
		if f.Region == "ap-guangzhou" && f.Type == "Transcode" {
			guangzhouTranscode += amount(t, f.Usage)
		}
	}
	if defaults != guangzhouTranscode || defaults >= all || defaults == 0 {
		t.Fatalf("defaults: %v; Transcode in ap-guangzhou %v; everything %v", defaults, guangzhouTranscode, all)
	}
	// A query over 90 days is refused by the API (the archiver never sends
	// one: TestPlan).
	_, err = r.Client.UsageData(context.Background(), mps.UsageQuery{From: today.AddDate(0, 0, -90), To: today, Types: []string{"Transcode"}, Region: "ap-guangzhou"})
	if mps.ErrorCode(err) != mps.CodeInvalidParameter {
		t.Fatalf("a 91-day query: %v, want %s", err, mps.CodeInvalidParameter)
	}
}

func amount(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPlan: whatever was read before, the plan covers every region and
// type from where it stopped (or the oldest day kept) to today, re-reads
// the refresh days, and never spans more than 90 days in a query.
func TestPlan(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	today := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	oldest := today.AddDate(0, 0, -364)
	regions, types := []string{"ap-guangzhou", "aws", "eu-frankfurt"}, []string{"Transcode", "Snapshot", "Enhance"}
	for i := 0; i < 2000; i++ {
		cov := map[usage.Key]usage.Coverage{}
		for _, r := range regions {
			for _, ty := range types {
				if rng.IntN(3) > 0 {
					last := today.AddDate(0, 0, -rng.IntN(800))
					cov[usage.Key{Region: r, Type: ty}] = usage.Coverage{First: last.AddDate(0, 0, -rng.IntN(400)), Last: last}
				}
			}
		}
		refresh := 1 + rng.IntN(90)
		qs, backfill := usage.Plan(cov, regions, types, refresh, today)
		wantBackfill := len(cov) < len(regions)*len(types)
		if backfill != wantBackfill {
			t.Fatalf("backfill %v with %d of %d pairs covered", backfill, len(cov), len(regions)*len(types))
		}
		read := map[usage.Key]map[time.Time]bool{}
		for _, q := range qs {
			if days := int(q.To.Sub(q.From).Hours()/24) + 1; days > mps.UsageMaxSpanDays || days < 1 {
				t.Fatalf("a query of %d days", days)
			}
			if q.From.Before(oldest) || q.To.After(today) {
				t.Fatalf("a query of %s..%s, outside the days kept", q.From, q.To)
			}
			for _, ty := range q.Types {
				k := usage.Key{Region: q.Region, Type: ty}
				if read[k] == nil {
					read[k] = map[time.Time]bool{}
				}
				for d := q.From; !d.After(q.To); d = d.AddDate(0, 0, 1) {
					if read[k][d] {
						t.Fatalf("%v: %s read twice", k, d)
					}
					read[k][d] = true
				}
			}
		}
		for _, r := range regions {
			for _, ty := range types {
				k := usage.Key{Region: r, Type: ty}
				from := oldest
				if c, ok := cov[k]; ok {
					from = c.Last.AddDate(0, 0, 1)
					if f := today.AddDate(0, 0, -(refresh - 1)); f.Before(from) {
						from = f
					}
					if from.Before(oldest) {
						from = oldest
					}
				}
				for d := from; !d.After(today); d = d.AddDate(0, 0, 1) {
					if !read[k][d] {
						t.Fatalf("%v: %s not read (coverage %+v, refresh %d)", k, d, cov[k], refresh)
					}
				}
				if n := len(read[k]); n != int(today.Sub(from).Hours()/24)+1 {
					t.Fatalf("%v: %d days read, want %s..%s", k, n, from, today)
				}
			}
		}
		// Pairs that start on the same day share their queries.
		if len(cov) == 0 && len(qs) != len(regions)*5 {
			t.Fatalf("a first backfill took %d queries for %d regions", len(qs), len(regions))
		}
	}
}

// TestReconciliation: with every outcome captured, the reconciliation
// places the billed transcoding next to the outputs' durations per day
// and codec × tier; it agrees with the simulator's bill wherever every
// billed output reports a duration, and where it does not (adaptive
// streaming, billed by a duration no detail reports), the row says so.
func TestReconciliation(t *testing.T) {
	sim := newSim(1500)
	r := archivetest.NewRig(t, sim, secretID, secretKey, nil)
	ctx := context.Background()
	s := syncer.New(r.Client, r.Store, syncer.Config{Partitions: 4, Details: syncer.DetailsAll, DetailRetention: 72 * time.Hour}, nil)
	if _, err := s.Run(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	close(done)
	if err := details.New(r.Client, r.Store, details.Config{RetryAfter: time.Millisecond}, nil).Run(ctx, done); err != nil {
		t.Fatal(err)
	}
	if _, err := newArchiver(r).Run(ctx, "test"); err != nil {
		t.Fatal(err)
	}

	// What the truth says, per Beijing day of finish, codec and tier:
	// the seconds of the outputs with a duration, and whether the day's
	// bill for that codec and tier includes outputs without one.
	type key struct{ day, codec, tier string }
	accounted := map[key]float64{}
	hidden := map[string]bool{} // days with an output billed without a duration
	for _, tt := range sim.Truth() {
		fin, err := mps.ParseTime(tt.FinishTime)
		if err != nil || fin.IsZero() {
			continue
		}
		day := mps.UsageDay(fin).Format(time.DateOnly)
		for _, o := range tt.Outputs {
			switch {
			case o.Kind == "AdaptiveDynamicStreaming":
				hidden[day] = true
			case (o.Kind == "Transcode" || o.Kind == "EditMedia") && !o.NoDuration:
				accounted[key{day, codecOf(o.VideoCodec), archivetest.MediaTier(o.Width, o.Height)}] += o.DurationS
			}
		}
	}
	rows := pgtest.Query(t, r.DB, `
SELECT to_char(day, 'YYYY-MM-DD'), codec, tier, billed_s::float8, accounted_s::float8, difference_s::float8, outputs_without_duration + outputs_unclassified, tasks_without_outcome, status, billed_figures
  FROM mps_usage_reconciliation(current_date - 400, current_date + 400) WHERE codec IS NOT NULL`)
	checked, agreeing, flagged := 0, 0, 0
	for _, row := range rows {
		k := key{row[0].(string), row[1].(string), row[2].(string)}
		billed, acc, diff := row[3].(float64), row[4].(float64), row[5].(float64)
		noDuration, noOutcome, status, figures := row[6].(int64), row[7].(int64), row[8].(string), row[9].(int64)
		want, inArchive := accounted[k]
		if !inArchive {
			continue // a day before the archive began: billed only
		}
		checked++
		if math.Abs(acc-want) > 0.01 {
			t.Errorf("%v: accounted %.3f s, the outputs' durations add up to %.3f", k, acc, want)
		}
		if noOutcome != 0 {
			t.Errorf("%v: %d tasks without outcome, though every outcome was captured", k, noOutcome)
		}
		switch {
		case status == "agrees":
			agreeing++
			// Each billed figure is whole seconds: half a second each.
			if math.Abs(diff) > 0.5*float64(figures)+0.001 || math.Abs(billed-acc-diff) > 0.001 {
				t.Errorf("%v: agrees with a difference of %.3f s over %d figures", k, diff, figures)
			}
		case status == "differs" && noDuration > 0 && hidden[k.day]:
			flagged++
		default:
			t.Errorf("%v: %s (billed %.3f, accounted %.3f, outputs without duration %d)", k, status, billed, acc, noDuration)
		}
	}
	if checked == 0 || agreeing == 0 || flagged == 0 {
		t.Fatalf("checked %d rows: %d agree, %d differ for outputs without a duration (want some of each)", checked, agreeing, flagged)
	}
	t.Logf("%d rows: %d agree, %d differ by outputs without a duration", checked, agreeing, flagged)
	// Every (day, codec, tier) the truth accounts for has its row.
	if checked != len(accounted) {
		t.Errorf("%d rows checked, the truth accounts for %d", checked, len(accounted))
	}

	// The report's sections add up to the same.
	rep, err := r.Store.Report(ctx, storage.ReportParams{Since: now.AddDate(0, 0, -9), Until: now.AddDate(0, 0, 1), By: "day"})
	if err != nil {
		t.Fatal(err)
	}
	var reported, accountedTotal float64
	for _, c := range rep.Reconciliation {
		reported += c.AccountedS
	}
	for _, v := range accounted {
		accountedTotal += v
	}
	if math.Abs(reported-accountedTotal) > 1 || len(rep.Usage) == 0 || len(rep.Spenders) == 0 || rep.Unaccounted.OutputsWithoutDuration == 0 {
		t.Errorf("report: accounted %.1f s (truth %.1f), %d billed rows, %d spenders, %+v", reported, accountedTotal, len(rep.Usage), len(rep.Spenders), rep.Unaccounted)
	}
}

func codecOf(c string) string {
	switch c {
	case "h265":
		return "H265"
	case "av1":
		return "AV1"
	}
	return "H264"
}

// TestFailedQueriesLoseNothing: when some queries fail for good, the
// others are stored and the run is failed; the next run reads what is
// missing, and the archive equals the API's figures.
func TestFailedQueriesLoseNothing(t *testing.T) {
	sim := newSim(1000)
	r := archivetest.NewRig(t, sim, secretID, secretKey, nil)
	a := newArchiver(r)
	ctx := context.Background()
	sim.SetFaults(simulator.Faults{ErrorRate: 0.3, ErrorCodes: []string{"UnauthorizedOperation"}, Actions: []string{mps.ActionDescribeUsageData}})
	res, err := a.Run(ctx, "test")
	if err == nil || res.Failed == 0 || res.Requests == 0 {
		t.Fatalf("a run with failing queries: %+v, %v", res, err)
	}
	stored := pgtest.Scalar[int64](t, r.DB, `SELECT count(*) FROM usage_daily`)
	if stored == 0 {
		t.Fatal("nothing of the answered queries was stored")
	}
	sim.SetFaults(simulator.Faults{})
	res2, err := a.Run(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Backfill || res2.Queries >= res.Queries {
		t.Errorf("the second run planned %d queries (backfill %v); the first %d, of which %d failed", res2.Queries, res2.Backfill, res.Queries, res.Failed)
	}
	assertUsage(t, r)
	if got := fmt.Sprint(pgtest.Query(t, r.DB, `SELECT status, error IS NOT NULL FROM usage_runs ORDER BY id`)); got != "[[failed true] [succeeded false]]" {
		t.Errorf("usage_runs: %s", got)
	}
}

// TestRevisedAndVanishedFigures: a later reading replaces a day's figures:
// a changed one is revised, one the API no longer reports is set to zero,
// and the coverage grows without a hole (or starts again after one).
func TestRevisedAndVanishedFigures(t *testing.T) {
	r := archivetest.NewRig(t, newSim(0), secretID, secretKey, nil)
	ctx := context.Background()
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	run, err := r.Store.StartUsageRun(ctx, "test", true, day(1), day(3))
	if err != nil {
		t.Fatal(err)
	}
	q := mps.UsageQuery{From: day(1), To: day(3), Types: []string{"Transcode", "Snapshot"}, Region: "aws"}
	both := []string{"Transcode", "Snapshot"}
	st, err := r.Store.StoreUsage(ctx, run, q, mps.UsageAnswer{Types: both, Rows: []mps.UsageRow{
		{Day: day(1), Type: "Transcode", Specification: "Standard.H264.HD", Count: 2, Usage: "120"},
		{Day: day(2), Type: "Transcode", Specification: "Audio", Count: 1, Usage: "30.5"},
		{Day: day(3), Type: "Snapshot", Specification: "SampleSnapshot", Count: 1, Usage: "10"},
	}})
	if err != nil || st != (usage.Stored{Added: 3}) {
		t.Fatalf("first reading: %+v, %v", st, err)
	}
	st, err = r.Store.StoreUsage(ctx, run, mps.UsageQuery{From: day(2), To: day(4), Types: q.Types, Region: "aws"}, mps.UsageAnswer{Types: both, Rows: []mps.UsageRow{
		{Day: day(3), Type: "Snapshot", Specification: "SampleSnapshot", Count: 2, Usage: "20"},
		{Day: day(4), Type: "Transcode", Specification: "Standard.H265.4K", Count: 1, Usage: "60"},
		// A type not asked for is not stored.
		{Day: day(4), Type: "Enhance", Specification: "x", Count: 1, Usage: "60"},
	}})
	if err != nil || st != (usage.Stored{Added: 1, Revised: 2}) {
		t.Fatalf("second reading: %+v, %v", st, err)
	}
	got := fmt.Sprint(pgtest.Query(t, r.DB, `SELECT to_char(day, 'DD'), specification, count, usage::text, revisions FROM usage_daily ORDER BY day, specification`))
	if want := "[[01 Standard.H264.HD 2 120 0] [02 Audio 0 0 1] [03 SampleSnapshot 2 20 1] [04 Standard.H265.4K 1 60 0]]"; got != want {
		t.Errorf("usage_daily:\n got %s\nwant %s", got, want)
	}
	// What each revision replaced is kept.
	if got := fmt.Sprint(pgtest.Query(t, r.DB, `SELECT to_char(day, 'DD'), specification, count, usage::text, run_id FROM usage_revisions ORDER BY day`)); got != fmt.Sprintf("[[02 Audio 1 30.5 %d] [03 SampleSnapshot 1 10 %d]]", run, run) {
		t.Errorf("usage_revisions: %s", got)
	}
	cov := func() string {
		return fmt.Sprint(pgtest.Query(t, r.DB, `SELECT type, to_char(first_day, 'MM-DD'), to_char(last_day, 'MM-DD') FROM usage_coverage ORDER BY type`))
	}
	if got := cov(); got != "[[Snapshot 01-01 01-04] [Transcode 01-01 01-04]]" {
		t.Errorf("coverage: %s", got)
	}
	// A hole: what was read before it no longer joins on.
	if _, err := r.Store.StoreUsage(ctx, run, mps.UsageQuery{From: day(10), To: day(12), Types: []string{"Snapshot"}, Region: "aws"}, mps.UsageAnswer{Types: []string{"Snapshot"}}); err != nil {
		t.Fatal(err)
	}
	if got := cov(); got != "[[Snapshot 01-10 01-12] [Transcode 01-01 01-04]]" {
		t.Errorf("coverage after a hole: %s", got)
	}
	// An answer without a Data item for Transcode says nothing of it: its
	// figures stay.
	if _, err := r.Store.StoreUsage(ctx, run, mps.UsageQuery{From: day(1), To: day(4), Types: both, Region: "aws"}, mps.UsageAnswer{Types: []string{"Snapshot"}}); err != nil {
		t.Fatal(err)
	}
	if got := pgtest.Scalar[int64](t, r.DB, `SELECT count(*) FROM usage_daily WHERE type = 'Transcode' AND count > 0`); got != 2 {
		t.Errorf("%d Transcode figures left after an answer without Transcode, want 2", got)
	}
}

// TestDue: a run is due when the schedule has come round since the last
// success (or none succeeded), and not within an hour of a failed one.
func TestDue(t *testing.T) {
	sched, err := cron.ParseStandard("CRON_TZ=Asia/Shanghai 20 1 * * *")
	if err != nil {
		t.Fatal(err)
	}
	a := usage.New(usage.Config{Schedule: sched}, nil, nil, slog.New(slog.DiscardHandler))
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	now := at("2026-12-02T12:00:00+08:00")
	for _, c := range []struct {
		name string
		runs usage.Runs
		want bool
	}{
		{"never run", usage.Runs{}, true},
		{"succeeded after today's 01:20", usage.Runs{LastSuccess: at("2026-12-02T01:20:05+08:00"), LastAttempt: at("2026-12-02T01:20:05+08:00")}, false},
		{"succeeded before today's 01:20", usage.Runs{LastSuccess: at("2026-12-01T23:00:00+08:00"), LastAttempt: at("2026-12-01T23:00:00+08:00")}, true},
		{"failed 10 minutes ago", usage.Runs{LastSuccess: at("2026-11-30T01:20:00+08:00"), LastAttempt: at("2026-12-02T11:50:00+08:00")}, false},
		{"failed 2 hours ago", usage.Runs{LastSuccess: at("2026-11-30T01:20:00+08:00"), LastAttempt: at("2026-12-02T10:00:00+08:00")}, true},
		{"never succeeded, failed 2 hours ago", usage.Runs{LastAttempt: at("2026-12-02T10:00:00+08:00")}, true},
		{"never succeeded, failed just now", usage.Runs{LastAttempt: at("2026-12-02T11:59:00+08:00")}, false},
	} {
		if got := a.Due(c.runs, now); got != c.want {
			t.Errorf("%s: due %v, want %v", c.name, got, c.want)
		}
	}
}
