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
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Lister fetches one page of one status.
type Lister interface {
	ListTasks(ctx context.Context, status mps.Status, scrollToken string) (*mps.Page, error)
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
	// did not change and never moving a task's status backwards.
	WritePage(ctx context.Context, p PageWrite) (PageResult, error)
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
	RunID    int64
	Status   mps.Status
	Tasks    []mps.Task
	Skipped  int
	Warnings int
}

// PageResult counts what a page did to the archive.
type PageResult struct {
	Inserted  int64
	Updated   int64
	Unchanged int64
}

// FinishRun is a run's outcome.
type FinishRun struct {
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
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Syncer{lister: lister, store: store, cfg: cfg, log: log}
}

// Result summarises a run.
type Result struct {
	RunID      int64
	Trigger    string
	Started    time.Time
	Duration   time.Duration
	Drained    []mps.Status
	Pages      int
	Seen       int64
	Inserted   int64
	Updated    int64
	Unchanged  int64
	Skipped    int64
	Warnings   int64
	Restarts   int // drains restarted after a rejected ScrollToken
	Abandoned  int64
	RequestIDs []string // of the API errors that failed the run
	// APIStarted is the API's clock at the first answer (local clock if the
	// API sent no Date).
	APIStarted time.Time
	// Gap is set when this run found the archive has a hole.
	Gap *Gap
}

// Succeeded reports whether every configured status was drained.
func (r Result) Succeeded(cfgStatuses int) bool { return len(r.Drained) == cfgStatuses }

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
	fin := FinishRun{RunID: res.RunID, Drained: res.Drained, Failed: runErr != nil, APIStartedAt: res.APIStarted}
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
	n    int
}

// drain walks one status's pages. A goroutine fetches page n+1 while page n
// is being written; the channel holds one page, so memory stays at two
// pages whatever the archive's size.
func (s *Syncer) drain(ctx context.Context, status mps.Status, res *Result) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan fetched, 1)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(pages)
		fetchErr <- s.fetch(ctx, status, pages, res)
	}()

	var writeErr error
	for f := range pages {
		if writeErr != nil {
			continue // drain the channel so the fetcher can exit
		}
		p := f.page
		tasks := dedupe(p.Tasks)
		pr, err := s.store.WritePage(ctx, PageWrite{
			RunID: res.RunID, Status: status, Tasks: tasks, Skipped: p.Skipped, Warnings: p.Warnings(),
		})
		if err != nil {
			writeErr = fmt.Errorf("write page %d of %s: %w", f.n, status, err)
			cancel()
			continue
		}
		res.Pages++
		res.Seen += int64(len(tasks))
		res.Inserted += pr.Inserted
		res.Updated += pr.Updated
		res.Unchanged += pr.Unchanged
		res.Skipped += int64(p.Skipped)
		res.Warnings += int64(p.Warnings())
		if s.cfg.OnPage != nil {
			s.cfg.OnPage(PageEvent{RunID: res.RunID, Status: status, Page: f.n, Tasks: len(tasks), PageResult: pr})
		}
	}
	if err := <-fetchErr; writeErr == nil && err != nil {
		return err
	}
	return writeErr
}

// fetch follows the ScrollTokens of one status until the API returns an
// empty token. TotalCount is never consulted: the API page's own examples
// disagree about it. A token seen twice, or more pages than the cap, ends the
// drain with an error; a token the API rejects restarts the drain once.
func (s *Syncer) fetch(ctx context.Context, status mps.Status, out chan<- fetched, res *Result) error {
	token := ""
	seen := map[string]struct{}{}
	restarted := false
	for n := 1; ; n++ {
		if n > s.cfg.MaxPagesPerStatus {
			return fmt.Errorf("drain %s: more than %d pages; stopping (raise sync.max_pages_per_status if the account really is this large)", status, s.cfg.MaxPagesPerStatus)
		}
		page, err := s.lister.ListTasks(ctx, status, token)
		if err == nil && res.APIStarted.IsZero() {
			res.APIStarted = page.ServerTime
			if res.APIStarted.IsZero() {
				res.APIStarted = res.Started.UTC()
			}
		}
		if err != nil {
			if token != "" && !restarted && mps.ErrorCode(err) == mps.CodeInvalidScrollToken {
				s.log.Warn("scroll token rejected; restarting the drain", "status", status, "page", n, "error", err)
				restarted, token, n = true, "", 0
				clear(seen)
				res.Restarts++
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("fetch page %d of %s: %w", n, status, err)
		}
		select {
		case out <- fetched{page: page, n: n}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if page.ScrollToken == "" {
			return nil
		}
		if _, dup := seen[page.ScrollToken]; dup || page.ScrollToken == token {
			return fmt.Errorf("drain %s: the API returned ScrollToken %q twice; stopping instead of looping", status, page.ScrollToken)
		}
		seen[page.ScrollToken] = struct{}{}
		token = page.ScrollToken
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
