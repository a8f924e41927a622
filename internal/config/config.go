// Package config loads mps-archiver's settings: defaults, then a YAML file,
// then environment variables, then command-line flags (applied by the
// commands). Validate names the field and the bad value of every problem.
// Secrets may come from *_FILE variables (Kubernetes secrets, systemd
// credentials) and are never printed.
package config

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mps-archiver/mps-archiver/coldstore"
	"github.com/mps-archiver/mps-archiver/daemon"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/proof"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// Config is the whole configuration. YAML keys are the snake_case names.
type Config struct {
	DatabaseURL string  `yaml:"database_url"`
	MPS         MPS     `yaml:"mps"`
	Sync        Sync    `yaml:"sync"`
	Details     Details `yaml:"details"`
	Usage       Usage   `yaml:"usage"`
	Proof       Proof   `yaml:"proof"`
	Archive     Archive `yaml:"archive"`
	Serve       Serve   `yaml:"serve"`
	Log         Log     `yaml:"log"`

	// file is what the config file said, before the environment (nil:
	// no file); its problems are reported even where a variable overrides
	// them, with the file's line.
	file *fileLayer
}

// fileLayer is a config file as read: its settings over the defaults, the
// file's path and the line of each key path it set.
type fileLayer struct {
	path  string
	cfg   Config
	lines map[string]int
}

// MPS configures the API client.
type MPS struct {
	Endpoint       string        `yaml:"endpoint"`
	Region         string        `yaml:"region"`
	SecretID       string        `yaml:"secret_id"`
	SecretKey      string        `yaml:"secret_key"`
	SessionToken   string        `yaml:"session_token"`
	UseCVMRole     bool          `yaml:"use_cvm_role"`
	CVMRoleName    string        `yaml:"cvm_role_name"`
	RateLimit      float64       `yaml:"rate_limit"`
	Burst          int           `yaml:"burst"`
	PageSize       int           `yaml:"page_size"`
	RequestTimeout time.Duration `yaml:"request_timeout"`
	MaxAttempts    int           `yaml:"max_attempts"`
}

// Sync configures a run.
type Sync struct {
	// Sources are the task lists archived: media (DescribeTasks), image
	// (DescribeImageTasks). Empty (the default) is every source the API
	// serves: one it does not (an older endpoint) is skipped, remembered,
	// and asked again a day later. A source named here that the API does
	// not serve fails the run.
	Sources           []string      `yaml:"sources"`
	Statuses          []string      `yaml:"statuses"`
	Partitions        int           `yaml:"partitions"`
	MaxPagesPerStatus int           `yaml:"max_pages_per_status"`
	RunTimeout        time.Duration `yaml:"run_timeout"`
	// FullEvery: a run is full when the last successful full run is this
	// old; the runs between are incremental. 0 makes every run full.
	FullEvery time.Duration `yaml:"full_every"`
	// Overlap: an incremental run lists FINISH from this long before the
	// last successful run's start.
	Overlap time.Duration `yaml:"overlap"`
	// Pushgateway: where `sync` pushes its metrics when it ends (a
	// Prometheus Pushgateway's base URL; "" for none). A sync run by a
	// CronJob or timer has no /metrics to scrape.
	Pushgateway string `yaml:"pushgateway"`
	// PushgatewayInstance is the grouping key instance of the push ("":
	// the host name), so that several CronJobs or hosts pushing to one
	// Pushgateway keep a group each instead of replacing one another's.
	PushgatewayInstance string `yaml:"pushgateway_instance"`
}

// PushInstance is the Pushgateway grouping key instance `sync` pushes
// under: sync.pushgateway_instance, else the host name.
func (s Sync) PushInstance() string {
	if s.PushgatewayInstance != "" {
		return s.PushgatewayInstance
	}
	host, _ := os.Hostname()
	return host
}

// Details configures outcome capture (DescribeTaskDetail).
type Details struct {
	// Mode: all (every task that reaches FINISH), failed (the tasks
	// DescribeTasks lists with SubTaskHasFailed=true) or none. The product
	// defaults to all where the syncer's zero value is none: see Default.
	Mode string `yaml:"mode"`
	// RateLimit is DescribeTaskDetail's own client-side ceiling in requests
	// per second: the API limits each action separately.
	RateLimit float64 `yaml:"rate_limit"`
	// Retention is how long after creation a task's detail is planned to
	// stay readable: the deadline the queue is served and alerted by. The
	// archiver still tries every task up to mps.Window old.
	Retention time.Duration `yaml:"retention"`
	// SyncBudget bounds how long `sync` goes on reading details after the
	// lists are drained; what is left waits for the next run.
	SyncBudget time.Duration `yaml:"sync_budget"`
}

// Usage configures the archive of billed usage (DescribeUsageData).
type Usage struct {
	// Mode: on (the default: a run costs one request a region) or off.
	Mode string `yaml:"mode"`
	// Schedule is when usage is read: serve runs it on this cron schedule
	// (in serve.time_zone), and a sync reads usage when the schedule has
	// come round since the last usage run, so that a timer or CronJob
	// that only runs sync keeps usage too.
	Schedule string `yaml:"schedule"`
	// RateLimit is DescribeUsageData's own client-side ceiling.
	RateLimit float64 `yaml:"rate_limit"`
	// RefreshDays: each run reads again this many days up to today,
	// whose figures may still be revised.
	RefreshDays int `yaml:"refresh_days"`
	// Regions and Types are named in every query: the API answers for
	// ap-guangzhou and Transcode alone when they are left out.
	Regions []string `yaml:"regions"`
	Types   []string `yaml:"types"`
}

// Archive configures cold months: closed months exported as Parquet (to
// a directory or an S3-compatible bucket) and, under KeepMonths, detached
// from the database once the export is read back and found equal.
type Archive struct {
	// KeepMonths is how many months stay in PostgreSQL, the current one
	// included; older closed months are exported, verified and detached by
	// every sync (serve's and `sync`'s). 0 (the default) keeps everything.
	KeepMonths int `yaml:"keep_months"`
	// Destination is a directory or s3://bucket/prefix.
	Destination string `yaml:"destination"`
	// S3Endpoint is the S3 API's host (e.g. cos.ap-guangzhou.myqcloud.com;
	// http://host:port for a local MinIO), S3Region its region.
	S3Endpoint string `yaml:"s3_endpoint"`
	S3Region   string `yaml:"s3_region"`
	// S3AccessKeyID and S3SecretAccessKey sign the requests (empty: the
	// environment's AWS_* variables, or the instance's role). The secret
	// is best given as MPS_ARCHIVE_S3_SECRET_ACCESS_KEY_FILE.
	S3AccessKeyID     string `yaml:"s3_access_key_id"`
	S3SecretAccessKey string `yaml:"s3_secret_access_key"`
}

// CheckDestination refuses a destination URL that holds credentials (it
// is recorded in the ledger and the proof log, and logged).
func (a Archive) CheckDestination() error {
	if d := a.Destination; strings.Contains(d, "@") && strings.Contains(d, "://") {
		return fmt.Errorf("%q holds credentials: give them as archive.s3_access_key_id and %s_FILE", redactURLUser(d), EnvArchiveSecret)
	}
	return nil
}

// Bucket opens the archive's destination.
func (a Archive) Bucket() (coldstore.Bucket, error) {
	return coldstore.Open(a.Destination, coldstore.S3{Endpoint: a.S3Endpoint, Region: a.S3Region,
		AccessKeyID: a.S3AccessKeyID, SecretAccessKey: a.S3SecretAccessKey})
}

// Proof configures the proof log's checkpoints (docs/operations.md,
// "Proof"). The log itself is always kept.
type Proof struct {
	// SigningKey is the Ed25519 private key checkpoints are signed with
	// (`mps-archiver keys generate`): a secret, best given as
	// MPS_ARCHIVER_SIGNING_KEY_FILE. Without one, checkpoints are kept
	// unsigned and nothing is published.
	SigningKey string `yaml:"signing_key"`
	// VerifierKeys are public keys trusted besides the signing key's own:
	// the keys of earlier signing keys, after a rotation.
	VerifierKeys []string `yaml:"verifier_keys"`
	// CheckpointDir is where each signed checkpoint is written as a file
	// (never replaced): point it at write-once storage.
	CheckpointDir string `yaml:"checkpoint_dir"`
}

// Signer is the checkpoint signer of Proof.SigningKey (nil without one).
func (p Proof) Signer() (*proof.Signer, error) {
	if p.SigningKey == "" {
		return nil, nil
	}
	s, err := proof.NewSigner(p.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("proof.signing_key (%s or %s_FILE): %v", EnvSigningKey, EnvSigningKey, err)
	}
	return s, nil
}

// Verifiers are the public keys checkpoints are checked with: the
// signing key's and proof.verifier_keys, and extra ones given on a
// command line.
func (p Proof) Verifiers(extra ...string) (*proof.Verifiers, error) {
	keys := append(slices.Clone(p.VerifierKeys), extra...)
	s, err := p.Signer()
	if err != nil {
		return nil, err
	}
	if s != nil {
		keys = append(keys, s.PublicKey())
	}
	v, err := proof.NewVerifiers(keys...)
	if err != nil {
		return nil, fmt.Errorf("proof.verifier_keys (%s): %v", EnvVerifierKeys, err)
	}
	return v, nil
}

// Serve configures the daemon.
type Serve struct {
	Schedule      string        `yaml:"schedule"`
	TimeZone      string        `yaml:"time_zone"`
	Listen        string        `yaml:"listen"`
	RunOnStart    bool          `yaml:"run_on_start"`
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	Migrate       bool          `yaml:"migrate"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // auto, json, text
}

// Default is the configuration with nothing set.
func Default() Config {
	client := mpsclient.Defaults
	return Config{
		MPS: MPS{
			Endpoint:       client.Endpoint,
			RateLimit:      client.RateLimit,
			Burst:          client.Burst,
			PageSize:       client.PageSize,
			RequestTimeout: client.RequestTimeout,
			MaxAttempts:    client.MaxAttempts,
		},
		Sync: Sync{
			Statuses:          statusNames(syncer.Defaults.Statuses),
			Partitions:        4, // the product's choice; the syncer's own default is one cursor
			MaxPagesPerStatus: syncer.Defaults.MaxPagesPerStatus,
			RunTimeout:        time.Hour,
			FullEvery:         24 * time.Hour,
			Overlap:           syncer.Defaults.Overlap,
		},
		// All, where a syncer.Config left zero queues nothing: a syncer
		// alone cannot know that anything drains its queue, while the
		// product starts a detail fetcher beside it whenever details.mode
		// is not none; and an outcome the API has forgotten (after
		// mps.Window at best) is lost for good, so the product captures
		// unless an operator turns it off.
		Details: Details{Mode: syncer.DetailsAll, RateLimit: client.DetailRateLimit, Retention: 72 * time.Hour, SyncBudget: 2 * time.Minute},
		Usage: Usage{Mode: "on", Schedule: DefaultUsageSchedule, RateLimit: client.UsageRateLimit, RefreshDays: 7,
			Regions: slices.Clone(mps.UsageRegions), Types: slices.Clone(mps.UsageTypes)},
		Serve: Serve{
			Schedule:      daemon.DefaultSchedule,
			Listen:        daemon.DefaultListen,
			RunOnStart:    true,
			ShutdownGrace: daemon.DefaultShutdownGrace,
		},
		Log: Log{Level: "info", Format: "auto"},
	}
}

func statusNames(sts []mps.Status) []string {
	out := make([]string, len(sts))
	for i, st := range sts {
		out[i] = string(st)
	}
	return out
}

// DefaultUsageSchedule reads usage once a day, after the API's day (UTC+8)
// has ended.
const DefaultUsageSchedule = "CRON_TZ=Asia/Shanghai 20 1 * * *"

// Load builds the configuration from defaults, the YAML file at path (""
// for none) and the environment.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Default()
	if path != "" {
		if err := cfg.readFile(path); err != nil {
			return cfg, err
		}
	}
	if err := cfg.applyEnv(getenv); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func (c *Config) readFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", UnwrapPathError(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, UnwrapPathError(err))
	}
	lines := map[string]int{}
	if err := decodeYAML(b, c, lines); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	c.file = &fileLayer{path: path, cfg: *c, lines: lines}
	return nil
}

// UnwrapPathError drops the operation from a path error ("open x: no
// such file" reads better as "x: no such file").
func UnwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

func yamlError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "\n", "; ")
	return msg
}

// APIRateLimit is what the API allows each action, per account, in
// requests per second.
const APIRateLimit = 100

// windowHours and windowDays are mps.Window as the messages write it.
const (
	windowHours = int(mps.Window / time.Hour)
	windowDays  = int(mps.Window / (24 * time.Hour))
)

// Environment variables, the public contract.
const (
	EnvDatabaseURL   = "DATABASE_URL"
	EnvSecretID      = "TENCENTCLOUD_SECRET_ID"
	EnvSecretKey     = "TENCENTCLOUD_SECRET_KEY"
	EnvSessionToken  = "TENCENTCLOUD_SESSION_TOKEN"
	EnvEndpoint      = "MPS_ENDPOINT"
	EnvRegion        = "TENCENTCLOUD_REGION"
	EnvRateLimit     = "MPS_RATE_LIMIT"
	EnvDetailsRate   = "MPS_DETAILS_RATE_LIMIT"
	EnvDetailsMode   = "MPS_DETAILS_MODE"
	EnvSchedule      = "MPS_ARCHIVER_SCHEDULE"
	EnvListen        = "MPS_ARCHIVER_LISTEN"
	EnvTimeZone      = "MPS_ARCHIVER_TIME_ZONE"
	EnvPushgateway   = "MPS_ARCHIVER_PUSHGATEWAY"
	EnvPushInstance  = "MPS_ARCHIVER_PUSHGATEWAY_INSTANCE"
	EnvLogLevel      = "LOG_LEVEL"
	EnvUsageMode     = "MPS_USAGE_MODE"
	EnvUsageSchedule = "MPS_USAGE_SCHEDULE"
	EnvUsageRate     = "MPS_USAGE_RATE_LIMIT"
	EnvUsageRefresh  = "MPS_USAGE_REFRESH_DAYS"
	EnvUsageRegions  = "MPS_USAGE_REGIONS"
	EnvUsageTypes    = "MPS_USAGE_TYPES"
	EnvLogFormat     = "LOG_FORMAT"
	EnvSigningKey    = "MPS_ARCHIVER_SIGNING_KEY"
	EnvVerifierKeys  = "MPS_ARCHIVER_VERIFIER_KEYS"
	EnvCheckpointDir = "MPS_ARCHIVER_CHECKPOINT_DIR"
	EnvSyncSources   = "MPS_SYNC_SOURCES"
	EnvArchiveKeep   = "MPS_ARCHIVE_KEEP_MONTHS"
	EnvArchiveDest   = "MPS_ARCHIVE_DESTINATION"
	EnvArchiveS3     = "MPS_ARCHIVE_S3_ENDPOINT"
	EnvArchiveRegion = "MPS_ARCHIVE_S3_REGION"
	EnvArchiveKeyID  = "MPS_ARCHIVE_S3_ACCESS_KEY_ID"
	EnvArchiveSecret = "MPS_ARCHIVE_S3_SECRET_ACCESS_KEY"
)

func (c *Config) applyEnv(getenv func(string) string) error {
	secret := func(name string, dst *string) error {
		v, p := getenv(name), getenv(name+"_FILE")
		if v != "" && p != "" {
			return fmt.Errorf("%s and %s_FILE are both set: set one of them", name, name)
		}
		if v != "" {
			*dst = strings.TrimSpace(v)
			return nil
		}
		if p != "" {
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("%s_FILE: %w", name, UnwrapPathError(err))
			}
			*dst = strings.TrimSpace(string(b))
		}
		return nil
	}
	for name, dst := range map[string]*string{
		EnvDatabaseURL:   &c.DatabaseURL,
		EnvSecretID:      &c.MPS.SecretID,
		EnvSecretKey:     &c.MPS.SecretKey,
		EnvSessionToken:  &c.MPS.SessionToken,
		EnvSigningKey:    &c.Proof.SigningKey,
		EnvArchiveSecret: &c.Archive.S3SecretAccessKey,
	} {
		if err := secret(name, dst); err != nil {
			return err
		}
	}
	plain := map[string]*string{
		EnvEndpoint:      &c.MPS.Endpoint,
		EnvRegion:        &c.MPS.Region,
		EnvSchedule:      &c.Serve.Schedule,
		EnvListen:        &c.Serve.Listen,
		EnvTimeZone:      &c.Serve.TimeZone,
		EnvPushgateway:   &c.Sync.Pushgateway,
		EnvPushInstance:  &c.Sync.PushgatewayInstance,
		EnvLogLevel:      &c.Log.Level,
		EnvLogFormat:     &c.Log.Format,
		EnvDetailsMode:   &c.Details.Mode,
		EnvUsageMode:     &c.Usage.Mode,
		EnvUsageSchedule: &c.Usage.Schedule,
		EnvCheckpointDir: &c.Proof.CheckpointDir,
		EnvArchiveDest:   &c.Archive.Destination,
		EnvArchiveS3:     &c.Archive.S3Endpoint,
		EnvArchiveRegion: &c.Archive.S3Region,
		EnvArchiveKeyID:  &c.Archive.S3AccessKeyID,
	}
	for name, dst := range plain {
		if v := getenv(name); v != "" {
			*dst = strings.TrimSpace(v)
		}
	}
	for name, dst := range map[string]*[]string{EnvUsageRegions: &c.Usage.Regions, EnvUsageTypes: &c.Usage.Types, EnvVerifierKeys: &c.Proof.VerifierKeys,
		EnvSyncSources: &c.Sync.Sources} {
		if v := getenv(name); v != "" {
			*dst = splitList(v)
		}
	}
	if v := getenv(EnvArchiveKeep); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s=%q: not a whole number", EnvArchiveKeep, v)
		}
		c.Archive.KeepMonths = n
	}
	if v := getenv(EnvUsageRefresh); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s=%q: not a whole number", EnvUsageRefresh, v)
		}
		c.Usage.RefreshDays = n
	}
	for name, dst := range map[string]*float64{EnvRateLimit: &c.MPS.RateLimit, EnvDetailsRate: &c.Details.RateLimit, EnvUsageRate: &c.Usage.RateLimit} {
		if v := getenv(name); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%s=%q: not a number", name, v)
			}
			*dst = f
		}
	}
	return nil
}

// splitList reads a comma- or space-separated list.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// UsageOn reports whether usage is archived.
func (c *Config) UsageOn() bool { return c.Usage.Mode == "on" }

// Sources parses Sync.Sources: the sources to drain, and whether one the
// API does not serve is skipped (none named: every source, those served).
func (c *Config) Sources() (srcs []mps.Source, skipMissing bool, err error) {
	srcs, err = mps.ParseSources(strings.Join(c.Sync.Sources, ","))
	if err != nil {
		return nil, false, fmt.Errorf("sync.sources: %v", err)
	}
	all := true
	for _, s := range c.Sync.Sources {
		if s = strings.TrimSpace(s); s != "" && !strings.EqualFold(s, "all") {
			all = false
		}
	}
	return srcs, all, nil
}

// Statuses parses Sync.Statuses.
func (c *Config) Statuses() ([]mps.Status, error) {
	out := make([]mps.Status, 0, len(c.Sync.Statuses))
	for _, s := range c.Sync.Statuses {
		st, err := mps.ParseStatus(s)
		if err != nil {
			return nil, fmt.Errorf("sync.statuses: %v", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// Validate checks what every command needs. needAPI adds the MPS client's
// settings.
func (c *Config) Validate(needAPI bool) error {
	errs := c.problems(needAPI)
	if c.file == nil {
		return joinOneLine(errs)
	}
	// The file's own problems: each names the file and line, whether the
	// final value came from it or a variable overrides a wrong one. The
	// file's values are judged in the final configuration's context (a
	// rate limit above 100 is fine for an http:// endpoint the environment
	// names): the final one, with the file's value put back for each key
	// the file set.
	file := *c
	file.file = nil
	for key := range c.file.lines {
		if dst, ok := fieldAt(reflect.ValueOf(&file).Elem(), key); ok {
			src, _ := fieldAt(reflect.ValueOf(&c.file.cfg).Elem(), key)
			dst.Set(src)
		}
	}
	file.DatabaseURL = c.DatabaseURL
	final := map[string]bool{}
	for _, e := range errs {
		final[e.Error()] = true
	}
	for i, e := range errs {
		// The final value of the key is the file's: say where it is.
		if key, line, ok := c.file.keyOf(e.Error()); ok && c.file.kept(c, key) {
			errs[i] = fmt.Errorf("%w (config file %s, line %d)", e, c.file.path, line)
		}
	}
	for _, e := range file.problems(needAPI) {
		if !final[e.Error()] {
			if _, line, ok := c.file.keyOf(e.Error()); ok {
				errs = append(errs, fmt.Errorf("%w (config file %s, line %d; the environment or a flag overrides it, but the file is wrong)", e, c.file.path, line))
			}
		}
	}
	return joinOneLine(errs)
}

// fieldAt is the settable field at a YAML key path ("mps.rate_limit") of
// v, a Config; ok is false for a path that names no leaf (a section's own
// key, "mps", is not a value).
func fieldAt(v reflect.Value, path string) (reflect.Value, bool) {
	head, rest, nested := strings.Cut(path, ".")
	for i := 0; i < v.NumField(); i++ {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag != head {
			continue
		}
		f := v.Field(i)
		if nested {
			if f.Kind() != reflect.Struct {
				return reflect.Value{}, false
			}
			return fieldAt(f, rest)
		}
		return f, f.Kind() != reflect.Struct
	}
	return reflect.Value{}, false
}

// kept reports whether final's value at key is the file's (nothing
// overrode it).
func (f *fileLayer) kept(final *Config, key string) bool {
	a, ok := fieldAt(reflect.ValueOf(final).Elem(), key)
	b, _ := fieldAt(reflect.ValueOf(&f.cfg).Elem(), key)
	return ok && reflect.DeepEqual(a.Interface(), b.Interface())
}

// keyOf is the key path a problem starts with, and its line in the file
// (ok: the file set it).
func (f *fileLayer) keyOf(problem string) (key string, line int, ok bool) {
	key, _, _ = strings.Cut(problem, " ")
	key = strings.TrimSuffix(key, ":")
	line, ok = f.lines[key]
	return key, line, ok
}

// problems lists what is wrong with c, one error a setting.
func (c *Config) problems(needAPI bool) []error {
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, fmt.Errorf("database_url: not set (set %s or database_url in the config file)", EnvDatabaseURL))
	} else if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") && !strings.Contains(c.DatabaseURL, "=") {
		errs = append(errs, fmt.Errorf("database_url: must be a postgres:// URL or a key=value connection string"))
	}
	if needAPI {
		if _, _, err := mpsclient.ParseEndpoint(c.MPS.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("mps.endpoint (%s): %v", EnvEndpoint, err))
		}
		// The API allows APIRateLimit per second per account and action,
		// shared with the account's other tooling; more only makes sense
		// against a local simulator (an http:// endpoint).
		ceiling := float64(APIRateLimit)
		if strings.HasPrefix(strings.TrimSpace(c.MPS.Endpoint), "http://") {
			ceiling = 10000
		}
		for _, rl := range []struct {
			key, env string
			v        float64
		}{{"mps.rate_limit", EnvRateLimit, c.MPS.RateLimit}, {"details.rate_limit", EnvDetailsRate, c.Details.RateLimit}, {"usage.rate_limit", EnvUsageRate, c.Usage.RateLimit}} {
			switch {
			case rl.v <= 0:
				errs = append(errs, fmt.Errorf("%s (%s): %v must be positive", rl.key, rl.env, rl.v))
			case rl.v > ceiling:
				errs = append(errs, fmt.Errorf("%s (%s): %v is above the API's %d requests per second (per account and action, shared with the account's other tooling)",
					rl.key, rl.env, rl.v, APIRateLimit))
			}
		}
		switch c.Details.Mode {
		case "all", "failed", "none":
		default:
			errs = append(errs, fmt.Errorf("details.mode (%s): %q is not all, failed or none", EnvDetailsMode, c.Details.Mode))
		}
		if c.Details.Retention < time.Hour || c.Details.Retention > mps.Window {
			errs = append(errs, fmt.Errorf("details.retention: %s is outside 1h..%dh (the API keeps details 72h on the international site, %dh on the China site)", c.Details.Retention, windowHours, windowHours))
		}
		if c.Details.SyncBudget < 0 {
			errs = append(errs, fmt.Errorf("details.sync_budget: %s must not be negative", c.Details.SyncBudget))
		}
		if c.MPS.Burst < 1 || c.MPS.Burst > 100 {
			errs = append(errs, fmt.Errorf("mps.burst: %d is outside 1..100", c.MPS.Burst))
		}
		if c.MPS.PageSize < 1 || c.MPS.PageSize > mps.MaxLimit {
			errs = append(errs, fmt.Errorf("mps.page_size: %d is outside 1..%d", c.MPS.PageSize, mps.MaxLimit))
		}
		if c.MPS.RequestTimeout < 100*time.Millisecond {
			errs = append(errs, fmt.Errorf("mps.request_timeout: %s is too short (at least 100ms)", c.MPS.RequestTimeout))
		}
		if c.MPS.MaxAttempts < 1 || c.MPS.MaxAttempts > 20 {
			errs = append(errs, fmt.Errorf("mps.max_attempts: %d is outside 1..20", c.MPS.MaxAttempts))
		}
		if _, err := c.Statuses(); err != nil {
			errs = append(errs, err)
		}
		if _, _, err := c.Sources(); err != nil {
			errs = append(errs, err)
		}
		if c.Sync.Partitions < 1 || c.Sync.Partitions > 32 {
			errs = append(errs, fmt.Errorf("sync.partitions: %d is outside 1..32", c.Sync.Partitions))
		}
		if c.Sync.MaxPagesPerStatus < 1 {
			errs = append(errs, fmt.Errorf("sync.max_pages_per_status: %d must be positive", c.Sync.MaxPagesPerStatus))
		}
		// A full run is the safety net of the incremental ones: it must
		// come days before mps.Window would close on a missed task.
		if c.Sync.FullEvery != 0 && (c.Sync.FullEvery < time.Hour || c.Sync.FullEvery > 96*time.Hour) {
			errs = append(errs, fmt.Errorf("sync.full_every: %s is outside 1h..96h (0: every run full); a full run must leave days of margin inside the API's %d-day window", c.Sync.FullEvery, windowDays))
		}
		if c.Sync.Overlap < time.Minute || c.Sync.Overlap > 24*time.Hour {
			errs = append(errs, fmt.Errorf("sync.overlap: %s is outside 1m..24h", c.Sync.Overlap))
		}
		if c.Sync.Pushgateway != "" {
			if u, err := url.Parse(c.Sync.Pushgateway); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
				errs = append(errs, fmt.Errorf("sync.pushgateway (%s): %q is not an http:// or https:// URL of a Pushgateway (without credentials)", EnvPushgateway, redactURLUser(c.Sync.Pushgateway)))
			}
		}
		if i := c.Sync.PushgatewayInstance; len(i) > 128 || !utf8.ValidString(i) || strings.ContainsFunc(i, unicode.IsControl) {
			errs = append(errs, fmt.Errorf("sync.pushgateway_instance (%s): %q is not a label value (UTF-8, at most 128 bytes, no control characters)", EnvPushInstance, i))
		}
		if c.Sync.RunTimeout < 0 {
			errs = append(errs, fmt.Errorf("sync.run_timeout: %s must not be negative", c.Sync.RunTimeout))
		}
	}
	if _, err := c.Proof.Verifiers(); err != nil {
		errs = append(errs, err)
	}
	if k := c.Archive.KeepMonths; k < 0 || k > 1200 {
		errs = append(errs, fmt.Errorf("archive.keep_months (%s): %d is outside 0..1200 (0 keeps everything)", EnvArchiveKeep, k))
	} else if k > 0 && c.Archive.Destination == "" {
		errs = append(errs, fmt.Errorf("archive.keep_months (%s) is %d but archive.destination (%s) is empty: months are detached only once exported", EnvArchiveKeep, k, EnvArchiveDest))
	}
	if err := c.Archive.CheckDestination(); err != nil {
		errs = append(errs, fmt.Errorf("archive.destination (%s): %w", EnvArchiveDest, err))
	}
	if d := c.Proof.CheckpointDir; d != "" {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("proof.checkpoint_dir (%s): %q is not a directory", EnvCheckpointDir, d))
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "warning", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level))
	}
	switch strings.ToLower(c.Log.Format) {
	case "auto", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not auto, json or text", c.Log.Format))
	}
	return errs
}

// UsageProblems checks the usage settings, apart from the others: a
// wrong usage setting must not stop the archiving of tasks (the commands
// that archive log it and read no usage; `usage` refuses to run). Unknown
// is a type name this binary does not know, which is passed on to the API
// (a type Tencent adds later), to be said in a warning.
func (c *Config) UsageProblems() (unknown []string, err error) {
	errs := c.usageProblems()
	if c.Usage.Mode == "on" {
		for _, t := range c.Usage.Types {
			if !slices.Contains(mps.UsageTypes, t) && typeName.MatchString(t) {
				unknown = append(unknown, t)
			}
		}
	}
	return unknown, joinOneLine(errs)
}

// typeName is what a task type's name may look like.
var typeName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,63}$`)

// usageProblems lists what is wrong with the usage settings.
func (c *Config) usageProblems() []error {
	var errs []error
	switch c.Usage.Mode {
	case "on", "off":
	default:
		errs = append(errs, fmt.Errorf("usage.mode (%s): %q is not on or off", EnvUsageMode, c.Usage.Mode))
	}
	if c.Usage.Mode != "on" {
		return errs
	}
	if _, err := daemon.ParseSchedule(c.Usage.Schedule, c.Serve.TimeZone); err != nil {
		errs = append(errs, fmt.Errorf("usage.schedule (%s): %v", EnvUsageSchedule, err))
	}
	if c.Usage.RefreshDays < 1 || c.Usage.RefreshDays > mps.UsageMaxSpanDays {
		errs = append(errs, fmt.Errorf("usage.refresh_days (%s): %d is outside 1..%d (one query reads at most %d days)", EnvUsageRefresh, c.Usage.RefreshDays, mps.UsageMaxSpanDays, mps.UsageMaxSpanDays))
	}
	if len(c.Usage.Regions) == 0 {
		errs = append(errs, fmt.Errorf("usage.regions (%s): empty (the API would answer for ap-guangzhou alone)", EnvUsageRegions))
	}
	for _, r := range c.Usage.Regions {
		if r == "" || len(r) > 40 || strings.ContainsFunc(r, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') }) {
			errs = append(errs, fmt.Errorf("usage.regions (%s): %q is not a region name (ap-guangzhou, aws, …)", EnvUsageRegions, r))
			break
		}
	}
	if len(c.Usage.Types) == 0 {
		errs = append(errs, fmt.Errorf("usage.types (%s): empty (the API would answer for Transcode alone)", EnvUsageTypes))
	}
	for _, t := range c.Usage.Types {
		if !typeName.MatchString(t) {
			errs = append(errs, fmt.Errorf("usage.types (%s): %q is not a type name (one of %s, or another the API knows)", EnvUsageTypes, t, strings.Join(mps.UsageTypes, ", ")))
			break
		}
	}
	return errs
}

// redactURLUser hides what stands between "//" and "@" in a URL someone
// mistyped: it may hold a password.
func redactURLUser(s string) string {
	if i := strings.Index(s, "//"); i >= 0 {
		if j := strings.LastIndex(s, "@"); j > i {
			return s[:i+2] + "xxxxx" + s[j:]
		}
	}
	return s
}

// joinOneLine keeps a multi-problem error on one line, as operators grep it.
func joinOneLine(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Error()
	}
	return errors.New("invalid configuration: " + strings.Join(parts, "; "))
}

// ExpandPath resolves ~ in a path.
func ExpandPath(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}
