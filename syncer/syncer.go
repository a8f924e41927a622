// Package syncer drains every MPS task status through its ScrollToken pages
// into the archive. It owns the run's rules (drain order, termination, status
// monotonicity, page-by-page commits) and consumes two small interfaces, a
// task lister and a task store; it knows nothing of HTTP or pgx.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Lister fetches one page of one status.
type Lister interface {
	ListTasks(ctx context.Context, q mps.Query) (*mps.Page, error)
}

// Store persists runs and pages. Every method that writes commits before it
// returns: a page that WritePage acknowledged survives a crash.
type Store interface {
	// Lock takes the archive-wide run lock. It returns ErrLocked when another
	// process holds it.
	Lock(ctx context.Context) (Lock, error)
	// StartRun records a new running run and marks runs left running by dead
	// processes as failed.
	StartRun(ctx context.Context, p StartRun) (RunStarted, error)
	// WritePage upserts one page in one statement, skipping rows whose content
	// did not change and never moving a task's status backwards. It is called
	// from several goroutines at once.
	WritePage(ctx context.Context, p PageWrite) (PageResult, error)
	// RecordProgress stores the run's counters so far.
	RecordProgress(ctx context.Context, p Progress) error
	// FinishRun records the outcome. For a successful run it also records a
	// coverage gap when the previous successful run is further back than the
	// API's 7-day window.
	FinishRun(ctx context.Context, p FinishRun) (FinishResult, error)
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

// StartRun describes a run about to start.
type StartRun struct {
	Trigger string // "sync", "schedule", "startup", "demo"
	Host    string
}

// RunStarted is what StartRun recorded.
type RunStarted struct {
	RunID     int64
	Abandoned int64 // runs of dead processes marked failed
}

// PageWrite is one page bound for the archive.
type PageWrite struct {
	RunID  int64
	Status mps.Status
	Tasks  []mps.Task
}

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
}

// PageResult counts what a page did to the archive.
type PageResult struct {
	Inserted  int64
	Updated   int64
	Unchanged int64
}

// FinishRun is a run's outcome.
type FinishRun struct {
	Progress
	RunID   int64
	Failed  bool
	Error   string
	Drained []mps.Status
	// APIStartedAt is the API's clock at the run's first answer.
	APIStartedAt time.Time
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
const Window = 168 * time.Hour

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
	// create-time ranges drained concurrently (default 1: one cursor). The
	// ranges are contiguous, overlap by a second and are open at both ends,
	// so every FINISH task (which has all its times) falls in at least one,
	// whichever task time the API's StartTime/EndTime filter on.
	Partitions int
	// Host is recorded with each run.
	Host string
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
	store  Store
	cfg    Config
	log    *slog.Logger
}

// New returns a Syncer.
func New(lister Lister, store Store, cfg Config, log *slog.Logger) *Syncer {
	if len(cfg.Statuses) == 0 {
		cfg.Statuses = mps.Statuses
	}
	if cfg.MaxPagesPerStatus <= 0 {
		cfg.MaxPagesPerStatus = 200_000
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	if cfg.Writers <= 0 {
		cfg.Writers = 2
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 2 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Syncer{lister: lister, store: store, cfg: cfg, log: log}
}

// Result summarises a run: its counters (Progress, with the RunID) and
// how it went.
type Result struct {
	Progress
	Trigger    string
	Started    time.Time
	Duration   time.Duration
	Drained    []mps.Status
	Restarts   int // drains restarted after a rejected ScrollToken
	Abandoned  int64
	RequestIDs []string // of the API errors that failed the run
	// APIStarted is the API's clock at the first answer (local clock if the
	// API sent no Date).
	APIStarted time.Time
	// Gap is set when this run found the archive has a hole.
	Gap *Gap

	lastProgress time.Time // when the counters were last stored
}

// Run performs one full drain. It returns ErrLocked (and records nothing)
// when another process is syncing. Any other error means the run was
// recorded as failed where the database allowed it; pages committed before
// the failure stay committed.
func (s *Syncer) Run(ctx context.Context, trigger string) (res Result, err error) {
	res = Result{Trigger: trigger, Started: time.Now()}
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

	started, err := s.store.StartRun(ctx, StartRun{Trigger: trigger, Host: s.cfg.Host})
	if err != nil {
		return res, fmt.Errorf("record run start: %w", err)
	}
	res.RunID, res.Abandoned = started.RunID, started.Abandoned

	runErr := s.drainAll(ctx, &res)
	if runErr != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			runErr = fmt.Errorf("%w (%v)", runErr, cause)
		}
	}
	fin := FinishRun{RunID: res.RunID, Drained: res.Drained, Failed: runErr != nil, APIStartedAt: res.APIStarted, Progress: res.Progress}
	if runErr != nil {
		fin.Error = runErr.Error()
		var ae *mps.APIError
		if errors.As(runErr, &ae) && ae.RequestID != "" {
			res.RequestIDs = append(res.RequestIDs, ae.RequestID)
		}
	}
	// The outcome is written even when ctx was cancelled (shutdown, timeout).
	finCtx, finCancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer finCancel()
	fr, err := s.store.FinishRun(finCtx, fin)
	if err != nil {
		return res, errors.Join(runErr, fmt.Errorf("record run %d outcome: %w", res.RunID, err))
	}
	res.Gap = fr.Gap
	return res, runErr
}

func (s *Syncer) drainAll(ctx context.Context, res *Result) error {
	for _, st := range s.cfg.Statuses {
		if err := s.drain(ctx, st, res); err != nil {
			return err
		}
		res.Drained = append(res.Drained, st)
	}
	return nil
}

type fetched struct {
	page *mps.Page
	q    mps.Query
	n    int
}

// queries returns the cursors of one status: one, or for FINISH the
// configured create-time partitions of the API's window ending at now.
func (s *Syncer) queries(status mps.Status, now time.Time) []mps.Query {
	p := s.cfg.Partitions
	if status != mps.StatusFinish || p <= 1 {
		return []mps.Query{{Status: status}}
	}
	from := now.Add(-Window)
	step := Window / time.Duration(p)
	out := make([]mps.Query, p)
	for i := range out {
		out[i].Status = status
		if i > 0 {
			out[i].Start = from.Add(time.Duration(i)*step - time.Second).Truncate(time.Second)
		}
		if i < p-1 {
			out[i].End = from.Add(time.Duration(i+1)*step + time.Second).Truncate(time.Second)
		}
	}
	return out
}

// drain walks one status's pages. Fetchers (one per cursor) fetch ahead
// while Writers goroutines commit pages; this goroutine only counts. The
// channels hold a page per cursor, so memory stays at a few pages whatever
// the archive's size.
func (s *Syncer) drain(ctx context.Context, status mps.Status, res *Result) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	now := res.APIStarted
	if now.IsZero() {
		now = time.Now()
	}
	qs := s.queries(status, now)
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
			fr := s.fetch(fetchCtx, q, pages)
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
				pr, err := s.store.WritePage(ctx, PageWrite{RunID: res.RunID, Status: status, Tasks: tasks})
				if err != nil {
					cancel()
				}
				done <- written{f: f, tasks: len(tasks), pr: pr, err: err}
			}
		}()
	}
	go func() { writers.Wait(); close(done) }()

	var writeErr error
	outside := 0
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
			res.APIStarted = p.ServerTime
			if res.APIStarted.IsZero() {
				res.APIStarted = res.Started.UTC()
			}
		}
		outside += countOutside(p.Tasks, w.f.q)
		res.Pages++
		res.Seen += int64(w.tasks)
		res.Inserted += w.pr.Inserted
		res.Updated += w.pr.Updated
		res.Unchanged += w.pr.Unchanged
		res.Skipped += int64(p.Skipped)
		res.Warnings += int64(p.Warnings())
		if s.cfg.OnPage != nil {
			s.cfg.OnPage(PageEvent{RunID: res.RunID, Status: status, Page: w.f.n, Tasks: w.tasks, PageResult: w.pr})
		}
		if time.Since(res.lastProgress) >= s.cfg.ProgressEvery {
			res.lastProgress = time.Now()
			if err := s.store.RecordProgress(ctx, res.Progress); err != nil && ctx.Err() == nil {
				s.log.Warn("could not record run progress", "run_id", res.RunID, "error", err)
			}
		}
	}
	if outside > 0 {
		s.log.Warn("the API listed tasks outside the requested create-time range; partitioned drains may be doing redundant work (set sync.partitions to 1)",
			"status", status, "records", outside)
	}
	// The first real failure wins over the cancellations it caused.
	var fetchErr error
	for fr := range fetchErrs {
		res.Restarts += fr.restarts
		if fr.err != nil && (fetchErr == nil || errors.Is(fetchErr, context.Canceled) && !errors.Is(fr.err, context.Canceled)) {
			fetchErr = fr.err
		}
	}
	if writeErr != nil {
		return writeErr
	}
	if fetchErr != nil && errors.Is(fetchErr, context.Canceled) && ctx.Err() != nil {
		if err := context.Cause(ctx); err != nil {
			return err
		}
	}
	return fetchErr
}

func countOutside(tasks []mps.Task, q mps.Query) int {
	if q.Start.IsZero() && q.End.IsZero() {
		return 0
	}
	n := 0
	for i := range tasks {
		c := tasks[i].CreateTime
		if !c.IsZero() && (!q.Start.IsZero() && c.Before(q.Start) || !q.End.IsZero() && c.After(q.End)) {
			n++
		}
	}
	return n
}

type fetchResult struct {
	restarts int
	err      error
}

// fetch follows one cursor's ScrollTokens until the API returns an empty
// token. TotalCount is never consulted: the API page's own examples disagree
// about it. A token seen twice, or more pages than the cap, ends the drain
// with an error; a token the API rejects restarts the cursor once.
func (s *Syncer) fetch(ctx context.Context, q mps.Query, out chan<- fetched) fetchResult {
	var fr fetchResult
	seen := map[string]struct{}{}
	q.ScrollToken = ""
	for n := 1; ; n++ {
		if n > s.cfg.MaxPagesPerStatus {
			fr.err = fmt.Errorf("drain %s: more than %d pages; stopping (raise sync.max_pages_per_status if the account really is this large)", q.Status, s.cfg.MaxPagesPerStatus)
			return fr
		}
		page, err := s.lister.ListTasks(ctx, q)
		if err != nil {
			if q.ScrollToken != "" && fr.restarts == 0 && mps.ErrorCode(err) == mps.CodeInvalidScrollToken {
				s.log.Warn("scroll token rejected; restarting the drain", "status", q.Status, "page", n, "error", err)
				fr.restarts++
				q.ScrollToken, n = "", 0
				clear(seen)
				continue
			}
			if ctx.Err() != nil {
				fr.err = ctx.Err()
			} else {
				fr.err = fmt.Errorf("fetch page %d of %s: %w", n, q.Status, err)
			}
			return fr
		}
		select {
		case out <- fetched{page: page, q: q, n: n}:
		case <-ctx.Done():
			fr.err = ctx.Err()
			return fr
		}
		if page.ScrollToken == "" {
			return fr
		}
		if _, dup := seen[page.ScrollToken]; dup || page.ScrollToken == q.ScrollToken {
			fr.err = fmt.Errorf("drain %s: the API returned ScrollToken %q twice; stopping instead of looping", q.Status, page.ScrollToken)
			return fr
		}
		seen[page.ScrollToken] = struct{}{}
		q.ScrollToken = page.ScrollToken
	}
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
