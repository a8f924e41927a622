// Package syncer drains every MPS task status through its ScrollToken pages
// into the archive. It owns the run's rules (drain order, termination, status
// monotonicity, page-by-page commits, the invariants a drain can observe) and
// consumes two small interfaces, an API and a task store; it knows nothing of
// HTTP or pgx.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Window is how far back the API lists tasks.
const Window = mps.Window

// MaxClockSkew is the usual Config.MaxClockSkew: how far the real API's
// Date may be from this machine's clock before it is distrusted. The
// incremental overlap (15 m) covers what is within it.
const MaxClockSkew = 5 * time.Minute

// Config tunes a Syncer.
type Config struct {
	// Sources are the task lists a run drains, in order (default: media,
	// DescribeTasks, alone).
	Sources []mps.Source
	// SkipMissingSources skips a source (other than media) whose list the
	// API does not serve, as an endpoint older than it answers; otherwise
	// such a source fails every run until it is removed. Set it when the
	// sources are every source there is rather than ones asked for.
	SkipMissingSources bool
	// Statuses to drain, in order (default mps.Statuses: WAITING,
	// PROCESSING, FINISH, the lifecycle order).
	Statuses []mps.Status
	// MaxPagesPerStatus stops a drain that never ends (default 200,000,
	// twenty million tasks at 100 a page).
	MaxPagesPerStatus int
	// RunTimeout bounds a whole run (0: none).
	RunTimeout time.Duration
	// Writers is how many pages are written at once (default 2): the
	// database, not the API, is the ceiling of an unthrottled sync.
	Writers int
	// ProgressEvery is how often the run's counters are stored while it runs
	// (default 2s); they are always stored at the end.
	ProgressEvery time.Duration
	// Partitions splits the FINISH drain, by far the longest, into this many
	// time ranges drained concurrently (default 1: one cursor). The ranges
	// are contiguous, overlap by a second and together span the API's window
	// with an hour to spare at each end, each sent with both bounds, so
	// every FINISH task (which has all its times) falls in at least one
	// whichever task time the API's StartTime/EndTime filter on and however
	// it treats a missing bound. Where the API rejects or ignores the
	// filters, FINISH is drained as one cursor.
	Partitions int
	// PageSize is the Limit the lister sends (default 100): a page shorter
	// than it is the last.
	PageSize int
	// MaxRestarts bounds how often one cursor restarts from the top after
	// the API rejects its ScrollToken, per run (default 5).
	MaxRestarts int
	// RecheckEvery is how long a learned capability is trusted before the
	// syncer checks it again (default 24h).
	RecheckEvery time.Duration
	// FullEvery makes every run full whose last full success is this old
	// (0: every run is full). Incremental runs need it: the full run is
	// their safety net.
	FullEvery time.Duration
	// Overlap is how far before the last successful run's start an
	// incremental run's FINISH listing begins (default 15m).
	Overlap time.Duration
	// Details is which tasks are queued for detail capture: DetailsAll,
	// DetailsFailed or DetailsNone (the default: none, since a Syncer
	// cannot know that anything drains the queue it fills; the product's
	// configuration defaults to all, because every command that archives
	// starts a detail fetcher beside its syncer).
	Details string
	// DetailRetention is the deadline a queued detail is planned by.
	DetailRetention time.Duration
	// OutcomeTimeout is how long a run keeps trying to record its outcome
	// when the database does not take it (default 10s); an outcome still
	// unrecorded is kept and recorded by the next run of this Syncer.
	OutcomeTimeout time.Duration
	// MaxClockSkew is how far the API's clock (its Date header) may be from
	// this machine's: within it the API's clock sets a run's bounds (its
	// window and filters run on it); beyond it this machine's does, and the
	// run says so; an incremental lower bound is never later than the last
	// success's start on this machine's clock plus it. 0 trusts the API's
	// Date whatever it says (a simulator's clock is its own).
	MaxClockSkew time.Duration
	// Now is this machine's clock (default time.Now), which MaxClockSkew
	// holds the API's to.
	Now func() time.Time
	// Host and Version (the build) are recorded with each run.
	Host    string
	Version string
	// OnPage, when set, is called after each committed page.
	OnPage func(PageEvent)
}

// PageEvent reports a committed page.
type PageEvent struct {
	RunID  int64
	Status mps.Status
	Page   int
	Tasks  int
	PageResult
}

// Syncer runs syncs. A Syncer may be used by one goroutine at a time; the
// store's lock keeps runs in different processes apart.
type Syncer struct {
	lister Lister
	calls  *countingLister
	store  Store
	cfg    Config
	log    *slog.Logger
	// unrecorded holds outcomes the database did not take when their run
	// ended (an outage): the next run records them before its own start,
	// which would otherwise call those runs abandoned.
	unrecordedMu sync.Mutex
	unrecorded   []FinishRunParams
}

// ErrRunFinished is what Store.FinishRun returns for a run whose outcome is
// already recorded (only an "abandoned" verdict may be replaced).
var ErrRunFinished = errors.New("the run's outcome is already recorded")

// maxUnrecorded bounds the outcomes kept for a database that stays away.
const maxUnrecorded = 16

// Defaults are what New uses for the settings a Config leaves zero.
var Defaults = Config{
	Statuses:          mps.Statuses,
	MaxPagesPerStatus: 200_000,
	Partitions:        1,
	PageSize:          mps.MaxLimit,
	MaxRestarts:       5,
	RecheckEvery:      24 * time.Hour,
	Writers:           2,
	ProgressEvery:     2 * time.Second,
	Overlap:           15 * time.Minute,
	OutcomeTimeout:    10 * time.Second,
}

// New returns a Syncer.
func New(lister Lister, store Store, cfg Config, log *slog.Logger) *Syncer {
	def := Defaults
	if len(cfg.Statuses) == 0 {
		cfg.Statuses = def.Statuses
	}
	if len(cfg.Sources) == 0 {
		cfg.Sources = []mps.Source{mps.SourceMedia}
	}
	for i := range cfg.Sources {
		cfg.Sources[i] = cfg.Sources[i].Of()
	}
	for _, f := range []struct{ v, d *int }{{&cfg.MaxPagesPerStatus, &def.MaxPagesPerStatus}, {&cfg.Partitions, &def.Partitions},
		{&cfg.PageSize, &def.PageSize}, {&cfg.MaxRestarts, &def.MaxRestarts}, {&cfg.Writers, &def.Writers}} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = def.ProgressEvery
	}
	if cfg.RecheckEvery <= 0 {
		cfg.RecheckEvery = def.RecheckEvery
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Overlap <= 0 {
		cfg.Overlap = def.Overlap
	}
	if cfg.OutcomeTimeout <= 0 {
		cfg.OutcomeTimeout = def.OutcomeTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	counted := &countingLister{next: lister}
	return &Syncer{lister: counted, calls: counted, store: store, cfg: cfg, log: log}
}

// Result summarises a run: its counters (Progress, with the RunID) and
// how it went.
type Result struct {
	Progress
	Trigger   string
	Started   time.Time
	Duration  time.Duration
	Drained   []mps.Status
	Abandoned int64
	// PartitionsMade, PartitionsError and FoldError: see RunStarted.
	PartitionsMade  int
	PartitionsError string
	FoldError       string
	// TimeRange is what the run knows of the API's time filters (a Cap*
	// state, or "" when it did not need to know).
	TimeRange string
	// Version is the build that ran it.
	Version string
	// Kind is KindFull or KindIncremental, and Why says why a run is full
	// ("first run", "due", "asked", …).
	Kind, Why string
	// LowerBound is an incremental run's FINISH lower bound.
	LowerBound time.Time
	RequestIDs []string // of the API errors that failed the run
	// APIStarted is the API's clock at the first answer (local clock if the
	// API sent no Date).
	APIStarted time.Time
	// Gap is set when this run found the archive has a hole.
	Gap *Gap
	// ClockSkew is the API's Date minus this machine's clock at the first
	// answer (HasClockSkew: one had a Date); beyond MaxClockSkew the run
	// used this machine's clock.
	ClockSkew    time.Duration
	HasClockSkew bool
	// FullFailures is how many full runs have failed since the last full
	// success, this one included.
	FullFailures int64
	// Sources is how each source's drain went, in drain order.
	Sources []SourceOutcome
}

// runState is a run's working state: the Result being built, and what the
// run needs on the way but does not report.
type runState struct {
	Result
	lastProgress time.Time // when the counters were last stored
	// seen collects the TaskIds an incremental run listed, as 64-bit hashes
	// under a per-run seed (nil: not kept): 8 bytes a task, not a string.
	seen     map[uint64]struct{}
	seenSeed maphash.Seed
	// fullFailures is RunHistory.FullFailures, as planned.
	fullFailures int64
	// recordedStart, when set, is the start recorded for the run instead
	// of APIStarted (the earlier of two clocks that disagree).
	recordedStart time.Time
	// lastSuccess is the API's clock at the last successful run's start.
	lastSuccess time.Time
	// src is the source being drained.
	src mps.Source
}

// Run performs one run, full or incremental as plan decides. It returns
// ErrLocked (and records nothing) when another process is syncing. Any
// other error means the run was recorded as failed where the database
// allowed it; pages committed before the failure stay committed.
func (s *Syncer) Run(ctx context.Context, trigger string) (Result, error) {
	return s.run(ctx, trigger, false)
}

// RunFull performs a full run whatever is due.
func (s *Syncer) RunFull(ctx context.Context, trigger string) (Result, error) {
	return s.run(ctx, trigger, true)
}

func (s *Syncer) run(ctx context.Context, trigger string, forceFull bool) (out Result, err error) {
	res := &runState{Result: Result{Trigger: trigger, Started: time.Now(), Version: s.cfg.Version}}
	defer func() { res.Duration = time.Since(res.Started); out = res.Result }()
	if s.cfg.RunTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RunTimeout)
		defer cancel()
	}

	lock, err := s.store.Lock(ctx)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return res.Result, ErrLocked
		}
		return res.Result, fmt.Errorf("take run lock: %w", err)
	}
	defer lock.Release(context.WithoutCancel(ctx))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-lock.Lost():
			cancel(errors.New("lost the run lock: its database connection died"))
		case <-ctx.Done():
		}
	}()

	s.recordLateOutcomes(ctx)
	if err := s.plan(ctx, forceFull, res); err != nil {
		return res.Result, err
	}
	started, err := s.store.StartRun(ctx, StartRunParams{Trigger: trigger, Host: s.cfg.Host, Kind: res.Kind, LowerBound: res.LowerBound, Version: s.cfg.Version})
	if err != nil {
		return res.Result, fmt.Errorf("record run start: %w", err)
	}
	res.RunID, res.Abandoned = started.RunID, started.Abandoned
	res.PartitionsMade, res.PartitionsError, res.FoldError = started.PartitionsMade, started.PartitionsError, started.FoldError

	s.calls.reset()
	runErr := s.drainSources(ctx, res)
	res.ListRequests, res.DetailRequests = s.calls.list.Load(), s.calls.detail.Load()
	if res.TokensLost > 0 {
		s.log.Warn("the API skipped tasks at page boundaries that DescribeTaskDetail no longer knows; they are not archived",
			"run_id", res.RunID, "tasks", res.TokensLost)
	}
	if runErr != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !strings.Contains(runErr.Error(), cause.Error()) {
			runErr = fmt.Errorf("%w (%v)", runErr, cause)
		}
	}
	if res.DetailErrors > 0 {
		s.log.Warn("DescribeTaskDetail failed for some tasks this run; they are read again by the next run",
			"run_id", res.RunID, "tasks", res.DetailErrors)
	}
	res.FullFailures = res.fullFailures
	if res.Kind == KindFull {
		if runErr != nil {
			res.FullFailures++
		} else {
			res.FullFailures = 0
		}
	}
	recorded := res.APIStarted
	if !res.recordedStart.IsZero() {
		recorded = res.recordedStart
	}
	fin := FinishRunParams{MaxClockSkew: s.cfg.MaxClockSkew, RunID: res.RunID, Drained: res.Drained, Failed: runErr != nil, APIStartedAt: recorded,
		Progress: res.Progress, Kind: res.Kind, FinishedAt: time.Now(), ClockSkew: res.ClockSkew, HasClockSkew: res.HasClockSkew,
		Sources: res.Sources}
	if runErr != nil {
		fin.Error = runErr.Error()
		var ae *mps.APIError
		if errors.As(runErr, &ae) && ae.RequestID != "" {
			res.RequestIDs = append(res.RequestIDs, ae.RequestID)
		}
	}
	fr, err := s.finishRun(ctx, fin)
	if err != nil {
		if !errors.Is(err, ErrRunFinished) {
			s.keepUnrecorded(fin)
		}
		return res.Result, errors.Join(runErr, fmt.Errorf("record run %d outcome: %w", res.RunID, err))
	}
	res.Gap = fr.Gap
	return res.Result, runErr
}

// finishRun records a run's outcome, even when ctx was cancelled
// (shutdown, timeout), trying again for up to OutcomeTimeout while the
// database refuses: the run's real cause is worth the wait.
func (s *Syncer) finishRun(ctx context.Context, fin FinishRunParams) (FinishResult, error) {
	finCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.OutcomeTimeout)
	defer cancel()
	pause := 200 * time.Millisecond
	for {
		fr, err := s.store.FinishRun(finCtx, fin)
		if err == nil || errors.Is(err, ErrRunFinished) {
			return fr, err
		}
		select {
		case <-finCtx.Done():
			return fr, err
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

func (s *Syncer) keepUnrecorded(fin FinishRunParams) {
	s.unrecordedMu.Lock()
	defer s.unrecordedMu.Unlock()
	if len(s.unrecorded) < maxUnrecorded {
		s.unrecorded = append(s.unrecorded, fin)
	}
}

// recordLateOutcomes records the outcomes earlier runs could not, as they
// were when those runs ended (the caller holds the run lock).
func (s *Syncer) recordLateOutcomes(ctx context.Context) {
	s.unrecordedMu.Lock()
	defer s.unrecordedMu.Unlock()
	kept := s.unrecorded[:0]
	for _, fin := range s.unrecorded {
		if _, err := s.store.FinishRun(ctx, fin); err != nil {
			if !errors.Is(err, ErrRunFinished) {
				kept = append(kept, fin)
			}
			continue
		}
		s.log.Info("recorded the outcome of an earlier run, which the database could not take when it ended",
			"run_id", fin.RunID, "failed", fin.Failed, "error", fin.Error)
	}
	s.unrecorded = kept
}

// apiNow is the API's clock at the run's first answer, or the local clock.
func (s *Syncer) apiNow(res *runState) time.Time {
	if res.APIStarted.IsZero() {
		return s.cfg.Now().UTC()
	}
	return res.APIStarted
}

// observeClock sets the run's start on the API's clock from its first
// answer's Date, believed only within MaxClockSkew of this machine's clock:
// a far-off Date (a proxy's, a misconfigured server's) would move the
// incremental lower bound past tasks it must list, or into the future,
// and blind the coverage-gap check. Beyond it, this machine's clock is
// used, and the run says so.
func (s *Syncer) observeClock(res *runState, server time.Time) {
	local := s.cfg.Now().UTC()
	res.APIStarted = local
	if server.IsZero() {
		return
	}
	res.ClockSkew, res.HasClockSkew = server.Sub(local), true
	if max := s.cfg.MaxClockSkew; max > 0 && (res.ClockSkew > max || res.ClockSkew < -max) {
		// Which clock is wrong is unknown: the run's window runs on this
		// machine's, and the start it records (the next incremental lower
		// bound's basis) is the earlier of the two, which lists more, never
		// less, whichever it was.
		s.log.Warn("the API's clock (its Date header) is far from this machine's; this run uses this machine's clock for its bounds",
			"run_id", res.RunID, "skew", res.ClockSkew.Round(time.Second).String(), "max", max.String())
		if server.Before(local) {
			res.recordedStart = server
		}
		return
	}
	res.APIStarted = server
}

// seenKey is a TaskId's key in res.seen.
func (res *runState) seenKey(id string) uint64 { return maphash.String(res.seenSeed, id) }

// countingLister counts a run's API calls.
type countingLister struct {
	next         Lister
	list, detail atomic.Int64
}

func (c *countingLister) ListTasks(ctx context.Context, q mps.Query) (*mps.Page, error) {
	c.list.Add(1)
	return c.next.ListTasks(ctx, q)
}

func (c *countingLister) TaskDetail(ctx context.Context, src mps.Source, id string) (*mps.TaskDetail, error) {
	c.detail.Add(1)
	return c.next.TaskDetail(ctx, src, id)
}

func (c *countingLister) reset() { c.list.Store(0); c.detail.Store(0) }
