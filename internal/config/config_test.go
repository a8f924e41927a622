package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestExampleFileIsTheDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Load(filepath.Join("..", "..", "configs", "mps-archiver.example.yaml"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	if cfg.MPS != def.MPS || cfg.Serve != def.Serve || cfg.Log != def.Log ||
		strings.Join(cfg.Sync.Statuses, ",") != strings.Join(def.Sync.Statuses, ",") || cfg.Sync.RunTimeout != def.Sync.RunTimeout {
		t.Fatalf("example file differs from the defaults:\n%+v\n%+v", cfg, def)
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("mps:\n  rate_limit: 30\n  endpoint: https://from-file\nserve:\n  schedule: '@hourly'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("from-file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file, env(map[string]string{
		"MPS_ENDPOINT":                 "https://from-env",
		"TENCENTCLOUD_SECRET_KEY_FILE": keyFile,
		"DATABASE_URL":                 "postgres://x@y/z",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MPS.RateLimit != 30 || cfg.MPS.Endpoint != "https://from-env" || cfg.Serve.Schedule != "@hourly" ||
		cfg.MPS.SecretKey != "from-file-secret" || cfg.MPS.RequestTimeout != 30*time.Second {
		t.Fatalf("%+v", cfg)
	}
}

func TestBadInputNamesTheProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := 0
	write := func(body string) string {
		files++
		p := filepath.Join(dir, fmt.Sprintf("%d.yaml", files))
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]string{
		filepath.Join(dir, "missing.yaml"): "no such file",
		write("mps: [unclosed\n"):          "config file",
		// The corpus of the issue: key path, value, what is wanted.
		write("mps:\n  rate_limt: 5\n"):            "mps.rate_limt (line 2): unknown key; did you mean \"rate_limit\"?",
		write("sync:\n  partitons: 4\n"):           "sync.partitons (line 2): unknown key; did you mean \"partitions\"?",
		write("sink:\n  partitions: 4\n"):          "sink (line 1): unknown key; did you mean \"sync\"?",
		write("mps:\n  zzz: 1\n"):                  "mps.zzz (line 2): unknown key (known: burst, ",
		write("mps:\n  rate_limit: 20x\n"):         `mps.rate_limit (line 2): "20x" is not a number`,
		write("sync:\n  run_timeout: 30\n"):        `sync.run_timeout (line 2): "30" is not a duration such as 30s or 2h`,
		write("mps:\n  request_timeout: soon\n"):   `mps.request_timeout (line 2): "soon" is not a duration`,
		write("sync:\n  partitions: four\n"):       `sync.partitions (line 2): "four" is not a whole number`,
		write("serve:\n  run_on_start: perhaps\n"): `serve.run_on_start (line 2): "perhaps" is not true or false`,
		write("sync:\n  statuses: WAITING\n"):      `sync.statuses (line 2): "WAITING" is not a list of strings`,
		write("mps: 5\n"):                          `mps (line 1): want a mapping of keys, got "5"`,
		write("details:\n  retention: [1, 2]\n"):   `details.retention (line 2): a list is not a duration`,
	}
	for path, want := range cases {
		_, err := Load(path, env(nil))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v (want one line naming %q)", path, err, want)
		}
	}
	if _, err := Load("", env(map[string]string{"TENCENTCLOUD_SECRET_KEY_FILE": "/nonexistent/key"})); err == nil ||
		!strings.Contains(err.Error(), "TENCENTCLOUD_SECRET_KEY_FILE") {
		t.Errorf("missing secret file: %v", err)
	}

	cfg := Default()
	cfg.DatabaseURL = "postgres://u:hunter2@h/db"
	cfg.MPS.Endpoint = "mps.tencentcloudapi.com"
	cfg.MPS.RateLimit = 50000
	cfg.MPS.PageSize = 0
	cfg.Sync.Statuses = []string{"DONE"}
	cfg.Log.Level = "loud"
	err := cfg.Validate(true)
	for _, want := range []string{"mps.endpoint", "https://", "mps.rate_limit (MPS_RATE_LIMIT): 50000 is above the API's 100", "mps.page_size: 0", `"DONE"`, `log.level: "loud"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate leaks the password: %v", err)
	}
	cfg = Default()
	if err := cfg.Validate(false); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("no database: %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", "mps-archiver.example.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("mps: {rate_limit: -1}\nserve: {schedule: 'CRON_TZ='}"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body []byte) {
		p := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p, env(nil))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		_ = cfg.Validate(true)
	})
}

// TestPushInstance: the Pushgateway grouping key instance comes from
// sync.pushgateway_instance, then MPS_ARCHIVER_PUSHGATEWAY_INSTANCE, and
// defaults to the host name; a value that cannot be a label is refused.
func TestPushInstance(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("sync:\n  pushgateway_instance: from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for _, tc := range []struct {
		file string
		env  map[string]string
		want string
	}{
		{"", nil, host},
		{file, nil, "from-file"},
		{file, map[string]string{EnvPushInstance: "from-env"}, "from-env"},
	} {
		cfg, err := Load(tc.file, env(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Sync.PushInstance(); got != tc.want || got == "" {
			t.Errorf("file %q env %v: instance %q, want %q", tc.file, tc.env, got, tc.want)
		}
	}
	cfg := Default()
	cfg.DatabaseURL = "postgres://x@y/z"
	cfg.Sync.PushgatewayInstance = "a\nb"
	if err := cfg.Validate(true); err == nil || !strings.Contains(err.Error(), "sync.pushgateway_instance (MPS_ARCHIVER_PUSHGATEWAY_INSTANCE)") {
		t.Errorf("an instance with a newline: %v", err)
	}
}

// TestFileProblemsNamedWithTheirLine: a wrong value in the config file is
// reported with the file and its line, also when an environment variable
// overrides it (the file is still wrong, and would be used the day the
// variable goes); a wrong value from the environment names the variable.
func TestFileProblemsNamedWithTheirLine(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("database_url: postgres://a@h/d\nmps:\n  rate_limit: 500\n  burst: 7\ndetails:\n  retention: 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{nil, []string{
			"mps.rate_limit (MPS_RATE_LIMIT): 500 is above the API's 100 requests per second", "(config file " + file + ", line 3)",
			"details.retention: 2s is outside 1h..168h", "(config file " + file + ", line 6)"}},
		{map[string]string{"MPS_RATE_LIMIT": "20"}, []string{
			"mps.rate_limit (MPS_RATE_LIMIT): 500 is above", "line 3; the environment or a flag overrides it, but the file is wrong)"}},
		{map[string]string{"MPS_RATE_LIMIT": "900"}, []string{"mps.rate_limit (MPS_RATE_LIMIT): 900 is above"}},
	} {
		cfg, err := Load(file, env(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		err = cfg.Validate(true)
		if err == nil {
			t.Fatalf("%v: no error", tc.env)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q lacks %q", tc.env, err, w)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("multi-line: %q", err)
		}
	}
}

// TestFileValuesJudgedInContext: a file value that is right given what the
// environment sets (a rate limit above the API's for an http:// simulator
// the environment names) is not reported as a file problem.
func TestFileValuesJudgedInContext(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("mps:\n  rate_limit: 10000\ndetails:\n  rate_limit: 10000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file, env(map[string]string{"DATABASE_URL": "postgres://a@h/d", "MPS_ENDPOINT": "http://127.0.0.1:9080"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(true); err != nil {
		t.Fatalf("a valid combination refused: %v", err)
	}
}

// TestFileValueNamedWhateverElseTheEnvironmentSets: a wrong value that came
// from the file is named with its line even when the environment changes
// another setting it is judged with (the endpoint).
func TestFileValueNamedWhateverElseTheEnvironmentSets(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("mps:\n  endpoint: http://127.0.0.1:9080\n  rate_limit: 500\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file, env(map[string]string{"DATABASE_URL": "postgres://a@h/d", "MPS_ENDPOINT": "https://mps.tencentcloudapi.com"}))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate(true)
	if err == nil || !strings.Contains(err.Error(), "500 is above") || !strings.Contains(err.Error(), "(config file "+file+", line 3)") {
		t.Fatalf("%v", err)
	}
}
