package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/config"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// simFlags configure a simulator population, clock and faults.
type simFlags struct {
	gen             simulator.GenConfig
	scenario        string
	clock           string
	speed           float64
	rate            float64
	faults          simulator.Faults
	codes           string
	faultActions    string
	variant         simulator.Variant
	detailRetention time.Duration
	detailErrors    string
}

func (f *simFlags) register(fs *flag.FlagSet) {
	f.gen = simulator.DefaultGenConfig()
	fs.Int64Var(&f.gen.Seed, "seed", f.gen.Seed, "generator seed (same seed, same tasks)")
	fs.IntVar(&f.gen.Tasks, "tasks", f.gen.Tasks, "tasks created over the window before the clock's start")
	fs.DurationVar(&f.gen.Window, "window", f.gen.Window, "spread of the generated tasks' create times")
	fs.Float64Var(&f.gen.ArrivalsPerHour, "arrivals-per-hour", 0, "live mode: new tasks per simulated hour after start")
	fs.DurationVar(&f.gen.Horizon, "horizon", 24*time.Hour, "live mode with --speed above 1: how long arrivals go on (simulated time); at --speed 1 they never end")
	fs.DurationVar(&f.gen.QueueMean, "queue-mean", f.gen.QueueMean, "mean WAITING time")
	fs.DurationVar(&f.gen.ProcessMean, "process-mean", f.gen.ProcessMean, "mean PROCESSING time")
	fs.Float64Var(&f.gen.FailureShare, "failure-share", f.gen.FailureShare, "share of tasks with a failed subtask")
	fs.Float64Var(&f.gen.ImageShare, "image-share", 0, "share of tasks that are image tasks (listed by DescribeImageTasks)")
	fs.StringVar(&f.variant.ImageTasks, "image-tasks", simulator.ImageTasksServed, "served, or unsupported (an endpoint older than DescribeImageTasks/DescribeImageTaskDetail: InvalidAction)")
	fs.BoolVar(&f.variant.ImageTasksInTaskList, "image-tasks-in-task-list", false, "DescribeTasks lists image tasks too (undocumented either way)")
	fs.StringVar(&f.scenario, "scenario", "", "JSON scenario `file` of pinned tasks (replaces the generator)")
	fs.StringVar(&f.clock, "clock", "", "start the simulated clock at this RFC 3339 instant (default: now; with --speed above 1 and arrivals, one --horizon before now, so that it reaches now as the arrivals end)")
	fs.Float64Var(&f.speed, "speed", 1, "fast-forward factor of the simulated clock (0 freezes it)")
	fs.Float64Var(&f.rate, "rate-limit", config.APIRateLimit, "requests per second per SecretId before RequestLimitExceeded (negative: off)")
	fs.Uint64Var(&f.faults.Seed, "fault-seed", 1, "fault injection seed")
	fs.Float64Var(&f.faults.ErrorRate, "error-rate", 0, "share of requests answered with an error code")
	fs.StringVar(&f.codes, "error-codes", "InternalError", "comma-separated codes for --error-rate")
	fs.Float64Var(&f.faults.HTML5xxRate, "html-5xx-rate", 0, "share of requests answered HTTP 502 with HTML")
	fs.Float64Var(&f.faults.TruncateRate, "truncate-rate", 0, "share of answers cut in half")
	fs.Float64Var(&f.faults.StallRate, "stall-rate", 0, "share of requests that hang for --stall-for")
	fs.DurationVar(&f.faults.StallFor, "stall-for", 2*time.Minute, "how long a stalled request hangs")
	fs.Float64Var(&f.faults.ExpireTokenRate, "expire-token-rate", 0, "share of ScrollToken requests told the token expired")
	fs.StringVar(&f.faultActions, "fault-actions", "", "comma-separated actions the faults and latency hit (DescribeTasks, DescribeTaskDetail, DescribeImageTasks, DescribeImageTaskDetail); empty: all")
	fs.DurationVar(&f.faults.DateSkew, "date-skew", 0, "move every answer's Date header by this much from the clock the API filters by (a proxy's clock)")
	fs.StringVar(&f.gen.Vocabulary, "vocabulary", simulator.VocabularyAction, "SubTaskTypes vocabulary: action (action-trans), kinds (Transcode) or mixed")
	fs.StringVar(&f.variant.Filters, "filters", simulator.FiltersCreateTime, "how StartTime/EndTime/SubTaskHasFailed behave: create_time, finish_time (what the range filters on), ignored, or unsupported (the seed page's API: UnknownParameter)")
	fs.BoolVar(&f.variant.ExclusiveBounds, "exclusive-bounds", false, "time filter bounds are exclusive")
	fs.BoolVar(&f.variant.DefaultStart72h, "default-start-72h", false, "a request with EndTime but no StartTime lists only the last 72 hours")
	fs.BoolVar(&f.variant.ExclusiveTokens, "exclusive-tokens", false, "the page after a ScrollToken starts after the token's record (the international site's example)")
	fs.BoolVar(&f.variant.EchoLastToken, "echo-last-token", false, "a short last page repeats the request's ScrollToken instead of \"\"")
	fs.BoolVar(&f.variant.RejectMovedTokens, "reject-moved-tokens", false, "a ScrollToken whose task moved to another status is InvalidParameterValue")
	fs.DurationVar(&f.detailRetention, "detail-retention", simulator.Retention, "how long DescribeTaskDetail knows a task after its creation (the international site: 72h)")
	fs.StringVar(&f.detailErrors, "detail-errors", "", "errors failed tasks report, as comma-separated CODE:ErrCodeExt pairs (default: codes the API reference documents)")
	fs.DurationVar(&f.faults.Latency, "latency", 0, "latency added to every request")
	fs.DurationVar(&f.faults.Jitter, "jitter", 0, "random extra latency, up to this much")
}

// check validates the flags' values, before anything is generated or
// listened on; it returns the failed tasks' errors.
func (f *simFlags) check() ([]simulator.DetailError, error) {
	if f.clock != "" {
		if _, err := time.Parse(time.RFC3339, f.clock); err != nil {
			return nil, fmt.Errorf("--clock %q: not an RFC 3339 time", f.clock)
		}
	}
	switch f.gen.Vocabulary {
	case simulator.VocabularyAction, simulator.VocabularyKinds, simulator.VocabularyMixed:
	default:
		return nil, fmt.Errorf("--vocabulary %q: want action, kinds or mixed", f.gen.Vocabulary)
	}
	if f.gen.ImageShare < 0 || f.gen.ImageShare > 1 {
		return nil, fmt.Errorf("--image-share %v: must be between 0 and 1", f.gen.ImageShare)
	}
	if f.gen.Tasks < 0 {
		return nil, fmt.Errorf("--tasks %d: must not be negative", f.gen.Tasks)
	}
	for name, r := range map[string]float64{"error-rate": f.faults.ErrorRate, "html-5xx-rate": f.faults.HTML5xxRate,
		"truncate-rate": f.faults.TruncateRate, "stall-rate": f.faults.StallRate, "expire-token-rate": f.faults.ExpireTokenRate} {
		if r < 0 || r > 1 {
			return nil, fmt.Errorf("--%s %v: must be between 0 and 1", name, r)
		}
	}
	var derrs []simulator.DetailError
	f.faults.Actions = nil
	for _, a := range strings.Split(f.faultActions, ",") {
		switch a = strings.TrimSpace(a); a {
		case "":
		case mps.ActionDescribeTasks, mps.ActionDescribeTaskDetail, mps.ActionDescribeImageTasks, mps.ActionDescribeImageTaskDetail:
			f.faults.Actions = append(f.faults.Actions, a)
		default:
			return nil, fmt.Errorf("--fault-actions: %q is not %s, %s, %s or %s", a, mps.ActionDescribeTasks, mps.ActionDescribeTaskDetail,
				mps.ActionDescribeImageTasks, mps.ActionDescribeImageTaskDetail)
		}
	}
	for _, pair := range strings.Split(f.detailErrors, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		code, ext, ok := strings.Cut(pair, ":")
		n, err := strconv.Atoi(code)
		if !ok || err != nil || n == 0 || ext == "" {
			return nil, fmt.Errorf("--detail-errors %q: want CODE:ErrCodeExt pairs with a non-zero CODE, e.g. 30010:SourceFileError", f.detailErrors)
		}
		derrs = append(derrs, simulator.DetailError{Code: n, Ext: ext, Message: ext})
	}
	if err := f.variant.Validate(); err != nil {
		return nil, fmt.Errorf("--%v", err)
	}
	return derrs, nil
}

// build makes the server; creds maps SecretId to SecretKey.
func (f *simFlags) build(creds map[string]string) (*simulator.Server, error) {
	derrs, err := f.check()
	if err != nil {
		return nil, err
	}
	start := time.Now().UTC()
	if f.clock == "" && f.speed > 1 && f.gen.ArrivalsPerHour > 0 {
		// A fast clock starting now would run ahead of the real one at once,
		// and arrivals would be archived from the future: it starts one
		// horizon back, reaching the real now as the arrivals end.
		start = start.Add(-f.gen.Horizon)
	}
	if f.clock != "" {
		start, _ = time.Parse(time.RFC3339, f.clock)
	}
	var tasks []*simulator.Task
	var arrivals *simulator.Arrivals
	if f.scenario != "" {
		sc, err := simulator.LoadScenario(f.scenario)
		if err != nil {
			return nil, err
		}
		if sc.Variant != nil {
			if err := sc.Variant.Validate(); err != nil {
				return nil, fmt.Errorf("scenario Variant: %v", err)
			}
			f.variant = *sc.Variant
		}
		if f.clock == "" {
			if start, err = sc.Start(start); err != nil {
				return nil, err
			}
		}
		if tasks, err = sc.Build(start); err != nil {
			return nil, err
		}
	} else {
		gen := f.gen
		if live := gen.ArrivalsPerHour > 0 && f.speed <= 1; live {
			// At the real pace (or slower) arrivals never end: generated
			// as the clock reaches them, like a live account's.
			gen.Horizon = 0
			arrivals = simulator.NewArrivals(f.gen, start)
		}
		tasks = simulator.Generate(gen, start)
	}
	for _, c := range strings.Split(f.codes, ",") {
		if c = strings.TrimSpace(c); c != "" {
			f.faults.ErrorCodes = append(f.faults.ErrorCodes, c)
		}
	}

	return simulator.New(simulator.Config{
		Credentials:     creds,
		RateLimit:       f.rate,
		Clock:           simulator.NewClock(start, f.speed),
		Arrivals:        arrivals,
		Faults:          f.faults,
		Variant:         f.variant,
		DetailRetention: f.detailRetention,
		DetailErrors:    derrs,
	}, tasks), nil
}

// runSimulate serves the simulator until SIGINT/SIGTERM.
func runSimulate(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "simulate", "[--listen ADDR] [--control-listen ADDR] [flags]")
	listen := fs.String("listen", "127.0.0.1:9080", "API address; point MPS_ENDPOINT at http://ADDR")
	control := fs.String("control-listen", "", "address of the test control surface (/truth, /stats, /clock, /faults); off when empty")
	logFormat := fs.String("log-format", "", "auto, json or text")
	var sf simFlags
	sf.register(fs)
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	id, key := env.Getenv(config.EnvSecretID), env.Getenv(config.EnvSecretKey)
	if id == "" || key == "" {
		return errors.New("the simulator accepts the credentials in TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY: set both (any values)")
	}
	if *control != "" && *control == *listen {
		return errors.New("--control-listen must differ from --listen: the control surface never shares the API port")
	}
	log := newLogger(env.Stderr, config.Log{Level: "info", Format: *logFormat})
	if _, err := sf.check(); err != nil {
		return err
	}
	// Listen at once: a sync started right after this command waits for the
	// tasks to be generated instead of failing to connect.
	gate := &readyGate{ready: make(chan struct{})}
	api, err := serveHTTP(*listen, gate, log, "simulator API listening")
	if err != nil {
		return err
	}
	defer api.Close()
	log.Info("generating tasks", "tasks", sf.gen.Tasks, "arrivals_per_hour", sf.gen.ArrivalsPerHour, "horizon", sf.gen.Horizon.String())
	srv, err := sf.build(map[string]string{id: key})
	if err != nil {
		return err
	}
	gate.open(srv)
	if *control != "" {
		ctl, err := serveHTTP(*control, srv.ControlHandler(), log, "simulator control surface listening")
		if err != nil {
			return err
		}
		defer ctl.Close()
	}
	log.Info("simulator ready", "tasks_visible", len(srv.Truth()), "clock", srv.Clock().Now().Format(time.RFC3339), "speed", sf.speed,
		"variant", srv.Variant().String())
	<-ctx.Done()
	return nil
}

// readyGate holds requests until the simulator is built.
type readyGate struct {
	ready chan struct{}
	h     http.Handler
}

func (g *readyGate) open(h http.Handler) { g.h = h; close(g.ready) }

func (g *readyGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-g.ready:
		g.h.ServeHTTP(w, r)
	case <-r.Context().Done():
	}
}

func serveHTTP(addr string, h http.Handler, log *slog.Logger, msg string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.Serve(ln) }()
	log.Info(msg, "addr", ln.Addr().String())
	return s, nil
}
