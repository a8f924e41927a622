package details

import (
	"context"

	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Window is how long after its creation the API can still have a task's
// detail (7 days on the China site; the international site documents 3).
const Window = 168 * time.Hour

// Config tunes a Fetcher. Zero values take Defaults.
type Config struct {
	// Workers read details at once (each waits for the API client's own
	// rate limiter, which sets the pace).
	Workers int
	// Batch is how many jobs a worker claims at a time.
	Batch int
	// Lease is how long a claimed job is a worker's before another may
	// take it (a crashed worker's jobs come back after it).
	Lease time.Duration
	// MaxAttempts bounds the attempts of one job; a job that used them all
	// stays in the queue, counted as given up.
	MaxAttempts int
	// RetryAfter is the first pause after a failed attempt; it doubles
	// with each attempt.
	RetryAfter time.Duration
	// Poll is how often an idle worker looks for new work while following.
	Poll time.Duration
	// MaxRawBytes caps a stored detail; a larger one is stored truncated
	// (its outcome and sub-tasks are still read from the whole of it).
	MaxRawBytes int
}

// Defaults are what a Config left zero gets.
var Defaults = Config{Workers: 4, Batch: 8, Lease: 30 * time.Second, MaxAttempts: 5, RetryAfter: time.Minute, Poll: time.Second, MaxRawBytes: 1 << 20}

// Stats count what a Fetcher did.
type Stats struct {
	Fetched   int64 // details stored (succeeded + failed)
	Failed    int64 // of those, tasks that failed
	Expired   int64 // details gone before they were read
	Errors    int64 // attempts that failed and will be retried
	GaveUp    int64 // jobs that used their last attempt
	Ambiguous int64 // details with something the failure rule could not decide
	Redacted  int64 // secret-like fields replaced
	Truncated int64 // details stored truncated
}

// Fetcher works the detail queue.
type Fetcher struct {
	api   API
	queue Queue
	cfg   Config
	log   *slog.Logger
	// OnRecord, when set, is told about every stored record.
	OnRecord func(Record)

	stats struct{ fetched, failed, expired, errors, gaveUp, ambiguous, redacted, truncated atomic.Int64 }
	// skew is the API's clock minus ours (from its Date header), so that
	// "older than 168 h" is judged on the API's clock.
	skew     atomic.Int64
	skewSeen atomic.Bool

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Fetcher.
func New(api API, queue Queue, cfg Config, log *slog.Logger) *Fetcher {
	d := Defaults
	for _, f := range []struct{ v, d *int }{{&cfg.Workers, &d.Workers}, {&cfg.Batch, &d.Batch}, {&cfg.MaxAttempts, &d.MaxAttempts}, {&cfg.MaxRawBytes, &d.MaxRawBytes}} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	for _, f := range []struct{ v, d *time.Duration }{{&cfg.Lease, &d.Lease}, {&cfg.RetryAfter, &d.RetryAfter}, {&cfg.Poll, &d.Poll}} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fetcher{api: api, queue: queue, cfg: cfg, log: log}
}

// MaxAttempts is the bound a job's attempts are held to.
func (f *Fetcher) MaxAttempts() int { return f.cfg.MaxAttempts }

// Stats returns the counters so far.
func (f *Fetcher) Stats() Stats {
	s := &f.stats
	return Stats{Fetched: s.fetched.Load(), Failed: s.failed.Load(), Expired: s.expired.Load(), Errors: s.errors.Load(),
		GaveUp: s.gaveUp.Load(), Ambiguous: s.ambiguous.Load(), Redacted: s.redacted.Load(), Truncated: s.truncated.Load()}
}

// Run works the queue until ctx ends, or, once until is closed, until no
// job is claimable. Before until closes, an idle worker waits for new work
// (the list drain is still queueing it). A nil until means follow forever.
func (f *Fetcher) Run(ctx context.Context, until <-chan struct{}) error {
	var wg sync.WaitGroup
	errs := make(chan error, f.cfg.Workers)
	for range f.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.work(ctx, until); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	var first error
	for err := range errs {
		if first == nil {
			first = err
		}
	}
	return first
}

// Start runs the fetcher in the background until Stop.
func (f *Fetcher) Start(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel != nil {
		return
	}
	ctx, f.cancel = context.WithCancel(ctx)
	f.done = make(chan struct{})
	go func() {
		defer close(f.done)
		for ctx.Err() == nil {
			if err := f.Run(ctx, nil); err != nil && ctx.Err() == nil {
				f.log.Warn("detail capture: the queue is unavailable; retrying", "error", err)
				sleep(ctx, 10*time.Second)
			}
		}
	}()
}

// Stop cancels the background fetcher and waits for it; jobs in hand are
// given back. It is safe to call more than once.
func (f *Fetcher) Stop() {
	f.mu.Lock()
	cancel, done := f.cancel, f.done
	f.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (f *Fetcher) work(ctx context.Context, until <-chan struct{}) error {
	for ctx.Err() == nil {
		jobs, err := f.queue.ClaimDetails(ctx, ClaimParams{Limit: f.cfg.Batch, Lease: f.cfg.Lease, MaxAttempts: f.cfg.MaxAttempts})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("claim detail jobs: %w", err)
		}
		if len(jobs) == 0 {
			select {
			case <-until:
				return nil
			default:
			}
			sleep(ctx, f.cfg.Poll)
			continue
		}
		for i, job := range jobs {
			if ctx.Err() != nil {
				// Unstarted jobs go back at once, their attempt uncounted.
				rel := context.WithoutCancel(ctx)
				for _, j := range jobs[i:] {
					_ = f.queue.ReleaseDetail(rel, ReleaseParams{TaskID: j.TaskID})
				}
				return nil
			}
			if err := f.one(ctx, job); err != nil {
				return err
			}
		}
	}
	return nil
}

// one reads and stores one job's detail. Only a queue failure is returned.
func (f *Fetcher) one(ctx context.Context, job Job) error {
	if f.skewSeen.Load() && f.apiNow().After(job.GiveUpAt) {
		return f.store(ctx, Record{TaskID: job.TaskID, Expired: true})
	}
	d, err := f.api.TaskDetail(ctx, job.TaskID)
	if err != nil {
		if ctx.Err() != nil {
			_ = f.queue.ReleaseDetail(context.WithoutCancel(ctx), ReleaseParams{TaskID: job.TaskID})
			return nil
		}
		if mps.Gone(mps.ErrorCode(err)) {
			return f.store(ctx, Record{TaskID: job.TaskID, Expired: true})
		}
		if job.Attempts >= f.cfg.MaxAttempts {
			f.stats.gaveUp.Add(1)
			f.log.Warn("detail capture gave up on a task", "task_id", job.TaskID, "attempts", job.Attempts, "error", err)
		} else {
			f.stats.errors.Add(1)
			f.log.Debug("detail capture failed; will retry", "task_id", job.TaskID, "attempt", job.Attempts, "error", err)
		}
		pause := f.cfg.RetryAfter << min(job.Attempts-1, 10)
		pause += time.Duration(rand.Int64N(int64(pause)/4 + 1))
		return f.release(ctx, ReleaseParams{TaskID: job.TaskID, Retry: true, Error: err.Error(), NotBefore: time.Now().Add(pause)})
	}
	if !d.ServerTime.IsZero() {
		f.skew.Store(int64(d.ServerTime.Sub(time.Now())))
		f.skewSeen.Store(true)
	}
	return f.store(ctx, Capture(d, f.cfg.MaxRawBytes))
}

// Capture turns a detail into the record to store: the failure rule's
// outcome and sub-tasks, and the detail with its secrets replaced,
// truncated above maxBytes.
func Capture(d *mps.TaskDetail, maxBytes int) Record {
	r := Record{TaskID: d.TaskID, Outcome: mps.DecideOutcome(d.Raw)}
	raw, n := mps.Redact(d.Raw)
	r.RawBytes, r.Redacted = len(raw), n
	if len(raw) > maxBytes {
		r.Truncated = true
		raw = truncatedDetail(d, r.Outcome, len(raw))
	}
	r.Raw = raw
	return r
}

func (f *Fetcher) store(ctx context.Context, r Record) error {
	wctx := context.WithoutCancel(ctx) // a fetched detail is stored even on shutdown
	if _, err := f.queue.CompleteDetail(wctx, r); err != nil {
		return fmt.Errorf("store detail of %s: %w", r.TaskID, err)
	}
	switch {
	case r.Expired:
		f.stats.expired.Add(1)
	default:
		f.stats.fetched.Add(1)
		f.stats.redacted.Add(int64(r.Redacted))
		if r.Outcome.Result == mps.OutcomeFailed {
			f.stats.failed.Add(1)
		}
		if len(r.Outcome.Ambiguities) > 0 {
			f.stats.ambiguous.Add(1)
		}
		if r.Truncated {
			f.stats.truncated.Add(1)
			f.log.Warn("a task's detail is larger than the stored limit; stored truncated (outcome and sub-tasks are complete)",
				"task_id", r.TaskID, "bytes", r.RawBytes, "limit", f.cfg.MaxRawBytes)
		}
	}
	if f.OnRecord != nil {
		f.OnRecord(r)
	}
	return nil
}

func (f *Fetcher) release(ctx context.Context, p ReleaseParams) error {
	if err := f.queue.ReleaseDetail(context.WithoutCancel(ctx), p); err != nil {
		return fmt.Errorf("release detail job %s: %w", p.TaskID, err)
	}
	return nil
}

func (f *Fetcher) apiNow() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
