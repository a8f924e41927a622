// Package metrics is the process's Prometheus series, on their own
// registry: what every command that archives exports (serve on /metrics,
// sync to a Pushgateway), fed by the API client, the syncer and the detail
// fetcher.
package metrics

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/syncer"
	"github.com/mps-archiver/mps-archiver/usage"
)

// Metrics are the process's Prometheus series, on their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	runs          *prometheus.CounterVec
	runDuration   prometheus.Histogram
	pages         *prometheus.CounterVec
	apiRequests   *prometheus.CounterVec
	apiLatency    *prometheus.HistogramVec
	tasks         *prometheus.CounterVec
	limiterWaits  prometheus.Counter
	limiterWaitS  prometheus.Counter
	skipped       *prometheus.CounterVec
	gaps          prometheus.Counter
	fullFailures  prometheus.Gauge
	lastRunFailed prometheus.Gauge
	drainEvents   *prometheus.CounterVec
	runsByKind    *prometheus.CounterVec
	retries       *prometheus.CounterVec
	runRequests   *prometheus.CounterVec
	filterSupport *prometheus.GaugeVec
	detailReqs    *prometheus.CounterVec
	usageReqs     *prometheus.CounterVec
	usageRuns     *prometheus.CounterVec
	usageFigures  *prometheus.CounterVec
	usageLast     prometheus.Gauge
	checkpoint    *prometheus.GaugeVec
	checkpointAt  prometheus.Gauge
	checkpointErr prometheus.Counter
	coldMonths    *prometheus.GaugeVec
	coldStuck     prometheus.Gauge

	mu           sync.Mutex
	lastSuccess  time.Time
	firstAttempt time.Time // the archive's first run, while none has succeeded
	created      time.Time
	now          func() time.Time
}

// SetBuildInfo exports mps_archiver_build_info{version, go_version} = 1.
func (m *Metrics) SetBuildInfo(version, goVersion string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mps_archiver_build_info", Help: "Always 1; the labels say which build is running.",
	}, []string{"version", "go_version"})
	g.WithLabelValues(version, goVersion).Set(1)
	m.Registry.MustRegister(g)
}

// New registers the daemon's metrics (and the Go and process
// collectors) on a new registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{Registry: reg, now: time.Now, created: time.Now()}
	f := prometheus.WrapRegistererWithPrefix("mps_archiver_", reg)
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sync_runs_total", Help: "Sync runs by result: succeeded, failed, stopped (cut short by a shutdown past its grace period), or skipped (another replica held the run lock, or this process was still syncing; runs_skipped_total says which).",
	}, []string{"result"})
	m.runDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "sync_run_duration_seconds", Help: "Duration of sync runs that were not skipped.",
		Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
	})
	m.pages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pages_total", Help: "Pages committed to the archive, by task status.",
	}, []string{"status"})
	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "api_requests_total", Help: "DescribeTasks HTTP attempts by status filter and error code (\"OK\" for success).",
	}, []string{"status", "code"})
	m.apiLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "api_request_duration_seconds", Help: "DescribeTasks attempt latency.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	}, []string{"status"})
	m.tasks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tasks_total", Help: "Task records by outcome: inserted, updated, unchanged, skipped (unarchivable), warning (field unreadable).",
	}, []string{"outcome"})
	m.limiterWaits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "rate_limiter_waits_total", Help: "API calls that waited for the client-side rate limiter.",
	})
	m.limiterWaitS = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "rate_limiter_wait_seconds_total", Help: "Time spent waiting for the client-side rate limiter.",
	})
	m.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "runs_skipped_total", Help: "Scheduled runs not started: locked (another replica is syncing), busy (this process is still syncing) or schema (the database schema is not this binary's).",
	}, []string{"reason"})
	m.gaps = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "coverage_gaps_total", Help: "Coverage gaps detected: periods the archive may be missing.",
	})
	m.lastRunFailed = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "last_run_failed", Help: "1 if the most recent non-skipped run failed.",
	})
	m.fullFailures = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "full_run_failures", Help: "Full runs failed since the last full success (incremental runs alternate with them meanwhile, so archiving goes on).",
	})
	m.drainEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "drain_events_total",
		Help: "What runs observed of the API's paging: cursor_restart (token rejected), token_recovered (a skipped token's task read by DescribeTaskDetail), token_lost (skipped and gone), echoed_token (list ended by a repeated token), out_of_range (records outside a requested time range).",
	}, []string{"event"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "api_retries_total", Help: "API attempts that failed and were retried, by action and error code.",
	}, []string{"action", "code"})
	m.runsByKind = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "runs_by_kind_total", Help: "Sync runs that were not skipped, by kind (full, incremental) and result (succeeded, failed).",
	}, []string{"kind", "result"})
	m.runRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "run_requests_total", Help: "API calls made by sync runs, by run kind and action (DescribeTasks, DescribeTaskDetail).",
	}, []string{"kind", "action"})
	m.filterSupport = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "api_filter_supported",
		Help: "1 when DescribeTasks honours the filter, 0 when it rejects or ignores it (learned from its answers; absent until known).",
	}, []string{"filter"})
	m.detailReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "api_detail_requests_total", Help: "DescribeTaskDetail HTTP attempts by error code (\"OK\" for success).",
	}, []string{"code"})
	m.usageReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "api_usage_requests_total", Help: "DescribeUsageData HTTP attempts by error code (\"OK\" for success).",
	}, []string{"code"})
	m.usageRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usage_runs_total", Help: "Usage runs (DescribeUsageData) by result: succeeded or failed (a query failed; the others were stored).",
	}, []string{"result"})
	m.usageFigures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usage_figures_total", Help: "Daily usage figures stored, by change: added (a day, region, type and specification first read) or revised (a later reading changed it).",
	}, []string{"change"})
	m.usageLast = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "usage_last_success_timestamp_seconds", Help: "Start time of the last successful usage run (0: none yet; absent with usage.mode off).",
	})
	m.checkpoint = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proof_checkpoint_size",
		Help: "Leaves in the proof log at the last checkpoint, labelled with its origin, root hash (hex) and signing key (\"\" when unsigned): a copy of the checkpoint outside the database.",
	}, []string{"origin", "root", "key"})
	m.checkpointAt = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "proof_checkpoint_timestamp_seconds", Help: "When the last checkpoint of the proof log was made (0: none by this process).",
	})
	m.checkpointErr = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "proof_checkpoint_errors_total", Help: "Checkpoints of the proof log that could not be made, stored or published after a run.",
	})
	m.coldMonths = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cold_months", Help: "Months on their way to cold storage or there (archive_months), by state: exporting, exported, verified, detached (absent with archive.keep_months 0).",
	}, []string{"state"})
	m.coldStuck = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cold_month_stuck_seconds", Help: "How long the oldest month whose last cold-storage step failed has been in its state (0: none failing; absent with archive.keep_months 0).",
	})
	lastSuccess := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "last_success_timestamp_seconds", Help: "Start time of the last successful full drain (0: none yet).",
	}, func() float64 {
		t := m.LastSuccess()
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	})
	headroom := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "retention_headroom_seconds",
		Help: "168h minus the age of the last successful drain: how long until tasks start leaving the API unarchived. Before the first success, counted from the archive's first run (a fresh install starts at 168h).",
	}, func() float64 { return m.Headroom().Seconds() })
	deadline := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "retention_deadline_timestamp_seconds",
		Help: "When tasks start leaving the API unarchived unless a drain succeeds: the retention headroom as a time, which stays right when pushed by `sync` (alert on it minus time()).",
	}, func() float64 { return float64(m.retentionBasis().Add(syncer.Window).UnixNano()) / 1e9 })
	f.MustRegister(m.runs, m.runDuration, m.pages, m.apiRequests, m.apiLatency, m.tasks,
		m.limiterWaits, m.limiterWaitS, m.skipped, m.gaps, m.lastRunFailed, m.fullFailures, lastSuccess, headroom, deadline,
		m.drainEvents, m.filterSupport, m.detailReqs, m.runsByKind, m.runRequests, m.retries,
		m.usageReqs, m.usageRuns, m.usageFigures, m.checkpoint, m.checkpointAt, m.checkpointErr)
	for _, r := range []string{"succeeded", "failed"} {
		m.usageRuns.WithLabelValues(r)
	}
	for _, c := range []string{"added", "revised"} {
		m.usageFigures.WithLabelValues(c)
	}
	for _, k := range []string{syncer.KindFull, syncer.KindIncremental} {
		for _, r := range []string{"succeeded", "failed"} {
			m.runsByKind.WithLabelValues(k, r)
		}
		m.runRequests.WithLabelValues(k, mps.ActionDescribeTasks)
		m.runRequests.WithLabelValues(k, mps.ActionDescribeTaskDetail)
	}
	for _, e := range []string{"cursor_restart", "token_recovered", "token_lost", "echoed_token", "out_of_range"} {
		m.drainEvents.WithLabelValues(e)
	}
	for _, r := range []string{"succeeded", "failed", "skipped"} {
		m.runs.WithLabelValues(r)
	}
	for _, r := range []string{"locked", "busy", "schema"} {
		m.skipped.WithLabelValues(r)
	}
	return m
}

// ObserveAttempt is the API client's per-attempt hook.
func (m *Metrics) ObserveAttempt(a mpsclient.Attempt) {
	code := codeLabel(a.Code)
	switch a.Action {
	case mps.ActionDescribeTaskDetail:
		m.detailReqs.WithLabelValues(code).Inc()
		return
	case mps.ActionDescribeUsageData:
		m.usageReqs.WithLabelValues(code).Inc()
		return
	}
	m.apiRequests.WithLabelValues(string(a.Status), code).Inc()
	m.apiLatency.WithLabelValues(string(a.Status)).Observe(a.Duration.Seconds())
}

// codeLabel bounds the code label: codes come from the server, and a label
// must not take arbitrary values.
func codeLabel(code string) string {
	if code == "" {
		return "OK"
	}
	if len(code) > 64 {
		return "other"
	}
	for _, c := range code {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_') {
			return "other"
		}
	}
	return code
}

// SetUsageLastSuccess exports the start of the last successful usage run
// (zero: none), and registers the gauge: it exists only where usage is
// archived.
func (m *Metrics) SetUsageLastSuccess(t time.Time) {
	_ = prometheus.WrapRegistererWithPrefix("mps_archiver_", m.Registry).Register(m.usageLast)
	if !t.IsZero() {
		m.usageLast.Set(float64(t.UnixNano()) / 1e9)
	}
}

// ObserveColdMonths exports where the months stand on their way to cold
// storage (months by state; stuck: how long the oldest failing one has
// been in its state), and registers the gauges: they exist only where
// archive.keep_months moves months.
func (m *Metrics) ObserveColdMonths(byState map[string]int, stuck time.Duration) {
	reg := prometheus.WrapRegistererWithPrefix("mps_archiver_", m.Registry)
	_ = reg.Register(m.coldMonths)
	_ = reg.Register(m.coldStuck)
	for _, st := range []string{"exporting", "exported", "verified", "detached"} {
		m.coldMonths.WithLabelValues(st).Set(float64(byState[st]))
	}
	m.coldStuck.Set(stuck.Seconds())
}

// ObserveUsage records a usage run that ran.
func (m *Metrics) ObserveUsage(res usage.Result, err error) {
	result := "succeeded"
	if err != nil {
		result = "failed"
	}
	m.usageRuns.WithLabelValues(result).Inc()
	m.usageFigures.WithLabelValues("added").Add(float64(res.Added))
	m.usageFigures.WithLabelValues("revised").Add(float64(res.Revised))
	if err == nil {
		m.usageLast.Set(float64(time.Now().Add(-res.Duration).UnixNano()) / 1e9)
	}
}

// ObserveCheckpoint records a checkpoint of the proof log (err: it could
// not be made, stored or published).
func (m *Metrics) ObserveCheckpoint(origin string, size uint64, root []byte, key string, err error) {
	if err != nil {
		m.checkpointErr.Inc()
		return
	}
	m.checkpoint.Reset()
	m.checkpoint.WithLabelValues(origin, hex.EncodeToString(root), key).Set(float64(size))
	m.checkpointAt.SetToCurrentTime()
}

// ObserveRetry counts an attempt that will be retried.
func (m *Metrics) ObserveRetry(r mpsclient.Retry) {
	m.retries.WithLabelValues(r.Action, codeLabel(r.Code)).Inc()
}

// ObserveWait is the API client's rate-limiter hook.
func (m *Metrics) ObserveWait(d time.Duration) {
	m.limiterWaits.Inc()
	m.limiterWaitS.Add(d.Seconds())
}

// ObservePage counts a committed page.
func (m *Metrics) ObservePage(ev syncer.PageEvent) {
	m.pages.WithLabelValues(string(ev.Status)).Inc()
}

// ObserveStopped counts a run a stop cut short: sync_runs_total{result=
// "stopped"}, neither failed nor succeeded (last_run_failed is left as it
// was).
func (m *Metrics) ObserveStopped(res syncer.Result) {
	m.runDuration.Observe(res.Duration.Seconds())
	m.runs.WithLabelValues("stopped").Inc()
}

// ObserveRun records a run's result.
func (m *Metrics) ObserveRun(res syncer.Result, err error) {
	if errors.Is(err, syncer.ErrLocked) {
		m.runs.WithLabelValues("skipped").Inc()
		m.skipped.WithLabelValues("locked").Inc()
		return
	}
	m.runDuration.Observe(res.Duration.Seconds())
	if res.Kind != "" {
		result := "succeeded"
		if err != nil {
			result = "failed"
		}
		m.runsByKind.WithLabelValues(res.Kind, result).Inc()
		m.runRequests.WithLabelValues(res.Kind, mps.ActionDescribeTasks).Add(float64(res.ListRequests))
		m.runRequests.WithLabelValues(res.Kind, mps.ActionDescribeTaskDetail).Add(float64(res.DetailRequests))
	}
	m.tasks.WithLabelValues("inserted").Add(float64(res.Inserted))
	m.tasks.WithLabelValues("updated").Add(float64(res.Updated))
	m.tasks.WithLabelValues("unchanged").Add(float64(res.Unchanged))
	m.tasks.WithLabelValues("skipped").Add(float64(res.Skipped))
	m.tasks.WithLabelValues("warning").Add(float64(res.Warnings))
	m.drainEvents.WithLabelValues("cursor_restart").Add(float64(res.Restarts))
	m.drainEvents.WithLabelValues("token_recovered").Add(float64(res.TokensRecovered))
	m.drainEvents.WithLabelValues("token_lost").Add(float64(res.TokensLost))
	m.drainEvents.WithLabelValues("echoed_token").Add(float64(res.EchoedTokens))
	m.drainEvents.WithLabelValues("out_of_range").Add(float64(res.OutOfRange))
	if res.TimeRange != "" {
		v := 0.0
		if res.TimeRange == syncer.CapSupported {
			v = 1
		}
		m.filterSupport.WithLabelValues(syncer.CapTimeRange).Set(v)
	}
	if res.Gap != nil {
		m.gaps.Inc()
	}
	if res.RunID != 0 {
		m.SetFirstAttempt(res.Started)
		m.fullFailures.Set(float64(res.FullFailures))
	}
	if err != nil {
		m.runs.WithLabelValues("failed").Inc()
		m.lastRunFailed.Set(1)
		return
	}
	m.runs.WithLabelValues("succeeded").Inc()
	m.lastRunFailed.Set(0)
	m.SetLastSuccess(res.Started)
}

// PushJob is the Pushgateway job `sync` pushes as.
const PushJob = "mps-archiver-sync"

// Push replaces the group job/instance on the Pushgateway at url with this
// process's mps_archiver_* series (not the Go and process collectors'
// figures of a process that is about to exit). The instance grouping key
// keeps the groups of several CronJobs or hosts apart: a PUT replaces the
// whole group it names.
func (m *Metrics) Push(ctx context.Context, url, job, instance string) error {
	own := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := m.Registry.Gather()
		return slices.DeleteFunc(mfs, func(mf *dto.MetricFamily) bool { return !strings.HasPrefix(mf.GetName(), "mps_archiver_") }), err
	})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := push.New(url, job).Grouping("instance", instance).Gatherer(own).PushContext(ctx); err != nil {
		return fmt.Errorf("push to %s: %w", url, err)
	}
	return nil
}

// EventSource reads when the archive last recorded a coverage gap and a
// detail lost to expiry (zero: never).
type EventSource interface {
	LastEvents(ctx context.Context) (gapDetected, detailExpired time.Time, err error)
}

// WatchEvents exports when the archive last recorded a coverage gap and a
// detail lost to expiry, read from the database at most every 30 s. Each
// `sync` is a new process whose counters start at zero, so an alert on a
// pushed counter holds until the next push; a time read from the archive
// is the same in every push, and the alert holds as long as its rule says.
// Until a read succeeds, neither series is exported (rather than a 0 that
// would say "never").
func (m *Metrics) WatchEvents(src EventSource) {
	m.Registry.MustRegister(&eventCollector{
		src: src,
		gap: prometheus.NewDesc("mps_archiver_last_coverage_gap_timestamp_seconds",
			"When the archive last detected a coverage gap (from the coverage_gaps table; 0: never).", nil, nil),
		expired: prometheus.NewDesc("mps_archiver_last_detail_expired_timestamp_seconds",
			"When the archive last recorded a task's detail as expired, lost before it was read (from task_details; 0: never).", nil, nil),
	})
}

type eventCollector struct {
	src          EventSource
	gap, expired *prometheus.Desc

	mu            sync.Mutex
	readAt        time.Time
	read          bool
	gapT, expiryT time.Time
}

func (c *eventCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.gap; ch <- c.expired }

func (c *eventCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.read || time.Since(c.readAt) > 30*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if g, e, err := c.src.LastEvents(ctx); err == nil {
			c.gapT, c.expiryT, c.read, c.readAt = g, e, true, time.Now()
		}
		cancel()
	}
	if !c.read {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.gap, prometheus.GaugeValue, unixSeconds(c.gapT))
	ch <- prometheus.MustNewConstMetric(c.expired, prometheus.GaugeValue, unixSeconds(c.expiryT))
}

// unixSeconds is t as a Prometheus timestamp value; 0 for the zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// SkippedSchema counts a run skipped because the schema is not the
// binary's (moved ahead by a newer version's migration, or dirty).
func (m *Metrics) SkippedSchema() {
	m.runs.WithLabelValues("skipped").Inc()
	m.skipped.WithLabelValues("schema").Inc()
}

// SkippedBusy counts a tick skipped because this process was still syncing.
func (m *Metrics) SkippedBusy() {
	m.runs.WithLabelValues("skipped").Inc()
	m.skipped.WithLabelValues("busy").Inc()
}

// SetLastSuccess records the start of a successful full drain, if later
// than the one known.
func (m *Metrics) SetLastSuccess(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.After(m.lastSuccess) {
		m.lastSuccess = t
	}
}

// LastSuccess is the start of the last successful full drain.
func (m *Metrics) LastSuccess() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastSuccess
}

// SetFirstAttempt records the start of the archive's first run, the basis
// of the headroom until a run succeeds.
func (m *Metrics) SetFirstAttempt(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !t.IsZero() && (m.firstAttempt.IsZero() || t.Before(m.firstAttempt)) {
		m.firstAttempt = t
	}
}

// retentionBasis is what the headroom counts from: the last success; before
// any, the archive's first run (or, before that, this process's start). A
// fresh install has not lost what it never had: its first drain reads the
// whole window, so it starts with the whole window as headroom rather than
// none, which would page on every install whose first drain is long.
func (m *Metrics) retentionBasis() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.lastSuccess.IsZero():
		return m.lastSuccess
	case !m.firstAttempt.IsZero():
		return m.firstAttempt
	}
	return m.created
}

// Headroom is the retention headroom: 168h minus the age of the last
// successful drain (see retentionBasis before the first).
func (m *Metrics) Headroom() time.Duration {
	return syncer.Window - m.now().Sub(m.retentionBasis())
}

// BacklogSource reads the detail queue's summary.
type BacklogSource interface {
	DetailBacklog(ctx context.Context) (details.Backlog, error)
}

// WatchDetails exports the detail queue and what f stores: the backlog and
// the headroom of its oldest deadline (read from the database at most every
// 10 s), and outcomes by kind.
func (m *Metrics) WatchDetails(src BacklogSource, f *details.Fetcher) {
	var mu sync.Mutex
	var last details.Backlog
	var at time.Time
	backlog := func() details.Backlog {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) > 10*time.Second {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if b, err := src.DetailBacklog(ctx); err == nil {
				last, at = b, time.Now()
			}
			cancel()
		}
		return last
	}
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "details_total", Help: "Task details stored, by outcome: succeeded, failed (the task failed), expired (gone before it was read), undecided (the failure rule cannot tell).",
	}, []string{"outcome"})
	for _, o := range []string{mps.OutcomeSucceeded, mps.OutcomeFailed, mps.OutcomeExpired, mps.OutcomeUndecided} {
		outcomes.WithLabelValues(o)
	}
	f.OnRecord = func(r details.Record) {
		o := r.Outcome.Result
		if r.Expired {
			o = mps.OutcomeExpired
		}
		outcomes.WithLabelValues(o).Inc()
	}
	reg := prometheus.WrapRegistererWithPrefix("mps_archiver_", m.Registry)
	reg.MustRegister(outcomes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "detail_backlog", Help: "Tasks whose detail is still to be read.",
		}, func() float64 { return float64(backlog().Pending) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "detail_gave_up", Help: "Tasks whose detail failed to be read until MPS forgot it, in the last 7 days (each is retried until then).",
		}, func() float64 { return float64(backlog().GaveUp) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "detail_capture_failing", Help: "1 while every detail read fails (a CAM policy without mps:DescribeTaskDetail, expired credentials, an outage); the log says why.",
		}, func() float64 {
			if _, failing := f.Failing(); failing {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "detail_deadline_headroom_seconds",
			Help: "Time until the oldest pending detail's deadline (details.retention after its task's creation); negative when overdue, +Inf when nothing is pending.",
		}, func() float64 {
			b := backlog()
			if b.OldestDeadline.IsZero() {
				return math.Inf(1)
			}
			return time.Until(b.OldestDeadline).Seconds()
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "detail_retries_total", Help: "Detail reads that failed and were put back to be retried.",
		}, func() float64 { return float64(f.Stats().Errors) }),
	)
}
