// Package daemon runs syncs on a cron schedule and serves the probes and
// metrics an operator needs: /healthz, /readyz and /metrics.
//
// Start returns at once; Stop shuts down in two stages: stop scheduling, let
// the in-flight run finish within the grace period, then cancel it (the
// syncer records it as failed with the reason) and close the HTTP server.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	"github.com/mps-archiver/mps-archiver/metrics"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// Runner runs one sync (a *syncer.Syncer).
type Runner interface {
	Run(ctx context.Context, trigger string) (syncer.Result, error)
}

// Health answers the readiness probe (a *storage.Store); its errors say
// by SchemaMismatch() and Unavailable() what kind they are.
type Health interface {
	Ping(ctx context.Context) error
	CheckSchema(ctx context.Context) error
}

// Config configures a Service.
type Config struct {
	Schedule      string
	TimeZone      string // IANA name; "" is local time
	Listen        string // "" disables HTTP
	RunOnStart    bool
	ShutdownGrace time.Duration
	// Handlers are served beside /healthz, /readyz and /metrics, by
	// pattern ("GET /checkpoint").
	Handlers map[string]http.Handler
}

// Service is the running daemon.
type Service struct {
	cfg     Config
	sched   cron.Schedule
	runner  Runner
	health  Health
	metrics *metrics.Metrics
	log     *slog.Logger

	cron      *cron.Cron
	job       cron.Job
	runCtx    context.Context
	cancelRun context.CancelCauseFunc
	running   sync.WaitGroup
	srv       *http.Server
	ln        net.Listener
	stopOnce  sync.Once

	// runMu keeps this process's startup run and scheduled runs apart; the
	// database lock keeps different processes apart.
	runMu    sync.Mutex
	mu       sync.Mutex
	stopping bool
}

// The daemon's defaults; the archiver's configuration defaults are these.
const (
	DefaultSchedule      = "*/5 * * * *"
	DefaultListen        = ":9464"
	DefaultShutdownGrace = 30 * time.Second
)

// ParseSchedule parses a cron spec: five fields, an optional leading seconds
// field, @every/@hourly descriptors, and CRON_TZ=/TZ= prefixes. The parser
// panics on some malformed inputs (a bare "CRON_TZ="): that is an error here.
func ParseSchedule(spec, timeZone string) (sched cron.Schedule, err error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("schedule: empty cron spec")
	}
	if timeZone != "" && !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") {
		if _, err := time.LoadLocation(timeZone); err != nil {
			return nil, fmt.Errorf("time_zone %q: %v", timeZone, err)
		}
		spec = "CRON_TZ=" + timeZone + " " + spec
	}
	if i := strings.Index(spec, "@every"); i >= 0 {
		// cron quietly turns a negative interval into one second.
		if d, err := time.ParseDuration(strings.TrimSpace(spec[i+len("@every"):])); err == nil && d <= 0 {
			return nil, fmt.Errorf("schedule %q: @every needs a positive interval", spec)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("schedule %q: invalid cron spec (%v)", spec, r)
		}
	}()
	p := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	sched, err = p.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %v", spec, err)
	}
	if probe := sched.Next(time.Now()); probe.IsZero() {
		return nil, fmt.Errorf("schedule %q never fires", spec)
	}
	if err := checkSteps(spec); err != nil {
		return nil, fmt.Errorf("schedule %q: %v", spec, err)
	}
	return sched, nil
}

// checkSteps refuses a step larger than its field's range ("*/61" in the
// minutes): the parser accepts it and fires once an hour, which is never
// what was meant.
func checkSteps(spec string) error {
	fields := strings.Fields(spec)
	if len(fields) > 0 && (strings.HasPrefix(fields[0], "CRON_TZ=") || strings.HasPrefix(fields[0], "TZ=")) {
		fields = fields[1:]
	}
	if len(fields) == 0 || strings.HasPrefix(fields[0], "@") {
		return nil
	}
	type span struct {
		name string
		size int
	}
	spans := []span{{"minute", 60}, {"hour", 24}, {"day-of-month", 31}, {"month", 12}, {"day-of-week", 7}}
	if len(fields) == 6 {
		spans = append([]span{{"second", 60}}, spans...)
	}
	for i, f := range fields {
		if i >= len(spans) {
			break
		}
		for _, part := range strings.Split(f, ",") {
			_, step, ok := strings.Cut(part, "/")
			if !ok {
				continue
			}
			n, err := strconv.Atoi(step)
			if err == nil && (n < 1 || n >= spans[i].size) {
				return fmt.Errorf("the %s field's step /%d is not below its range of %d values", spans[i].name, n, spans[i].size)
			}
		}
	}
	return nil
}

// New validates cfg and builds a Service.
func New(cfg Config, runner Runner, health Health, m *metrics.Metrics, log *slog.Logger) (*Service, error) {
	sched, err := ParseSchedule(cfg.Schedule, cfg.TimeZone)
	if err != nil {
		return nil, err
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	return &Service{cfg: cfg, sched: sched, runner: runner, health: health, metrics: m, log: log}, nil
}

// skippedBusy is the one message of a tick skipped because this process
// is still syncing: expected when runs outlast the schedule's interval, so
// it is a debug line, counted in sync_runs_total{result="skipped"} and
// runs_skipped_total{reason="busy"}.
const skippedBusy = "sync skipped: the previous run in this process is still going"

// cronLogger adapts slog for cron and counts the ticks that
// SkipIfStillRunning drops.
type cronLogger struct {
	log     *slog.Logger
	metrics *metrics.Metrics
}

func (l cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		l.metrics.SkippedBusy()
		l.log.Debug(skippedBusy, "trigger", "schedule")
		return
	}
	l.log.Debug("cron: "+msg, kv...)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "error", err)...)
}

// Start binds the HTTP listener and starts the scheduler; it returns at once.
// ctx bounds the runs: cancelling it is an immediate stop.
func (s *Service) Start(ctx context.Context) error {
	if s.cfg.Listen != "" {
		ln, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
		}
		s.ln = ln
		s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http server stopped", "error", err)
			}
		}()
		s.log.Info("listening", "addr", ln.Addr().String())
	}
	s.runCtx, s.cancelRun = context.WithCancelCause(ctx)
	cl := cronLogger{log: s.log, metrics: s.metrics}
	// Recover innermost: outside SkipIfStillRunning it would let one panic
	// leave the skip lock held and stop the job for good.
	s.job = cron.NewChain(cron.SkipIfStillRunning(cl), cron.Recover(cl)).Then(cron.FuncJob(func() { s.runOnce("schedule") }))
	s.cron = cron.New(cron.WithLogger(cl))
	s.cron.Schedule(s.sched, s.job)
	s.cron.Start()
	s.log.Info("scheduler started", "schedule", s.cfg.Schedule, "next_run", s.sched.Next(time.Now()).Format(time.RFC3339))
	if s.cfg.RunOnStart {
		startJob := cron.NewChain(cron.Recover(cl)).Then(cron.FuncJob(func() { s.runOnce("startup") }))
		go startJob.Run()
	}
	return nil
}

// Addr is the bound HTTP address (nil without a listener).
func (s *Service) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

func (s *Service) runOnce(trigger string) {
	s.mu.Lock()
	if s.stopping || s.runCtx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.running.Add(1)
	s.mu.Unlock()
	defer s.running.Done()
	if !s.runMu.TryLock() {
		s.metrics.SkippedBusy()
		s.log.Debug(skippedBusy, "trigger", trigger)
		return
	}
	defer s.runMu.Unlock()
	// In a rolling update the new version migrates while old replicas still
	// run: a replica whose schema is not its own writes nothing. (A database
	// that cannot be reached is not a mismatch: the run goes ahead and fails
	// as such.)
	if err := s.health.CheckSchema(s.runCtx); schemaMismatch(err) {
		s.metrics.SkippedSchema()
		if s.runCtx.Err() == nil {
			s.log.Warn("sync skipped: the database schema is not the one this binary knows", "trigger", trigger, "error", err.Error())
		}
		return
	}
	res, err := s.runner.Run(s.runCtx, trigger)
	if err != nil && s.isStopping() && stoppedBy(err) {
		// A routine stop (a deploy, a drain) past the grace period: the run
		// is recorded unfinished in sync_runs, and the next one goes on
		// from what it committed; not a failure to page anyone about.
		s.metrics.ObserveStopped(res)
		LogStopped(s.log, res, context.Cause(s.runCtx))
		return
	}
	s.metrics.ObserveRun(res, err)
	LogResult(s.log, res, err)
	// Loud when falling behind: every failed run says how long is left
	// before tasks leave the API unarchived, at error level under 3 days.
	if err != nil && !errors.Is(err, syncer.ErrLocked) {
		if h := s.metrics.Headroom(); h < 72*time.Hour {
			s.log.Error("the archive is falling behind: tasks start leaving the API's 7-day window unarchived in less than the retention headroom",
				"retention_headroom_hours", h.Hours(), "last_success", s.metrics.LastSuccess().Format(time.RFC3339))
		}
	}
}

// Stop shuts down: no new runs, the in-flight run gets the grace period, then
// it is cancelled and recorded as failed; finally the HTTP server closes. It
// blocks until done and is safe to call more than once.
func (s *Service) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		if s.cron != nil {
			// Stop's context waits for the running job; the grace period
			// below is what bounds that wait.
			s.cron.Stop()
		}
		done := make(chan struct{})
		go func() { s.running.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(s.cfg.ShutdownGrace):
			s.log.Warn("shutdown grace period expired; cancelling the running sync", "grace_seconds", s.cfg.ShutdownGrace.Seconds())
			s.cancelRun(fmt.Errorf("%w: grace period of %s expired", ErrShutdown, s.cfg.ShutdownGrace))
			<-done
		}
		if s.cancelRun != nil {
			s.cancelRun(ErrShutdown)
		}
		if s.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.srv.Shutdown(ctx)
		}
	})
}

// Handler serves /healthz, /readyz and /metrics.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := s.health.Ping(ctx); err != nil {
			http.Error(w, "database unreachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err := s.health.CheckSchema(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}))
	for pattern, h := range s.cfg.Handlers {
		mux.Handle(pattern, h)
	}
	return mux
}

// ErrShutdown is the cause a run is cancelled with when a shutdown's grace
// period runs out.
var ErrShutdown = errors.New("shutdown")

// stoppedBy reports whether a run's error is the stop itself (its
// cancellation), not a failure of its own that happened meanwhile.
func stoppedBy(err error) bool {
	return errors.Is(err, ErrShutdown) || errors.Is(err, context.Canceled)
}

// isStopping reports whether Stop has begun.
func (s *Service) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// LogStopped writes the one line of a run that a stop (a signal, a
// shutdown past its grace period) cut short: a warning, not an error; the
// run is recorded unfinished and the next one goes on from what it
// committed.
func LogStopped(log *slog.Logger, res syncer.Result, cause error) {
	why := "stopped"
	if cause != nil {
		why = cause.Error()
	}
	log.Warn("sync stopped before it finished; the next run goes on from what it committed",
		append([]any{"reason", why, "run_id", res.RunID, "trigger", res.Trigger, "kind", res.Kind},
			nonZero([]any{"duration_seconds", res.Duration.Round(time.Millisecond).Seconds(), "pages", res.Pages, "tasks_seen", res.Seen})...)...)
}

// LogResult writes the one summary line of a run: info when it succeeded,
// error with the RequestIds when it failed, and an error line for a coverage
// gap.
func LogResult(log *slog.Logger, res syncer.Result, err error, extra ...any) {
	if errors.Is(err, syncer.ErrLocked) {
		log.Info("sync skipped: another process holds the run lock", "trigger", res.Trigger)
		return
	}
	attrs := []any{
		"run_id", res.RunID, "trigger", res.Trigger, "kind", res.Kind, "version", res.Version,
		"duration_seconds", res.Duration.Round(time.Millisecond).Seconds(),
		"pages", res.Pages, "tasks_seen", res.Seen,
		"tasks_inserted", res.Inserted, "tasks_updated", res.Updated, "tasks_unchanged", res.Unchanged,
		"records_skipped", res.Skipped, "warnings", res.Warnings,
	}
	// What the run observed of the API's paging, once per run.
	for _, ev := range []struct {
		key string
		n   int64
	}{{"cursor_restarts", res.Restarts}, {"tokens_recovered", res.TokensRecovered}, {"tokens_lost", res.TokensLost},
		{"echoed_tokens", res.EchoedTokens}, {"out_of_range_records", res.OutOfRange}} {
		if ev.n > 0 {
			attrs = append(attrs, ev.key, ev.n)
		}
	}
	if res.TimeRange != "" && res.TimeRange != syncer.CapSupported {
		attrs = append(attrs, "time_filters", res.TimeRange)
	}
	if res.Why != "" {
		attrs = append(attrs, "full_because", res.Why)
	}
	attrs = append(attrs, "list_requests", res.ListRequests, "detail_requests", res.DetailRequests)
	if len(res.Sources) > 1 {
		// Each source's share: "media: succeeded incremental, 1200 seen".
		var parts []string
		for _, o := range res.Sources {
			part := o.Source + ": " + o.Status
			if o.Status != syncer.SourceSkipped {
				part += fmt.Sprintf(" %s, %d seen", o.Kind, o.Seen)
			}
			parts = append(parts, part)
		}
		attrs = append(attrs, "sources", strings.Join(parts, "; "))
	}
	if res.Resolved+res.Gone+res.Unresolved > 0 {
		attrs = append(attrs, "in_flight_resolved", res.Resolved, "in_flight_gone", res.Gone, "in_flight_unresolved", res.Unresolved)
	}
	if res.Abandoned > 0 {
		attrs = append(attrs, "abandoned_runs_closed", res.Abandoned)
	}
	if res.PartitionsMade > 0 {
		attrs = append(attrs, "partitions_made", res.PartitionsMade)
	}
	if res.PartitionsError != "" {
		log.Warn("could not make the coming months' partitions; rows of those months wait in the DEFAULT partition until a later run makes them",
			"run_id", res.RunID, "error", res.PartitionsError)
	}
	if res.FoldError != "" {
		log.Warn("could not fold old days' duration sketches into monthly ones; reports by month read those days one by one until a later run folds them",
			"run_id", res.RunID, "error", res.FoldError)
	}
	if res.Gap != nil {
		log.Error("coverage gap: tasks created in this period left the API's 7-day window before any successful sync; the archive may be missing them",
			"run_id", res.RunID, "previous_run_id", res.Gap.PreviousRunID,
			"gap_start", res.Gap.Start.Format(time.RFC3339), "gap_end", res.Gap.End.Format(time.RFC3339))
	}
	attrs = append(attrs, extra...)
	if err != nil {
		// The cause and what to do first; then only what the run did.
		lead := []any{"error", err.Error()}
		if h := Hint(err); h != "" {
			lead = append(lead, "hint", h)
		}
		if len(res.RequestIDs) > 0 {
			lead = append(lead, "request_ids", res.RequestIDs)
		}
		log.Error("sync failed", append(lead, nonZero(attrs)...)...)
		return
	}
	log.Info("sync succeeded", attrs...)
}

// nonZero drops the key/value pairs whose value is a zero number: a run
// that failed at once is not twenty zeroed counters.
func nonZero(attrs []any) []any {
	out := attrs[:0:0]
	for i := 0; i+1 < len(attrs); i += 2 {
		switch v := attrs[i+1].(type) {
		case int64:
			if v == 0 {
				continue
			}
		case int:
			if v == 0 {
				continue
			}
		case float64:
			if v == 0 {
				continue
			}
		}
		out = append(out, attrs[i], attrs[i+1])
	}
	return out
}

// schemaMismatch reports whether err says the database schema is not the
// binary's; unavailable, that the database could not be reached. Asked by
// behaviour, so that the daemon needs no storage import.
func schemaMismatch(err error) bool {
	var e interface{ SchemaMismatch() bool }
	return errors.As(err, &e) && e.SchemaMismatch()
}

func unavailable(err error) bool {
	var e interface{ Unavailable() bool }
	return errors.As(err, &e) && e.Unavailable()
}

// Hint is the first thing to check for a failed run's error ("" when
// there is nothing better than the error itself).
func Hint(err error) string {
	code := mps.ErrorCode(err)
	msg := err.Error()
	switch {
	case unavailable(err):
		return "PostgreSQL is unreachable or went away: check DATABASE_URL and the database; the next run tries again"
	case schemaMismatch(err):
		return "the schema is not this binary's: run `mps-archiver migrate up` as the schema owner"
	case code == mps.CodeEndpointError:
		return "MPS_ENDPOINT does not answer like the MPS API: it should be https://mps.tencentcloudapi.com (or the international site), or http://HOST:PORT of a local simulator"
	case code == mps.CodeNetworkError || code == mps.CodeTimeout:
		switch {
		case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host"):
			return "nothing answers at MPS_ENDPOINT: check its host and port (http:// for a local simulator), DNS and the egress network policy"
		case strings.Contains(msg, "HTTP response to HTTPS client"):
			return "MPS_ENDPOINT says https:// but the server there speaks plain HTTP (a local simulator wants http://)"
		case strings.Contains(msg, "x509") || strings.Contains(msg, "certificate"):
			return "the endpoint's TLS certificate is not trusted: check MPS_ENDPOINT and any TLS-intercepting proxy (the image carries the public CA roots only)"
		case code == mps.CodeTimeout:
			return "MPS did not answer in time: check the network path to MPS_ENDPOINT (proxies, egress policy); the next run tries again"
		}
		return "the connection to MPS_ENDPOINT failed: check the network path (proxies, egress policy); the next run tries again"
	case strings.HasPrefix(code, "AuthFailure"):
		return "the credentials were refused: check TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (or the role), and this machine's clock (signatures expire)"
	case strings.HasPrefix(code, "UnauthorizedOperation"):
		return "the key's CAM policy does not allow this action: grant mps:DescribeTasks and mps:DescribeTaskDetail"
	case code == mps.CodeInvalidMpsUser:
		return "the account has not activated MPS"
	case strings.HasPrefix(code, mps.CodeRequestLimitExceeded):
		return "MPS throttled every retry: another tool shares the account's 100 requests/s; lower MPS_RATE_LIMIT"
	case errors.Is(err, context.DeadlineExceeded):
		return "the run hit sync.run_timeout: raise it for an account this size (full and incremental runs alternate meanwhile)"
	}
	return ""
}
