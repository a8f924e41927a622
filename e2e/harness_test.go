// Package e2e drives the built mps-archiver binary against the simulator and
// a real PostgreSQL: crash safety, daemon behaviour, hostile configuration
// and secrets. Long forms of the chaos tests run with CHAOS=long.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/simulator"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mps-archiver-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mps-archiver")
	// The coldpause tag builds in the pause between cold-storage steps
	// that TestKillNineAtEachColdStep kills the process in.
	out, err := exec.Command("go", "build", "-tags", "coldpause", "-o", binary, "../cmd/mps-archiver").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build mps-archiver: %v\n%s", err, out)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	// Not deferred: os.Exit would skip it, leaving the binary in /tmp.
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	secretID  = "AKIDe2eTestSecretId77"
	secretKey = "e2e-SECRET-key-3c1f9a5be2d7"
)

// long reports whether the long (chaos) forms were asked for.
func long() bool { return os.Getenv("CHAOS") == "long" }

// api is a simulator behind real HTTP.
type api struct {
	sim *simulator.Server
	url string
}

func newAPI(t *testing.T, tasks []*simulator.Task, clock *simulator.Clock, f simulator.Faults) *api {
	t.Helper()
	sim := simulator.New(simulator.Config{
		Credentials: map[string]string{secretID: secretKey},
		RateLimit:   -1,
		Clock:       clock,
		Faults:      f,
	}, tasks)
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	return &api{sim: sim, url: hs.URL}
}

func generate(n int, now time.Time, mod func(*simulator.GenConfig)) []*simulator.Task {
	cfg := simulator.DefaultGenConfig()
	cfg.Tasks = n
	if mod != nil {
		mod(&cfg)
	}
	return simulator.Generate(cfg, now)
}

// baseEnv is the environment of a binary talking to a and dbURL.
func baseEnv(a *api, dbURL string) map[string]string {
	return map[string]string{
		"DATABASE_URL":            dbURL,
		"TENCENTCLOUD_SECRET_ID":  secretID,
		"TENCENTCLOUD_SECRET_KEY": secretKey,
		"MPS_ENDPOINT":            a.url,
		"MPS_RATE_LIMIT":          "100",
		// Outcome capture is tested on its own (outcomes_test.go); here it
		// would spend each sync's budget reading thousands of details.
		"MPS_DETAILS_MODE": "none",
		// Usage too (usage_test.go): a backfill is 90 requests the
		// request counts here do not expect.
		"MPS_USAGE_MODE": "off",
		// Image tasks too (sources_test.go): the request counts here are
		// DescribeTasks'.
		"MPS_SYNC_SOURCES": "media",
		"LOG_FORMAT":       "json",
		"HOME":             os.TempDir(),
	}
}

func environ(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// result is a finished command.
type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = environ(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// syncBuffer is an io.Writer safe to read while a process writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a running binary.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	stdout *syncBuffer
	done   chan struct{}
	err    error
}

func start(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = environ(env)
	return startCmd(t, cmd)
}

// startCmd starts cmd, its output captured; it is killed when t ends.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, stdout: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("process still running after %s; stderr:\n%s", d, p.stderr.String())
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// logLines decodes the JSON log lines written so far.
func (p *proc) logLines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// httpAddr waits for the "listening" log line and returns its address.
func (p *proc) httpAddr(t *testing.T) string {
	t.Helper()
	var addr string
	eventually(t, 20*time.Second, "the listening log line", func() bool {
		for _, l := range p.logLines() {
			if l["msg"] == "listening" {
				addr, _ = l["addr"].(string)
				return true
			}
		}
		return p.exited()
	})
	if addr == "" {
		t.Fatalf("no address; stderr:\n%s", p.stderr.String())
	}
	return addr
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var metricLine = regexp.MustCompile(`(?m)^([a-z_]+(?:\{[^}]*\})?) ([-0-9.e+]+)$`)

// metric returns the value of the series named exactly name (with labels).
func metric(t *testing.T, body, name string) float64 {
	t.Helper()
	for _, m := range metricLine.FindAllStringSubmatch(body, -1) {
		if m[1] == name {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no series %s in:\n%s", name, body)
	return 0
}

func migrated(t *testing.T) string {
	t.Helper()
	return pgtest.NewDB(t)
}

func scalar(t *testing.T, dbURL, sql string) int64 {
	t.Helper()
	return pgtest.Scalar[int64](t, dbURL, sql)
}
