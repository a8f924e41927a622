package details

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Window is how long after its creation the API can still have a task's
// detail (7 days on the China site; the international site documents 3).
const Window = mps.Window

// Config tunes a Fetcher. Zero values take Defaults.
type Config struct {
	// Workers read details at once (each waits for the API client's own
	// rate limiter, which sets the pace).
	Workers int
	// Batch is how many jobs a worker claims at a time. One: a claimed job
	// is started at once, so a lease never runs out on a job its holder
	// has not reached (which let idle workers read it a second time).
	Batch int
	// Lease is how long a claimed job is a worker's before another may
	// take it (a crashed worker's jobs come back after it). It outlasts
	// one call's timeout; a call retried beyond it may be read twice, never
	// stored twice.
	Lease time.Duration
	// RetryAfter is the first pause after a failed attempt; it doubles
	// with each attempt up to MaxRetryPause. A job is retried until the
	// API can no longer have its detail (Job.GiveUpAt), never given up
	// sooner: an outage, a missing CAM permission or an expired token
	// loses nothing that is fixed in time.
	RetryAfter    time.Duration
	MaxRetryPause time.Duration
	// UnsettledPause is how long a detail that has not settled (sub-tasks
	// still running) waits before it is read again.
	UnsettledPause time.Duration
	// Poll is how often an idle worker looks for new work while following.
	Poll time.Duration
	// MaxRawBytes caps a stored detail; a larger one is stored as a
	// stand-in (its outcome and sub-tasks are still read from the whole).
	MaxRawBytes int
	// SystemicAfter failed reads in a row, with no success between, mean
	// details fail for a reason of their own (a policy, credentials, an
	// outage): the fetcher says so once, loudly, and its workers slow to
	// one try each per SystemicPause until a read succeeds.
	SystemicAfter int
	SystemicPause time.Duration
	// MaxClockSkew is how far the API's clock (its Date) may be from this
	// machine's before it is not believed for deadlines (0: always
	// believed; a simulator's clock is its own).
	MaxClockSkew time.Duration
}

// Defaults are what a Config left zero gets.
var Defaults = Config{Workers: 4, Batch: 1, Lease: time.Minute, RetryAfter: time.Minute, MaxRetryPause: 30 * time.Minute,
	UnsettledPause: 10 * time.Minute, Poll: time.Second, MaxRawBytes: mps.KeepDetailBytes, SystemicAfter: 5, SystemicPause: 30 * time.Second}

// Stats count what a Fetcher did.
type Stats struct {
	Fetched   int64 // details stored (succeeded + failed + undecided)
	Failed    int64 // of those, tasks that failed
	Undecided int64 // of those, tasks the failure rule could not decide
	Expired   int64 // details gone before they were read
	Errors    int64 // attempts that failed and will be retried
	GaveUp    int64 // jobs whose detail was still failing when MPS forgot it
	Unsettled int64 // details read before they settled, to be read again
	Ambiguous int64 // details with something the failure rule could not decide
	Redacted  int64 // secret-like fields replaced
	Truncated int64 // details stored truncated
}

// Failing describes details failing for a systemic reason.
type Failing struct {
	Since time.Time
	Code  string // the last error's code
	Error string // the last error
	Hint  string // what to check
}

// Fetcher works the detail queue.
type Fetcher struct {
	api   API
	queue Queue
	cfg   Config
	log   *slog.Logger
	// OnRecord, when set, is told about every stored record.
	OnRecord func(Record)

	stats struct {
		fetched, failed, undecided, expired, errors, gaveUp, unsettled, ambiguous, redacted, truncated atomic.Int64
	}
	// consecutive counts failed reads since the last success; failing is
	// set while they say the failure is systemic.
	consecutive atomic.Int64
	failMu      sync.Mutex
	failing     *Failing
	// skew is the API's clock minus ours (from its Date header), so that
	// "older than Window" is judged on the API's clock.
	skew       atomic.Int64
	skewSeen   atomic.Bool
	skewWarned atomic.Bool

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Fetcher.
func New(api API, queue Queue, cfg Config, log *slog.Logger) *Fetcher {
	d := Defaults
	for _, f := range []struct{ v, d *int }{{&cfg.Workers, &d.Workers}, {&cfg.Batch, &d.Batch}, {&cfg.MaxRawBytes, &d.MaxRawBytes},
		{&cfg.SystemicAfter, &d.SystemicAfter}} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	for _, f := range []struct{ v, d *time.Duration }{{&cfg.Lease, &d.Lease}, {&cfg.RetryAfter, &d.RetryAfter}, {&cfg.MaxRetryPause, &d.MaxRetryPause},
		{&cfg.UnsettledPause, &d.UnsettledPause}, {&cfg.Poll, &d.Poll}, {&cfg.SystemicPause, &d.SystemicPause}} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fetcher{api: api, queue: queue, cfg: cfg, log: log}
}

// Stats returns the counters so far.
func (f *Fetcher) Stats() Stats {
	s := &f.stats
	return Stats{Fetched: s.fetched.Load(), Failed: s.failed.Load(), Undecided: s.undecided.Load(), Expired: s.expired.Load(),
		Errors: s.errors.Load(), GaveUp: s.gaveUp.Load(), Unsettled: s.unsettled.Load(), Ambiguous: s.ambiguous.Load(),
		Redacted: s.redacted.Load(), Truncated: s.truncated.Load()}
}

// Failing reports whether details are failing for a systemic reason now.
func (f *Fetcher) Failing() (Failing, bool) {
	f.failMu.Lock()
	defer f.failMu.Unlock()
	if f.failing == nil {
		return Failing{}, false
	}
	return *f.failing, true
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
		jobs, err := f.queue.ClaimDetails(ctx, ClaimParams{Limit: f.cfg.Batch, Lease: f.cfg.Lease})
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
	now, sure := f.apiNow()
	if now.After(job.GiveUpAt) && (sure || job.LastError != "") {
		// MPS can no longer have it: what kept it from being read is the
		// record.
		return f.store(ctx, Record{TaskID: job.TaskID, Expired: true, GaveUpAfter: job.LastError})
	}
	src, _ := mps.SourceNamed(job.Source)
	d, err := f.api.TaskDetail(ctx, src, job.TaskID)
	if err != nil {
		if ctx.Err() != nil {
			_ = f.queue.ReleaseDetail(context.WithoutCancel(ctx), ReleaseParams{TaskID: job.TaskID})
			return nil
		}
		code := mps.ErrorCode(err)
		switch {
		case mps.NotFound(code):
			f.succeeded() // an answer: the API works
			return f.store(ctx, Record{TaskID: job.TaskID, Expired: true})
		case code == mps.CodeInvalidParameter && now.After(job.Deadline):
			// Undocumented for an expired detail, and documented for a bad
			// TaskId (which a listed task's is not): past the retention it
			// means gone, before it an error to retry.
			f.succeeded()
			return f.store(ctx, Record{TaskID: job.TaskID, Expired: true})
		case code == mps.CodeResponseTooLarge:
			// Reading it again cannot help: recorded as undecided.
			f.succeeded()
			return f.store(ctx, Record{TaskID: job.TaskID, Outcome: mps.Outcome{Result: mps.OutcomeUndecided, ErrCode: code,
				Message: err.Error(), Ambiguities: []string{"the detail is larger than the client reads"}}})
		}
		f.failed(job, err)
		pause := f.cfg.RetryAfter << min(max(job.Attempts-1, 0), 16)
		if pause <= 0 || pause > f.cfg.MaxRetryPause {
			pause = f.cfg.MaxRetryPause
		}
		pause += time.Duration(rand.Int64N(int64(pause)/4 + 1))
		if err := f.release(ctx, ReleaseParams{TaskID: job.TaskID, Retry: true, Error: err.Error(), NotBefore: time.Now().Add(pause)}); err != nil {
			return err
		}
		if _, failing := f.Failing(); failing {
			// One try per pause and worker while every read fails; jobs
			// that need no call (past their give-up time) are not held up.
			sleep(ctx, f.cfg.SystemicPause)
		}
		return nil
	}
	f.succeeded()
	if !d.ServerTime.IsZero() {
		f.observeClock(d.ServerTime)
	}
	rec := Capture(d, f.cfg.MaxRawBytes)
	if rec.Outcome.Unsettled && rec.Outcome.Result != mps.OutcomeFailed {
		if now, _ := f.apiNow(); now.Before(job.Deadline.Add(-f.cfg.UnsettledPause)) {
			// Read again once it has settled; stored as undecided only if it
			// has not by the task's deadline.
			f.stats.unsettled.Add(1)
			return f.release(ctx, ReleaseParams{TaskID: job.TaskID, Retry: true, Error: "not settled: " + strings.Join(rec.Outcome.Ambiguities, "; "),
				NotBefore: time.Now().Add(f.cfg.UnsettledPause)})
		}
	}
	return f.store(ctx, rec)
}

// failed counts a failed read, and says once, loudly, when reads keep
// failing whatever the task.
func (f *Fetcher) failed(job Job, err error) {
	f.stats.errors.Add(1)
	n := f.consecutive.Add(1)
	f.log.Debug("detail capture failed; will retry", "task_id", job.TaskID, "attempt", job.Attempts, "error", err)
	if n < int64(f.cfg.SystemicAfter) {
		return
	}
	code := mps.ErrorCode(err)
	f.failMu.Lock()
	defer f.failMu.Unlock()
	if f.failing != nil {
		f.failing.Code, f.failing.Error = code, err.Error()
		return
	}
	f.failing = &Failing{Since: time.Now(), Code: code, Error: err.Error(), Hint: hint(code)}
	f.log.Error("detail capture is failing for every task: nothing is lost yet, each is retried until MPS forgets it; "+f.failing.Hint,
		"failed_in_a_row", n, "code", code, "error", err.Error())
}

// succeeded ends a run of failures.
func (f *Fetcher) succeeded() {
	f.consecutive.Store(0)
	f.failMu.Lock()
	defer f.failMu.Unlock()
	if f.failing != nil {
		f.log.Info("detail capture recovered", "failing_for", time.Since(f.failing.Since).Round(time.Second).String())
		f.failing = nil
	}
}

// hint says what to check for a systemic failure's code.
func hint(code string) string {
	switch {
	case strings.HasPrefix(code, "UnauthorizedOperation"), strings.HasPrefix(code, "AuthFailure.Unauthorized"):
		return "check that the key's CAM policy allows mps:DescribeTaskDetail"
	case strings.HasPrefix(code, "AuthFailure"):
		return "check the credentials (an expired STS token, a disabled or deleted key)"
	case code == mps.CodeNetworkError || code == mps.CodeTimeout:
		return "MPS is unreachable from here: check the network and MPS_ENDPOINT"
	case mps.Transient(code):
		return "MPS is failing or throttling; it usually recovers by itself"
	}
	return "check the error below"
}

// Capture turns a detail into the record to store: the failure rule's
// outcome and sub-tasks, and the detail with its secrets replaced, as a
// stand-in above maxBytes.
func Capture(d *mps.TaskDetail, maxBytes int) Record {
	if d.Outcome.Result == "" && d.Raw != nil {
		// Not from DecodeTaskDetail (built by hand): decide and redact here.
		d.Raw, d.Redactions = mps.Redact(d.Raw)
		d.Outcome, d.Kinds = mps.DecideOutcome(d.Raw), mps.SubTaskKindsOf(d.Raw)
		d.Size = len(d.Raw)
	}
	r := Record{TaskID: d.TaskID, Outcome: d.Outcome, Raw: d.Raw, RawBytes: max(d.Size, len(d.Raw)), Redacted: d.Redactions}
	if d.Raw == nil || len(d.Raw) > maxBytes {
		r.Truncated = true
		r.Raw = truncatedDetail(d, r.Outcome, r.RawBytes)
	}
	return r
}

func (f *Fetcher) store(ctx context.Context, r Record) error {
	wctx := context.WithoutCancel(ctx) // a fetched detail is stored even on shutdown
	stored, err := f.queue.CompleteDetail(wctx, r)
	if err != nil {
		return fmt.Errorf("store detail of %s: %w", r.TaskID, err)
	}
	if !stored {
		// Another worker or replica stored it first: not counted twice.
		return nil
	}
	switch {
	case r.Expired:
		f.stats.expired.Add(1)
		if r.GaveUpAfter != "" {
			f.stats.gaveUp.Add(1)
			f.log.Warn("a task's detail could not be read before MPS forgot it", "task_id", r.TaskID, "last_error", r.GaveUpAfter)
		}
	default:
		f.stats.fetched.Add(1)
		f.stats.redacted.Add(int64(r.Redacted))
		switch r.Outcome.Result {
		case mps.OutcomeFailed:
			f.stats.failed.Add(1)
		case mps.OutcomeUndecided:
			f.stats.undecided.Add(1)
		}
		if len(r.Outcome.Ambiguities) > 0 {
			f.stats.ambiguous.Add(1)
		}
		if r.Truncated {
			f.stats.truncated.Add(1)
			f.log.Warn("a task's detail is larger than the stored limit; stored as a stand-in (outcome and sub-tasks are complete)",
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

// apiNow is the API's clock, as its last answer's Date said, and whether
// one has been seen (else it is this machine's clock).
func (f *Fetcher) apiNow() (time.Time, bool) {
	return time.Now().Add(time.Duration(f.skew.Load())), f.skewSeen.Load()
}

// observeClock follows the API's clock from an answer's Date, within
// MaxClockSkew of this machine's: beyond it the Date is not believed (a
// proxy's far-future Date must not expire every queued job at once), and
// this machine's clock stands (said once).
func (f *Fetcher) observeClock(server time.Time) {
	skew := server.Sub(time.Now())
	if max := f.cfg.MaxClockSkew; max > 0 && (skew > max || skew < -max) {
		if !f.skewWarned.Swap(true) {
			f.log.Warn("the API's clock (its Date header) is far from this machine's; using this machine's clock for detail deadlines",
				"skew", skew.Round(time.Second).String(), "max", max.String())
		}
		skew = 0
	}
	f.skew.Store(int64(skew))
	f.skewSeen.Store(true)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
