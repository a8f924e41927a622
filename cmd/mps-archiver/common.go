package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/internal/config"
	"github.com/mps-archiver/mps-archiver/metrics"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// newFlagSet returns a flag set that reports usage errors through errUsage;
// about, when given, follows the flags in -h.
func newFlagSet(env *Env, name, synopsis string, about ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: mps-archiver %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
		for _, a := range about {
			fmt.Fprintf(env.Stderr, "\n%s\n", a)
		}
	}
	return fs
}

// apiEnvironment is the -h text of the commands that call the API.
// apiEnvironment is the help text's list of variables, its defaults and
// limits taken from where they are defined.
var apiEnvironment = fmt.Sprintf(`Environment:
  DATABASE_URL                  PostgreSQL URL or key=value string (required)
  TENCENTCLOUD_SECRET_ID/_KEY   API credentials (or their *_FILE forms, a profile, TKE OIDC, the CVM role)
  TENCENTCLOUD_SESSION_TOKEN    for temporary credentials
  TENCENTCLOUD_REGION           sent as X-TC-Region (DescribeTasks needs none)
  MPS_ENDPOINT                  default %s
  MPS_RATE_LIMIT                DescribeTasks requests per second (default %g, at most %d)
  MPS_DETAILS_MODE              all, failed or none (default %s)
  MPS_DETAILS_RATE_LIMIT        DescribeTaskDetail requests per second (default %g, at most %d)
  MPS_USAGE_MODE                on or off: archive billed usage, DescribeUsageData (default %s)
  MPS_USAGE_SCHEDULE            when usage is read (default %q)
  MPS_USAGE_RATE_LIMIT          DescribeUsageData requests per second (default %g)
  MPS_USAGE_REFRESH_DAYS        days read again at each usage run (default %d)
  MPS_USAGE_REGIONS, _TYPES     what every usage query names (default: every region and type)
  MPS_ARCHIVER_PUSHGATEWAY      sync: push metrics to this Prometheus Pushgateway when done
  MPS_ARCHIVER_PUSHGATEWAY_INSTANCE  sync: the push's instance grouping key (default: the host name)
  MPS_ARCHIVER_SIGNING_KEY_FILE the key the proof log's checkpoints are signed with (mps-archiver keys generate)
  MPS_ARCHIVER_CHECKPOINT_DIR   where each signed checkpoint is written, never replaced (write-once storage)
  MPS_ARCHIVER_CONFIG           a YAML file (see configs/mps-archiver.example.yaml)
  LOG_LEVEL, LOG_FORMAT         debug…error; auto, json, text`,
	mpsclient.Defaults.Endpoint, mpsclient.Defaults.RateLimit, config.APIRateLimit, config.Default().Details.Mode,
	mpsclient.Defaults.DetailRateLimit, config.APIRateLimit,
	config.Default().Usage.Mode, config.Default().Usage.Schedule, mpsclient.Defaults.UsageRateLimit, config.Default().Usage.RefreshDays)

// parse reads a command's flags and allows at most maxArgs positional
// arguments. stop is true when the command should return err at once: after
// -h (err nil), or on a usage error (exit 2; the flag package has printed
// the problem, or err says it).
func parse(fs *flag.FlagSet, args []string, maxArgs int) (stop bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return true, errUsage
	}
	if fs.NArg() > maxArgs {
		return true, usageErrorf("unexpected argument %q (see `mps-archiver %s -h`)", fs.Arg(maxArgs), fs.Name())
	}
	return false, nil
}

// parseMixed is parse for a command whose flags may also follow its
// arguments (`keys generate NAME --out FILE`); the arguments are left in
// positional.
func parseMixed(fs *flag.FlagSet, args []string, maxArgs int) (positional []string, stop bool, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, true, nil
			}
			return nil, true, errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) > maxArgs {
		return nil, true, usageErrorf("unexpected argument %q (see `mps-archiver %s -h`)", positional[maxArgs], fs.Name())
	}
	return positional, false, nil
}

// usageErrorf is a usage error: the command line asks for something the
// command cannot do. It exits 2, as a bad flag does; a failure while doing
// the work (configuration, database, API) exits 1.
func usageErrorf(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// commonFlags are shared by every command that touches the archive.
type commonFlags struct {
	configPath string
	logLevel   string
	logFormat  string
}

func (c *commonFlags) register(fs *flag.FlagSet, env *Env) {
	fs.StringVar(&c.configPath, "config", env.Getenv("MPS_ARCHIVER_CONFIG"), "YAML config `file` (env MPS_ARCHIVER_CONFIG)")
	fs.StringVar(&c.logLevel, "log-level", "", "log level: debug, info, warn, error (env LOG_LEVEL)")
	fs.StringVar(&c.logFormat, "log-format", "", "log format: auto, json, text (env LOG_FORMAT)")
}

// loadValid builds the configuration (defaults, file, environment, then
// the common flags and the command's own, applied by flags) and validates
// it; needAPI adds the MPS client's settings.
func (c *commonFlags) loadValid(env *Env, needAPI bool, flags ...func(*config.Config)) (config.Config, error) {
	cfg, err := config.Load(config.ExpandPath(c.configPath), env.Getenv)
	if err != nil {
		return cfg, err
	}
	if c.logLevel != "" {
		cfg.Log.Level = c.logLevel
	}
	if c.logFormat != "" {
		cfg.Log.Format = c.logFormat
	}
	for _, f := range flags {
		f(&cfg)
	}
	return cfg, cfg.Validate(needAPI)
}

// newLogger builds the process logger: JSON unless stderr is a terminal (or
// the format is forced).
func newLogger(w io.Writer, lc config.Log) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(lc.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	format := strings.ToLower(lc.Format)
	if format == "auto" || format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openStore connects and checks that the schema is the binary's.
func openStore(ctx context.Context, cfg config.Config, checkSchema bool) (*storage.Store, error) {
	st, err := storage.Open(ctx, cfg.DatabaseURL, storage.Options{})
	if err != nil {
		return nil, err
	}
	if checkSchema {
		if err := st.CheckSchema(ctx); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// openMigrated connects to a database of the demo's or the benchmark's own
// and brings its schema up to date.
func openMigrated(ctx context.Context, url string) (*storage.Store, error) {
	st, err := storage.Open(ctx, url, storage.Options{})
	if err != nil {
		return nil, err
	}
	if err := prepareSchema(ctx, st, true, nil); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// newClient builds the MPS client from cfg. Each retry is a debug line,
// and counted when metrics are given.
func newClient(cfg config.Config, log *slog.Logger, metrics *metrics.Metrics) (*mpsclient.Client, error) {
	var observe func(mpsclient.Attempt)
	var observeWait func(time.Duration)
	if metrics != nil {
		observe, observeWait = metrics.ObserveAttempt, metrics.ObserveWait
	}
	cred, err := mpsclient.ResolveCredential(mpsclient.CredentialConfig{
		SecretID:     cfg.MPS.SecretID,
		SecretKey:    cfg.MPS.SecretKey,
		SessionToken: cfg.MPS.SessionToken,
		UseCVMRole:   cfg.MPS.UseCVMRole,
		CVMRoleName:  cfg.MPS.CVMRoleName,
	})
	if err != nil {
		return nil, err
	}
	return mpsclient.New(mpsclient.Config{
		Endpoint:        cfg.MPS.Endpoint,
		Credential:      cred,
		Region:          cfg.MPS.Region,
		RateLimit:       cfg.MPS.RateLimit,
		DetailRateLimit: cfg.Details.RateLimit,
		UsageRateLimit:  cfg.Usage.RateLimit,
		Burst:           cfg.MPS.Burst,
		PageSize:        cfg.MPS.PageSize,
		RequestTimeout:  cfg.MPS.RequestTimeout,
		MaxAttempts:     cfg.MPS.MaxAttempts,
		Observe:         observe,
		ObserveWait:     observeWait,
		OnRetry: func(r mpsclient.Retry) {
			log.Debug("API call failed; retrying", "action", r.Action, "code", r.Code, "request_id", r.RequestID,
				"attempt", r.Attempt, "backoff_seconds", r.Backoff.Round(time.Millisecond).Seconds())
			if metrics != nil {
				metrics.ObserveRetry(r)
			}
		},
	})
}

// newSyncer wires a syncer from cfg.
// maxClockSkew is how far the API's Date is believed from this machine's
// clock: syncer.MaxClockSkew for the real API, unbounded for a local
// simulator (an http:// endpoint), whose clock is simulated on purpose.
func maxClockSkew(cfg config.Config) time.Duration {
	if strings.HasPrefix(strings.TrimSpace(cfg.MPS.Endpoint), "http://") {
		return 0
	}
	return syncer.MaxClockSkew
}

// detailConfig is the detail fetcher's configuration.
func detailConfig(cfg config.Config) details.Config {
	return details.Config{MaxClockSkew: maxClockSkew(cfg)}
}

func newSyncer(cfg config.Config, client *mpsclient.Client, st syncer.Store, log *slog.Logger, onPage func(syncer.PageEvent)) (*syncer.Syncer, error) {
	statuses, err := cfg.Statuses()
	if err != nil {
		return nil, err
	}
	sources, skipMissing, err := cfg.Sources()
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	return syncer.New(client, st, syncer.Config{
		Sources:            sources,
		SkipMissingSources: skipMissing,
		Statuses:           statuses,
		MaxPagesPerStatus:  cfg.Sync.MaxPagesPerStatus,
		Partitions:         cfg.Sync.Partitions,
		PageSize:           client.PageSize(),
		FullEvery:          cfg.Sync.FullEvery,
		Overlap:            cfg.Sync.Overlap,
		Details:            cfg.Details.Mode,
		DetailRetention:    cfg.Details.Retention,
		RunTimeout:         cfg.Sync.RunTimeout,
		MaxClockSkew:       maxClockSkew(cfg),
		Host:               host,
		Version:            buildVersion(),
		OnPage:             onPage,
	}, log), nil
}
