// Package syncer drains every MPS task status through its ScrollToken pages
// into the archive. It owns the run's rules (drain order, termination, status
// monotonicity, page-by-page commits, the invariants a drain can observe) and
// consumes two small interfaces, an API and a task store; it knows nothing of
// HTTP or pgx.
package syncer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/mps"
)

// Lister fetches one page of one status, and one task's detail: the way to
// read a task the list skipped.
type Lister interface {
	ListTasks(ctx context.Context, q mps.Query) (*mps.Page, error)
	TaskDetail(ctx context.Context, taskID string) (*mps.TaskDetail, error)
}

// Store persists runs and pages. Every method that writes commits before it
// returns: a page that WritePage acknowledged survives a crash.
type Store interface {
	// Lock takes the archive-wide run lock. It returns ErrLocked when another
	// process holds it.
	Lock(ctx context.Context) (Lock, error)
	// StartRun records a new running run and marks runs left running by dead
	// processes as failed.
	StartRun(ctx context.Context, p StartRunParams) (RunStarted, error)
	// WritePage upserts one page in one statement, skipping rows whose content
	// did not change and never moving a task's status backwards. It is called
	// from several goroutines at once.
	WritePage(ctx context.Context, p WritePageParams) (PageResult, error)
	// RecordProgress stores the run's counters so far.
	RecordProgress(ctx context.Context, p Progress) error
	// FinishRun records the outcome. For a successful run it also records a
	// coverage gap when the previous successful run is further back than the
	// API's 7-day window.
	FinishRun(ctx context.Context, p FinishRunParams) (FinishResult, error)
	// Capability reads what the archive has learned about the API's support
	// of a feature (a zero Capability when nothing yet).
	Capability(ctx context.Context, name string) (Capability, error)
	// SetCapability records a finding, shared by every replica.
	SetCapability(ctx context.Context, c Capability) error
	// TaskStatus is a task's archived status ("" when not archived).
	TaskStatus(ctx context.Context, taskID string) (mps.Status, error)
	// EnqueueUndetailed queues for detail capture every FINISH task inside
	// the API's window that has no detail yet.
	EnqueueUndetailed(ctx context.Context, retention time.Duration) (int64, error)
	// RunHistory is what the ledger says of earlier successful runs.
	RunHistory(ctx context.Context) (RunHistory, error)
	// InFlightTasks lists up to limit archived tasks last seen WAITING or
	// PROCESSING and not known gone, in TaskId order after the TaskId after
	// ("" from the start): a backlog of any size is read a batch at a time.
	InFlightTasks(ctx context.Context, after string, limit int) ([]InFlightTask, error)
	// ProbeTask finds an archived FINISH task created after since whose
	// FinishTime is at least minSpan after its CreateTime: the probe that
	// tells which task time the API's time filters read.
	ProbeTask(ctx context.Context, since time.Time, minSpan time.Duration) (ProbeTask, bool, error)
	// MarkGone records that unfinished tasks left the API's window.
	MarkGone(ctx context.Context, taskIDs []string) error
	// CompleteDetail stores a task's detail (see package details).
	CompleteDetail(ctx context.Context, r details.Record) (bool, error)
}

// RunHistory is the API's clock at the start of the last successful run
// and of the last successful full run (zero: none), and how long ago they
// started on the archive's own clock; and how many full runs failed since
// the last full success, and whether the newest finished run was one.
type RunHistory struct {
	LastSuccess, LastFull       time.Time
	SinceSuccess, SinceLastFull time.Duration
	FullFailures                int64
	LastRunFailedFull           bool
}

// ProbeTask is an archived FINISH task with its two times.
type ProbeTask struct {
	TaskID                 string
	CreateTime, FinishTime time.Time
}

// InFlightTask is an archived task last seen unfinished.
type InFlightTask struct {
	TaskID     string
	CreateTime time.Time // zero when unknown
	Raw        []byte    // its archived record
}

// Lock is a held run lock.
type Lock interface {
	// Lost is closed if the lock's connection dies while held.
	Lost() <-chan struct{}
	// Release gives the lock back; it is safe to call more than once.
	Release(ctx context.Context)
}

// ErrLocked means another process is syncing; the run was skipped.
var ErrLocked = errors.New("another sync is running")

// StartRunParams describes a run about to start.
type StartRunParams struct {
	Trigger string // "sync", "schedule", "startup", "demo"
	Host    string
	Kind    string // KindFull or KindIncremental
	Version string // the build running it
	// LowerBound is an incremental run's FINISH lower bound (zero: full).
	LowerBound time.Time
}

// The kinds of run.
const (
	KindFull        = "full"        // every status drained in full
	KindIncremental = "incremental" // in-flight lists, FINISH since the last success, vanished tasks resolved
)

// RunStarted is what StartRun recorded.
type RunStarted struct {
	RunID     int64
	Abandoned int64 // runs of dead processes marked failed
}

// WritePageParams is one page bound for the archive.
type WritePageParams struct {
	RunID  int64
	Status mps.Status
	Tasks  []mps.Task
	// EnqueueDetails queues tasks for detail capture: EnqueueFinished the
	// tasks the page shows FINISH for the first time, EnqueueListed every
	// task on it without a detail; "" none.
	EnqueueDetails string
	// DetailRetention is the deadline a queued task is planned by, after
	// its creation.
	DetailRetention time.Duration
}

// The values of WritePageParams.EnqueueDetails.
const (
	EnqueueFinished = "finished"
	EnqueueListed   = "listed"
)

// Progress is a run's counters.
type Progress struct {
	RunID     int64
	Pages     int
	Seen      int64
	Inserted  int64
	Updated   int64
	Unchanged int64
	Skipped   int64
	Warnings  int64
	Events
	// ListRequests and DetailRequests count the run's API calls (each
	// call once, whatever its retries).
	ListRequests   int64
	DetailRequests int64
	// Resolved counts in-flight tasks an incremental run did not see listed
	// and read by DescribeTaskDetail; Gone, those it found had left the
	// API's window unfinished; Unresolved, those whose detail was gone
	// while the list may still hold them (a full run will).
	Resolved, Gone, Unresolved int64
	// DetailErrors counts DescribeTaskDetail reads that failed for one
	// task (an in-flight task to resolve, a skipped token to recover):
	// that task's problem, retried by the next run, never the run's.
	DetailErrors int64
}

// Events counts what a run observed of the API's paging that departs from
// the reference page's reading, and what it did about it.
type Events struct {
	// Restarts: cursors restarted from the top after the API rejected a
	// ScrollToken.
	Restarts int64
	// TokensRecovered: a page after ScrollToken T neither started with nor
	// held T, so T's task was read another way: from the archive when it is
	// FINISH there already (nothing about it can change), else by
	// DescribeTaskDetail.
	TokensRecovered int64
	// TokensLost: such a task that DescribeTaskDetail no longer knew.
	TokensLost int64
	// EchoedTokens: lists that ended with a short page repeating the
	// request's token instead of "".
	EchoedTokens int64
	// OutOfRange: records outside the time range the request asked for (the
	// API ignored the filter).
	OutOfRange int64
}

// Any reports whether anything was counted.
func (e Events) Any() bool { return e != Events{} }

// Capability is a finding about the API, learned from its answers.
type Capability struct {
	Name      string
	State     string // CapSupported, CapUnsupported or CapIgnored
	CheckedAt time.Time
	Detail    string
}

// The states of a capability, and the capabilities the syncer learns.
const (
	CapSupported   = "supported"
	CapUnsupported = "unsupported" // the API rejects the parameter (UnknownParameter)
	CapIgnored     = "ignored"     // the API accepts it and has no regard for it

	// CapTimeRange is StartTime/EndTime on DescribeTasks.
	CapTimeRange = "time_range"
	// CapFailedFilter is SubTaskHasFailed on DescribeTasks.
	CapFailedFilter = "sub_task_has_failed"
	// CapTimeField is which task time StartTime/EndTime filter on:
	// FieldCreateTime or FieldFinishTime (no row: not known yet).
	CapTimeField = "time_field"

	FieldCreateTime = "create_time"
	FieldFinishTime = "finish_time"
)

// The detail capture modes (details.mode).
const (
	DetailsAll    = "all"    // every task that reaches FINISH
	DetailsFailed = "failed" // the tasks DescribeTasks lists with SubTaskHasFailed=true
	DetailsNone   = "none"
)

// PageResult counts what a page did to the archive.
type PageResult struct {
	Inserted  int64
	Updated   int64
	Unchanged int64
}

// FinishRunParams is a run's outcome.
type FinishRunParams struct {
	Progress
	RunID   int64
	Failed  bool
	Error   string
	Drained []mps.Status
	// APIStartedAt is the API's clock at the run's first answer.
	APIStartedAt time.Time
	// Kind is the kind the run ended as (an incremental run that found the
	// time filters gone drains in full).
	Kind string
	// FinishedAt is when the run ended (zero: when recorded).
	FinishedAt time.Time
	// ClockSkew is the API's clock (its Date) minus this machine's at the
	// run's first answer; HasClockSkew is false when no answer had a Date.
	ClockSkew    time.Duration
	HasClockSkew bool
	// MaxClockSkew is the syncer's (0: the API's clock is trusted): an
	// earlier run's API start is read no later than its local start plus
	// it, so one far-future Date cannot blind the coverage-gap check.
	MaxClockSkew time.Duration
}

// FinishResult is what recording the outcome found.
type FinishResult struct {
	Gap *Gap
}

// Gap is a period whose tasks the archive may be missing: tasks created in
// (Start, End] left the API's window before any successful run listed them.
type Gap struct {
	PreviousRunID int64
	Start, End    time.Time
}

// Window is how far back the API lists tasks.
const Window = mps.Window

// MaxClockSkew is the usual Config.MaxClockSkew: how far the real API's
// Date may be from this machine's clock before it is distrusted. The
// incremental overlap (15 m) covers what is within it.
const MaxClockSkew = 5 * time.Minute

// Config tunes a Syncer.
type Config struct {
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
	// DetailsFailed or DetailsNone (the default: none).
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

func (s *Syncer) run(ctx context.Context, trigger string, forceFull bool) (res Result, err error) {
	res = Result{Trigger: trigger, Started: time.Now(), Version: s.cfg.Version}
	defer func() { res.Duration = time.Since(res.Started) }()
	if s.cfg.RunTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RunTimeout)
		defer cancel()
	}

	lock, err := s.store.Lock(ctx)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return res, ErrLocked
		}
		return res, fmt.Errorf("take run lock: %w", err)
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
	if err := s.plan(ctx, forceFull, &res); err != nil {
		return res, err
	}
	started, err := s.store.StartRun(ctx, StartRunParams{Trigger: trigger, Host: s.cfg.Host, Kind: res.Kind, LowerBound: res.LowerBound, Version: s.cfg.Version})
	if err != nil {
		return res, fmt.Errorf("record run start: %w", err)
	}
	res.RunID, res.Abandoned = started.RunID, started.Abandoned

	s.calls.reset()
	var runErr error
	if res.Kind == KindIncremental {
		runErr = s.drainIncremental(ctx, &res)
	} else {
		runErr = s.drainAll(ctx, &res)
	}
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
		Progress: res.Progress, Kind: res.Kind, FinishedAt: time.Now(), ClockSkew: res.ClockSkew, HasClockSkew: res.HasClockSkew}
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
		return res, errors.Join(runErr, fmt.Errorf("record run %d outcome: %w", res.RunID, err))
	}
	res.Gap = fr.Gap
	return res, runErr
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

func (s *Syncer) drainAll(ctx context.Context, res *Result) error {
	for _, st := range s.cfg.Statuses {
		var err error
		if st == mps.StatusFinish {
			err = s.drainFinishAny(ctx, res)
		} else {
			_, err = s.drain(ctx, st, []cursor{{q: mps.Query{Status: st}}}, 0, res)
		}
		if err != nil {
			return err
		}
		res.Drained = append(res.Drained, st)
	}
	return nil
}

// enqueue says which tasks of a page are queued for detail capture.
func (s *Syncer) enqueue(f fetched) string {
	switch {
	case f.q.SubTaskHasFailed != nil && *f.q.SubTaskHasFailed:
		return EnqueueListed
	case s.cfg.Details == DetailsAll:
		return EnqueueFinished
	}
	return ""
}

// drainFailed lists FINISH with SubTaskHasFailed=true and queues what it
// lists for detail capture. Where the API rejects the filter (learned and
// remembered like the time filters), every FINISH task without a detail is
// queued instead: the failed ones are among them.
func (s *Syncer) drainFailed(ctx context.Context, res *Result) error {
	prev, err := s.store.Capability(ctx, CapFailedFilter)
	if err != nil {
		return fmt.Errorf("read what the API supports: %w", err)
	}
	fresh := prev.State != "" && time.Since(prev.CheckedAt) < s.cfg.RecheckEvery
	if !fresh || prev.State == CapSupported {
		yes := true
		q := mps.Query{Status: mps.StatusFinish, SubTaskHasFailed: &yes}
		if res.Kind == KindIncremental {
			// Like FINISH's: a failed task from before the bound is resolved
			// by its detail when it vanishes from the in-flight lists.
			q.Start, q.End = res.LowerBound, s.apiNow(res).Add(partitionMargin).Truncate(time.Second)
		}
		_, err := s.drain(ctx, mps.StatusFinish, []cursor{{q: q}}, 0, res)
		switch {
		case err == nil:
			if !fresh {
				s.learn(ctx, prev, CapSupported, nil, res)
			}
			return nil
		case !mps.UnknownParameter(err, "SubTaskHasFailed"):
			return err
		}
		s.learn(ctx, prev, CapUnsupported, err, res)
	}
	if _, err := s.store.EnqueueUndetailed(ctx, s.cfg.DetailRetention); err != nil {
		return err
	}
	return nil
}

// errFilterIgnored is wrapped when a ranged page held records outside its
// range.
var errFilterIgnored = errors.New("the API ignored the time filter")

// drainFinish drains FINISH as time partitions where the API honours
// StartTime/EndTime on CreateTime, and as one unfiltered cursor otherwise.
// What is known of the filters is read from the archive, shared by every
// replica; a missing finding, or one older than RecheckEvery, is learned
// again from a probe: the first page of a middle partition, fetched alone,
// so that a server that rejects or ignores the filters costs one request
// more than a single cursor. Every ranged page is checked as well, so a
// finding that goes stale mid-run is caught.
//
// Partitions are safe only on CreateTime, which every task has: a filter
// on FinishTime cannot match a FINISH record without one (Tencent's
// international examples show such records), so there, or while the field
// is not known, FINISH is one unfiltered cursor. It costs the same
// requests, only less concurrency. The first page of a ranged cursor that
// the API refuses (a bound it will not take) also falls back to one
// unfiltered cursor rather than failing every full run.
func (s *Syncer) drainFinish(ctx context.Context, res *Result) error {
	prev, err := s.store.Capability(ctx, CapTimeRange)
	if err != nil {
		return fmt.Errorf("read what the API supports: %w", err)
	}
	res.TimeRange = prev.State
	one := []cursor{{q: mps.Query{Status: mps.StatusFinish}}}
	fresh := prev.State != "" && time.Since(prev.CheckedAt) < s.cfg.RecheckEvery
	if fresh && prev.State != CapSupported {
		_, err := s.drain(ctx, mps.StatusFinish, one, 0, res)
		return err
	}
	qs := s.partitions(s.apiNow(res))
	if !fresh {
		i := len(qs) / 2
		rest, err := s.drain(ctx, mps.StatusFinish, qs[i:i+1], 1, res)
		if state, ok := filterFinding(err); ok {
			s.learn(ctx, prev, state, err, res)
			if state != CapSupported {
				_, err := s.drain(ctx, mps.StatusFinish, one, 0, res)
				return err
			}
			qs = append(append(qs[:i:i], qs[i+1:]...), rest...)
			prev.State = CapSupported
		} else if boundRefused(err) {
			s.log.Warn("DescribeTasks refused a time-ranged first page; FINISH is drained as one cursor this run", "error", err)
			_, err := s.drain(ctx, mps.StatusFinish, one, 0, res)
			return err
		} else {
			return err
		}
	}
	field, err := s.timeField(ctx, res)
	if err != nil {
		return err
	}
	if field != FieldCreateTime {
		// The partitions already drained (the probe's) are a subset of the
		// one cursor's list: re-listing them changes nothing.
		_, err := s.drain(ctx, mps.StatusFinish, one, 0, res)
		return err
	}
	_, err = s.drain(ctx, mps.StatusFinish, qs, 0, res)
	if state, ok := filterFinding(err); ok && state != CapSupported {
		s.learn(ctx, prev, state, err, res)
		_, err = s.drain(ctx, mps.StatusFinish, one, 0, res)
	} else if boundRefused(err) {
		s.log.Warn("DescribeTasks refused a time-ranged first page; FINISH is drained as one cursor this run", "error", err)
		_, err = s.drain(ctx, mps.StatusFinish, one, 0, res)
	}
	return err
}

// boundRefused reports whether a ranged drain failed on a first page the
// API refused as a bad parameter value (a bound outside what it takes).
func boundRefused(err error) bool {
	var pe *pageError
	return errors.As(err, &pe) && pe.page == 1 && pe.ranged && strings.HasPrefix(mps.ErrorCode(err), mps.CodeInvalidParameter) &&
		mps.ErrorCode(err) != mps.CodeInvalidLimit
}

// timeField is which task time the API's time filters read, as learned,
// probed again after RecheckEvery: an archived task whose FinishTime is
// well after its CreateTime is asked for by a narrow range around each
// time; the range that lists it names the field. "" while no such task is
// archived yet (a first run), or the probe is inconclusive.
func (s *Syncer) timeField(ctx context.Context, res *Result) (string, error) {
	prev, err := s.store.Capability(ctx, CapTimeField)
	if err != nil {
		return "", fmt.Errorf("read what the API supports: %w", err)
	}
	if prev.State != "" && time.Since(prev.CheckedAt) < s.cfg.RecheckEvery {
		return prev.State, nil
	}
	now := s.apiNow(res)
	t, ok, err := s.store.ProbeTask(ctx, now.Add(-Window+time.Hour), probeSpan)
	if err != nil {
		return "", fmt.Errorf("find a task to probe the time filters with: %w", err)
	}
	if !ok {
		return prev.State, nil
	}
	for _, f := range []struct {
		field string
		at    time.Time
	}{{FieldCreateTime, t.CreateTime}, {FieldFinishTime, t.FinishTime}} {
		q := mps.Query{Status: mps.StatusFinish, Start: f.at.Add(-time.Second).Truncate(time.Second), End: f.at.Add(2 * time.Second).Truncate(time.Second)}
		page, err := s.lister.ListTasks(ctx, q)
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			s.log.Debug("could not probe which time the API's filters read", "error", err)
			return prev.State, nil
		}
		if holds(page.Tasks, t.TaskID) {
			c := Capability{Name: CapTimeField, State: f.field, CheckedAt: time.Now(), Detail: "probed with task " + t.TaskID}
			if err := s.store.SetCapability(ctx, c); err != nil && ctx.Err() == nil {
				s.log.Warn("could not record what the API supports", "capability", CapTimeField, "error", err)
			}
			if prev.State != f.field {
				s.log.Debug("DescribeTasks' StartTime/EndTime filter on "+f.field, "capability", CapTimeField, "was", cmp.Or(prev.State, "unknown"))
			}
			return f.field, nil
		}
	}
	return prev.State, nil
}

// probeSpan is how far apart a probe task's two times must be for a
// narrow range to hold one and not the other.
const probeSpan = 10 * time.Second

// filterFinding reads what a ranged drain's outcome says of the time
// filters; ok is false when it says nothing (another error).
func filterFinding(err error) (state string, ok bool) {
	switch {
	case err == nil:
		return CapSupported, true
	case errors.Is(err, errFilterIgnored):
		return CapIgnored, true
	case mps.UnknownParameter(err, "StartTime", "EndTime"):
		return CapUnsupported, true
	}
	return "", false
}

// learn records a finding about the API and logs it when it changed.
func (s *Syncer) learn(ctx context.Context, prev Capability, state string, cause error, res *Result) {
	name := prev.Name
	if name == CapTimeRange {
		res.TimeRange = state
	}
	c := Capability{Name: name, State: state, CheckedAt: time.Now()}
	if cause != nil {
		c.Detail = cause.Error()
	}
	if err := s.store.SetCapability(ctx, c); err != nil && ctx.Err() == nil {
		s.log.Warn("could not record what the API supports", "capability", name, "error", err)
	}
	if prev.State == state {
		return
	}
	was := cmp.Or(prev.State, "unknown")
	attrs := []any{"capability", name, "state", state, "was", was}
	verb := map[string]string{CapSupported: "honours", CapIgnored: "ignores", CapUnsupported: "rejects"}[state]
	switch name {
	case CapTimeRange:
		if state == CapSupported {
			s.log.Debug("DescribeTasks honours StartTime/EndTime: FINISH is drained in time partitions", append(attrs, "partitions", s.cfg.Partitions)...)
			return
		}
		s.log.Warn("DescribeTasks "+verb+" StartTime/EndTime: FINISH is drained as one cursor (checked again in "+s.cfg.RecheckEvery.String()+")",
			append(attrs, "detail", c.Detail)...)
	case CapFailedFilter:
		if state == CapSupported {
			s.log.Debug("DescribeTasks honours SubTaskHasFailed: details.mode failed reads the failed tasks' details only", attrs...)
			return
		}
		s.log.Warn("DescribeTasks "+verb+" SubTaskHasFailed: details.mode failed reads the detail of every finished task (checked again in "+s.cfg.RecheckEvery.String()+")",
			append(attrs, "detail", c.Detail)...)
	}
}

// apiNow is the API's clock at the run's first answer, or the local clock.
func (s *Syncer) apiNow(res *Result) time.Time {
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
func (s *Syncer) observeClock(res *Result, server time.Time) {
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
func (res *Result) seenKey(id string) uint64 { return maphash.String(res.seenSeed, id) }

// partitionMargin widens the partitioned span beyond the API's window at
// both ends, for clock skew and whatever time the window is measured on.
const partitionMargin = time.Hour

// partitions returns the FINISH cursors: Partitions contiguous time ranges
// spanning the API's window ending at now, each with both bounds, each
// overlapping the next by a second (bounds may be exclusive).
func (s *Syncer) partitions(now time.Time) []cursor {
	p := s.cfg.Partitions
	from := now.Add(-Window - partitionMargin).Truncate(time.Second)
	to := now.Add(partitionMargin).Truncate(time.Second)
	step := to.Sub(from) / time.Duration(p)
	out := make([]cursor, p)
	for i := range out {
		q := mps.Query{Status: mps.StatusFinish, Start: from, End: to}
		if i > 0 {
			q.Start = from.Add(time.Duration(i)*step - time.Second).Truncate(time.Second)
		}
		if i < p-1 {
			q.End = from.Add(time.Duration(i+1)*step + time.Second).Truncate(time.Second)
		}
		out[i].q = q
	}
	return out
}

// cursor is a place in one list: the next request, and the last record of
// the page before it (to ask again from, should the API skip the token).
type cursor struct {
	q        mps.Query
	prevLast string
}

// fetched is a page on its way to the writers.
type fetched struct {
	page *mps.Page
	q    mps.Query
	n    int
	// status is the list its tasks are archived under: the drain's, or for
	// a task recovered by DescribeTaskDetail the status the detail gave.
	status mps.Status
	// recovered marks a one-task page read by DescribeTaskDetail.
	recovered bool
}

// drain walks the pages of one status's cursors qs. Fetchers (one per
// cursor) fetch ahead while Writers goroutines commit pages; this goroutine
// only counts. The channels hold a page per cursor, so memory stays at a few
// pages whatever the archive's size. With maxPages > 0 each cursor stops
// after that many pages, and the cursors not yet at their end are returned,
// ready to go on.
func (s *Syncer) drain(ctx context.Context, status mps.Status, qs []cursor, maxPages int, res *Result) (rest []cursor, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	began, pages0, seen0 := time.Now(), res.Pages, res.Seen
	defer func() {
		if err == nil {
			s.log.Debug("status drained", "run_id", res.RunID, "status", status, "cursors", len(qs),
				"pages", res.Pages-pages0, "tasks", res.Seen-seen0, "seconds", time.Since(began).Round(time.Millisecond).Seconds())
		}
	}()
	pages := make(chan fetched, len(qs))
	fetchErrs := make(chan fetchResult, len(qs))
	// A failed fetch stops the other cursors but lets the writers commit what
	// was already fetched; a failed write stops everything.
	fetchCtx, cancelFetch := context.WithCancel(ctx)
	defer cancelFetch()
	var fetchers sync.WaitGroup
	for _, q := range qs {
		fetchers.Add(1)
		go func() {
			defer fetchers.Done()
			fr := s.fetch(fetchCtx, q, maxPages, pages)
			if fr.err != nil {
				cancelFetch()
			}
			fetchErrs <- fr
		}()
	}
	go func() { fetchers.Wait(); close(pages); close(fetchErrs) }()

	type written struct {
		f     fetched
		tasks int
		pr    PageResult
		err   error
	}
	done := make(chan written, s.cfg.Writers)
	var writers sync.WaitGroup
	for range s.cfg.Writers {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for f := range pages {
				if ctx.Err() != nil {
					continue // drain the channel so the fetchers can exit
				}
				tasks := dedupe(f.page.Tasks)
				pr, err := s.store.WritePage(ctx, WritePageParams{RunID: res.RunID, Status: f.status, Tasks: tasks,
					EnqueueDetails: s.enqueue(f), DetailRetention: s.cfg.DetailRetention})
				if err != nil {
					cancel()
				}
				done <- written{f: f, tasks: len(tasks), pr: pr, err: err}
			}
		}()
	}
	go func() { writers.Wait(); close(done) }()

	var writeErr error
	if res.lastProgress.IsZero() {
		res.lastProgress = time.Now()
	}
	for w := range done {
		if w.err != nil {
			if writeErr == nil && !(errors.Is(w.err, context.Canceled) && ctx.Err() != nil) {
				writeErr = fmt.Errorf("write page %d of %s: %w", w.f.n, status, w.err)
			}
			continue
		}
		p := w.f.page
		if res.APIStarted.IsZero() {
			s.observeClock(res, p.ServerTime)
		}
		if !w.f.recovered {
			res.Pages++
		}
		if res.seen != nil {
			for i := range p.Tasks {
				res.seen[res.seenKey(p.Tasks[i].TaskID)] = struct{}{}
			}
		}
		res.Seen += int64(w.tasks)
		res.Inserted += w.pr.Inserted
		res.Updated += w.pr.Updated
		res.Unchanged += w.pr.Unchanged
		res.Skipped += int64(p.Skipped)
		res.Warnings += int64(p.Warnings())
		if s.cfg.OnPage != nil {
			s.cfg.OnPage(PageEvent{RunID: res.RunID, Status: w.f.status, Page: w.f.n, Tasks: w.tasks, PageResult: w.pr})
		}
		if time.Since(res.lastProgress) >= s.cfg.ProgressEvery {
			res.lastProgress = time.Now()
			if err := s.store.RecordProgress(ctx, res.Progress); err != nil && ctx.Err() == nil {
				s.log.Warn("could not record run progress", "run_id", res.RunID, "error", err)
			}
		}
	}
	// The first real failure wins over the cancellations it caused.
	var fetchErr error
	for fr := range fetchErrs {
		res.Events.add(fr.Events)
		res.DetailErrors += fr.detailErrors
		if fr.next != nil {
			rest = append(rest, *fr.next)
		}
		if fr.err != nil && (fetchErr == nil || errors.Is(fetchErr, context.Canceled) && !errors.Is(fr.err, context.Canceled)) {
			fetchErr = fr.err
		}
	}
	if writeErr != nil {
		return nil, writeErr
	}
	if fetchErr != nil && errors.Is(fetchErr, context.Canceled) && ctx.Err() != nil {
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
	}
	return rest, fetchErr
}

func (e *Events) add(o Events) {
	e.Restarts += o.Restarts
	e.TokensRecovered += o.TokensRecovered
	e.TokensLost += o.TokensLost
	e.EchoedTokens += o.EchoedTokens
	e.OutOfRange += o.OutOfRange
}

// rangeSlack absorbs bounds that are exclusive, or rounded to the second.
const rangeSlack = time.Second

// countOutside counts the records that no reading of q's range admits: both
// CreateTime and FinishTime known and outside it. A record missing either
// time proves nothing.
func countOutside(tasks []mps.Task, q mps.Query) int64 {
	out := func(t time.Time) bool {
		return !t.IsZero() && (t.Before(q.Start.Add(-rangeSlack)) || t.After(q.End.Add(rangeSlack)))
	}
	var n int64
	for i := range tasks {
		if out(tasks[i].CreateTime) && out(tasks[i].FinishTime) {
			n++
		}
	}
	return n
}

type fetchResult struct {
	Events
	detailErrors int64
	next         *cursor // where the cursor goes on, when maxPages stopped it
	err          error
}

// fetch follows one cursor's ScrollTokens to the end of its list, checking
// what a drain can observe of the API's paging:
//
//   - The page after token T should start with T's task. If T's task is not
//     on it at all, the API skipped it (tokens that point past their record,
//     or a task that moved away): T is read by DescribeTaskDetail and
//     archived under the status the detail gives.
//   - An empty token ends the list, and so does a short page that repeats
//     the request's token (or a full one that repeats it twice in a row).
//     Any other token seen twice, or more pages than the cap, ends the drain
//     with an error. TotalCount is never consulted:
//     the API page's own examples disagree about it.
//   - A rejected token (a parameter error or a missing resource, the API
//     documents no code of its own for it) restarts the cursor from the top,
//     at most MaxRestarts times a run; a rejected first page stays fatal.
//   - A ranged page must hold only records in its range; one that does not
//     ends the drain with errFilterIgnored (after its page is written).
func (s *Syncer) fetch(ctx context.Context, c cursor, maxPages int, out chan<- fetched) fetchResult {
	var fr fetchResult
	q, prevLast := c.q, c.prevLast
	seen := map[string]struct{}{}
	top := q
	top.ScrollToken = ""
	send := func(f fetched) bool {
		select {
		case out <- f:
			return true
		case <-ctx.Done():
			fr.err = ctx.Err()
			return false
		}
	}
	echoed := false // the last page repeated its request's token
	for n := 1; ; n++ {
		if n > s.cfg.MaxPagesPerStatus {
			fr.err = fmt.Errorf("drain %s: more than %d pages; stopping (raise sync.max_pages_per_status if the account really is this large)", q.Status, s.cfg.MaxPagesPerStatus)
			return fr
		}
		if maxPages > 0 && n > maxPages {
			fr.next = &cursor{q: q, prevLast: prevLast}
			return fr
		}
		page, err := s.lister.ListTasks(ctx, q)
		if err != nil {
			if q.ScrollToken != "" && mps.TokenRejected(mps.ErrorCode(err)) && fr.Restarts < int64(s.cfg.MaxRestarts) {
				s.log.Debug("scroll token rejected; restarting the cursor from the top", "status", q.Status, "page", n, "error", err)
				fr.Restarts++
				q, n, prevLast, echoed = top, 0, "", false
				clear(seen)
				continue
			}
			if ctx.Err() != nil {
				fr.err = ctx.Err()
			} else {
				fr.err = &pageError{page: n, ranged: q.Ranged(), err: fmt.Errorf("fetch page %d of %s: %w", n, q.Status, err)}
			}
			return fr
		}
		if q.ScrollToken != "" && !holds(page.Tasks, q.ScrollToken) {
			if fr.err = s.recoverSkipped(ctx, q, prevLast, n, send, &fr); fr.err != nil {
				return fr
			}
		}
		if !send(fetched{page: page, q: q, n: n, status: q.Status}) {
			return fr
		}
		if q.Ranged() {
			if k := countOutside(page.Tasks, q); k > 0 {
				fr.OutOfRange += k
				fr.err = fmt.Errorf("drain %s: page %d held %d records outside the requested %s…%s: %w", q.Status, n, k,
					q.Start.Format(time.RFC3339), q.End.Format(time.RFC3339), errFilterIgnored)
				return fr
			}
		}
		next := page.ScrollToken
		if next == "" {
			return fr
		}
		if next == q.ScrollToken {
			// A server that repeats the request's token at the end of its
			// list does so on a full last page too: ask once more, and a
			// second echo is the end.
			if len(page.Tasks) < s.cfg.PageSize || echoed {
				fr.EchoedTokens++
				return fr
			}
			echoed = true
			continue
		}
		echoed = false
		if _, dup := seen[next]; dup {
			fr.err = fmt.Errorf("drain %s: the API returned ScrollToken %q twice; stopping instead of looping", q.Status, next)
			return fr
		}
		seen[next] = struct{}{}
		if len(page.Tasks) > 0 {
			prevLast = page.Tasks[len(page.Tasks)-1].TaskID
		}
		q.ScrollToken = next
	}
}

// recoverSkipped archives the task of token q.ScrollToken, which the page
// after it skipped. A task FINISH in the archive needs nothing more; any
// other is read by DescribeTaskDetail (its own quota, not the list's); where the detail is gone (its retention can be shorter than the
// list's), the list is asked once more from the record before the token,
// prevLast, which a server whose pages start after their token answers
// from the token's record on.
func (s *Syncer) recoverSkipped(ctx context.Context, q mps.Query, prevLast string, n int, send func(fetched) bool, fr *fetchResult) error {
	id := q.ScrollToken
	if st, err := s.store.TaskStatus(ctx, id); err != nil {
		return fmt.Errorf("read task %s, skipped by page %d of %s: %w", id, n, q.Status, err)
	} else if st == mps.StatusFinish {
		fr.TokensRecovered++
		return nil
	}
	d, err := s.lister.TaskDetail(ctx, id)
	if err == nil {
		st := d.Status
		if st.Rank() == 0 {
			st = q.Status
		}
		if send(fetched{page: &mps.Page{Tasks: []mps.Task{d.ListTask()}, ServerTime: d.ServerTime}, q: q, n: n, status: st, recovered: true}) {
			fr.TokensRecovered++
		}
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !mps.Gone(mps.ErrorCode(err)) {
		// That task's problem, not the run's: counted, and the next run
		// meets it again.
		fr.detailErrors++
		s.log.Debug("could not read a task the list skipped; the next run tries again", "task_id", id, "status", q.Status, "page", n, "error", err)
		return nil
	}
	if prevLast != "" {
		again := q
		again.ScrollToken = prevLast
		if page, err := s.lister.ListTasks(ctx, again); err == nil && holds(page.Tasks, id) {
			if send(fetched{page: page, q: again, n: n, status: q.Status, recovered: true}) {
				fr.TokensRecovered++
			}
			return nil
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fr.TokensLost++
	s.log.Debug("a task skipped by the list is gone from DescribeTaskDetail too", "task_id", id, "status", q.Status, "page", n)
	return nil
}

// pageError is a page the API did not give, and where it was.
type pageError struct {
	page   int
	ranged bool
	err    error
}

func (e *pageError) Error() string { return e.err.Error() }
func (e *pageError) Unwrap() error { return e.err }

// holds reports whether tasks has the TaskId id.
func holds(tasks []mps.Task, id string) bool {
	for i := range tasks {
		if tasks[i].TaskID == id {
			return true
		}
	}
	return false
}

// dedupe keeps the last record of each TaskId: one INSERT … ON CONFLICT
// cannot touch a row twice.
func dedupe(tasks []mps.Task) []mps.Task {
	if len(tasks) < 2 {
		return tasks
	}
	pos := make(map[string]int, len(tasks))
	out := tasks[:0:0]
	for _, t := range tasks {
		if i, ok := pos[t.TaskID]; ok {
			out[i] = t
			continue
		}
		pos[t.TaskID] = len(out)
		out = append(out, t)
	}
	return out
}
