// Package usage archives what MPS billed: DescribeUsageData's daily figures
// per processing region, task type and specification, kept past the
// API's 365 days. A region or type never read is backfilled over those 365
// days in queries of at most 90; later runs read on from the last day read
// and again the last days, whose figures may still be revised. Every
// query names its types and its region: the API answers for Transcode in
// ap-guangzhou alone when they are left out.
package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Key is a processing region and task type.
type Key struct{ Region, Type string }

// Coverage is the days of a region and type read so far: First..Last,
// without a hole.
type Coverage struct{ First, Last time.Time }

// Lock is held for a run: one process reads usage at a time. Lost is
// closed when the lock's session is gone (another process may take it).
type Lock interface {
	Lost() <-chan struct{}
	Release(ctx context.Context)
}

// ErrLocked means another process is reading usage.
var ErrLocked = errors.New("another process is reading usage")

// Runs is what the ledger says of past runs: the start of the last run
// that succeeded and of the last one at all (zero: none).
type Runs struct{ LastSuccess, LastAttempt time.Time }

// Stored is what storing one query's answer changed.
type Stored struct{ Added, Revised int64 }

// Store keeps the figures, what was read, and the ledger.
type Store interface {
	LockUsage(ctx context.Context) (Lock, error)
	UsageRuns(ctx context.Context) (Runs, error)
	UsageCoverage(ctx context.Context) (map[Key]Coverage, error)
	StartUsageRun(ctx context.Context, trigger string, backfill bool, from, to time.Time) (int64, error)
	// StoreUsage replaces the figures of q's region and days with the
	// answer's (of the types q asked for; those of a type the answer has
	// no Data item for are kept) and extends the coverage of q's types, in
	// one transaction.
	StoreUsage(ctx context.Context, runID int64, q mps.UsageQuery, ans mps.UsageAnswer) (Stored, error)
	FinishUsageRun(ctx context.Context, runID int64, res Result, runErr error) error
}

// Client reads DescribeUsageData.
type Client interface {
	UsageData(ctx context.Context, q mps.UsageQuery) (mps.UsageAnswer, error)
}

// Config says what to read.
type Config struct {
	Regions     []string
	Types       []string
	RefreshDays int
	// Schedule is when a run is due (RunIfDue).
	Schedule cron.Schedule
	// RetryAfter is how long after a failed run the next is due
	// (default 1h).
	RetryAfter time.Duration
	// Now is the clock whose Beijing day is today (default time.Now).
	Now func() time.Time
}

// Result is what a run read and changed.
type Result struct {
	RunID    int64
	Backfill bool // some region or type was read for the first time
	From, To time.Time
	Queries  int // planned
	Requests int // answered and stored
	Added    int64
	Revised  int64
	Failed   int // queries that failed
	Skipped  int // later queries of a failed one's region and types, left to the next run
	Problems int // figures left out, or answers that contradict themselves (logged)
	Duration time.Duration
}

// Archiver runs usage runs.
type Archiver struct {
	cfg    Config
	client Client
	store  Store
	log    *slog.Logger
}

// New returns an Archiver.
func New(cfg Config, client Client, store Store, log *slog.Logger) *Archiver {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Hour
	}
	return &Archiver{cfg: cfg, client: client, store: store, log: log}
}

// Plan is the queries that bring every region and type up to today (a
// Beijing day, as a date at UTC midnight), oldest days first, and whether
// any region or type is read for the first time. Types of a region that
// start on the same day share queries.
func Plan(cov map[Key]Coverage, regions, types []string, refreshDays int, today time.Time) (qs []mps.UsageQuery, backfill bool) {
	oldest := today.AddDate(0, 0, -(mps.UsageRetentionDays - 1))
	refresh := today.AddDate(0, 0, -(max(refreshDays, 1) - 1))
	for _, region := range regions {
		groups := map[time.Time][]string{}
		for _, typ := range types {
			from := oldest
			if c, ok := cov[Key{region, typ}]; ok {
				from = c.Last.AddDate(0, 0, 1)
				if refresh.Before(from) {
					from = refresh
				}
				if from.Before(oldest) {
					from = oldest
				}
			} else {
				backfill = true
			}
			groups[from] = append(groups[from], typ)
		}
		for _, from := range slices.SortedFunc(maps.Keys(groups), func(a, b time.Time) int { return a.Compare(b) }) {
			for d := from; !d.After(today); d = d.AddDate(0, 0, mps.UsageMaxSpanDays) {
				to := d.AddDate(0, 0, mps.UsageMaxSpanDays-1)
				if to.After(today) {
					to = today
				}
				qs = append(qs, mps.UsageQuery{From: d, To: to, Types: groups[from], Region: region})
			}
		}
	}
	return qs, backfill
}

// Due reports whether a run is due at now: the schedule has come round
// since the last successful run (or there was none), and a failed run is
// not more recent than RetryAfter.
func (a *Archiver) Due(r Runs, now time.Time) bool {
	if !r.LastSuccess.IsZero() && a.cfg.Schedule != nil && a.cfg.Schedule.Next(r.LastSuccess).After(now) {
		return false
	}
	if r.LastAttempt.After(r.LastSuccess) && now.Sub(r.LastAttempt) < a.cfg.RetryAfter {
		return false
	}
	return true
}

// RunIfDue runs when Due says so; ran is false when it was not due or
// another process was reading usage.
func (a *Archiver) RunIfDue(ctx context.Context, trigger string) (res Result, ran bool, err error) {
	return a.run(ctx, trigger, true)
}

// Run reads usage now.
func (a *Archiver) Run(ctx context.Context, trigger string) (Result, error) {
	res, _, err := a.run(ctx, trigger, false)
	return res, err
}

func (a *Archiver) run(ctx context.Context, trigger string, ifDue bool) (res Result, ran bool, err error) {
	start := time.Now()
	// serve asks every minute: most times a read of the ledger says no,
	// without taking the lock (checked again under it).
	if ifDue {
		runs, err := a.store.UsageRuns(ctx)
		if err != nil {
			return res, false, err
		}
		if !a.Due(runs, a.cfg.Now()) {
			return res, false, nil
		}
	}
	lock, err := a.store.LockUsage(ctx)
	if err != nil {
		if ifDue && errors.Is(err, ErrLocked) {
			return res, false, nil
		}
		return res, false, err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	if ifDue {
		runs, err := a.store.UsageRuns(ctx)
		if err != nil {
			return res, false, err
		}
		if !a.Due(runs, a.cfg.Now()) {
			return res, false, nil
		}
	}
	cov, err := a.store.UsageCoverage(ctx)
	if err != nil {
		return res, false, err
	}
	today := mps.UsageDay(a.cfg.Now())
	qs, backfill := Plan(cov, a.cfg.Regions, a.cfg.Types, a.cfg.RefreshDays, today)
	res.Backfill, res.Queries = backfill, len(qs)
	for i, q := range qs {
		if i == 0 || q.From.Before(res.From) {
			res.From = q.From
		}
		if q.To.After(res.To) {
			res.To = q.To
		}
	}
	if res.RunID, err = a.store.StartUsageRun(ctx, trigger, backfill, res.From, res.To); err != nil {
		return res, false, err
	}
	if backfill {
		a.log.Info("usage backfill", "queries", len(qs), "from", res.From.Format(time.DateOnly), "to", res.To.Format(time.DateOnly),
			"regions", len(a.cfg.Regions), "types", len(a.cfg.Types))
	}
	var first error
	// A failed query stops the later queries of its region and types:
	// coverage grows only without a hole, so the next run reads on from
	// the failed days instead of leaving them behind.
	stopped := map[string]bool{}
queries:
	for _, q := range qs {
		select {
		case <-ctx.Done():
			first = cmp.Or(first, context.Cause(ctx))
			break queries
		case <-lock.Lost():
			first = cmp.Or(first, errors.New("the usage lock's database session was lost: stopped, so that another process's run cannot overlap this one"))
			break queries
		default:
		}
		group := q.Region + "\x00" + strings.Join(q.Types, ",")
		if stopped[group] {
			res.Skipped++
			continue
		}
		ans, err := a.client.UsageData(ctx, q)
		if err == nil {
			if len(ans.Problems) > 0 {
				res.Problems += len(ans.Problems)
				a.log.Warn("usage answer partly unreadable", "region", q.Region, "from", q.From.Format(time.DateOnly), "to", q.To.Format(time.DateOnly),
					"problems", len(ans.Problems), "first", ans.Problems[0])
			}
			var st Stored
			if st, err = a.store.StoreUsage(ctx, res.RunID, q, ans); err == nil {
				res.Requests++
				res.Added += st.Added
				res.Revised += st.Revised
				continue
			}
		}
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		// A region the account cannot read, or an outage: the others are
		// still read, and the next run starts from what was stored.
		stopped[group] = true
		res.Failed++
		err = fmt.Errorf("usage of %s %s..%s: %w", q.Region, q.From.Format(time.DateOnly), q.To.Format(time.DateOnly), err)
		a.log.Warn("usage query failed", "region", q.Region, "from", q.From.Format(time.DateOnly), "to", q.To.Format(time.DateOnly), "error", err.Error())
		first = cmp.Or(first, err)
	}
	res.Duration = time.Since(start)
	if first != nil && res.Failed > 1 {
		first = fmt.Errorf("%w (and %d more queries failed)", first, res.Failed-1)
	}
	if ferr := a.store.FinishUsageRun(context.WithoutCancel(ctx), res.RunID, res, first); ferr != nil && first == nil {
		first = ferr
	}
	return res, true, first
}
