package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/simulator"
)

// TestDebugLogExplainsARun: at debug, each drained status and each retry is
// a line (code, RequestId, attempt, backoff); at info the run is one line.
func TestDebugLogExplainsARun(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(1500, now, nil), simulator.NewClock(now, 0), simulator.Faults{Seed: 3, ErrorRate: 0.3, ErrorCodes: []string{"InternalError"}})
	db := migrated(t)
	env := baseEnv(a, db)
	env["LOG_LEVEL"] = "debug"
	r := run(t, env, "sync")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	drained, retries := map[string]bool{}, 0
	for _, line := range strings.Split(r.stderr, "\n") {
		switch {
		case strings.Contains(line, `"msg":"status drained"`):
			for _, st := range []string{"WAITING", "PROCESSING", "FINISH"} {
				if strings.Contains(line, `"status":"`+st+`"`) && strings.Contains(line, `"pages":`) && strings.Contains(line, `"seconds":`) {
					drained[st] = true
				}
			}
		case strings.Contains(line, `"msg":"API call failed; retrying"`):
			if !strings.Contains(line, `"code":"InternalError"`) || !strings.Contains(line, `"request_id":"`) ||
				!strings.Contains(line, `"attempt":`) || !strings.Contains(line, `"backoff_seconds":`) {
				t.Errorf("retry line lacks a field: %s", line)
			}
			retries++
		}
	}
	if len(drained) != 3 || retries == 0 {
		t.Fatalf("drained %v, %d retry lines:\n%s", drained, retries, r.stderr)
	}
	delete(env, "LOG_LEVEL")
	if r := run(t, env, "sync"); r.code != 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("at info a run is one line: exit %d\n%s", r.code, r.stderr)
	}
}

// TestFailureSaidOnce: a failed sync is one line on stderr, not a log line
// and a plain copy of it; a wrong endpoint (HTTP 404) fails at once.
func TestFailureSaidOnce(t *testing.T) {
	t.Parallel()
	requests := 0
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests++
		http.NotFound(w, nil)
	}))
	t.Cleanup(hs.Close)
	db := migrated(t)
	env := baseEnv(&api{url: hs.URL}, db)
	r := run(t, env, "sync")
	if r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "is MPS_ENDPOINT the MPS API?") || requests != 1 {
		t.Fatalf("exit %d after %d requests:\n%s", r.code, requests, r.stderr)
	}
}

// TestReportTypeAndHTMLToStdout: an unknown --type names the known ones;
// --html - writes the page to standard output.
func TestReportTypeAndHTMLToStdout(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(300, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	if r := run(t, env, "sync"); r.code != 0 {
		t.Fatalf("sync: %s", r.stderr)
	}
	r := run(t, env, "report", "--type", "NoSuchType")
	if r.code != 1 || !strings.Contains(r.stderr, `--type "NoSuchType": the archive has no task of that type (it has: EditMediaTask, `) {
		t.Fatalf("unknown type: exit %d: %s", r.code, r.stderr)
	}
	r = run(t, env, "report", "--html", "-")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "<!DOCTYPE html>") || !strings.HasSuffix(r.stdout, "</html>\n") || strings.Count(r.stdout, "<!DOCTYPE") != 1 {
		t.Fatalf("--html -: exit %d, stdout starts %q", r.code, r.stdout[:min(80, len(r.stdout))])
	}
}

// TestDemoKeepKeepsTheDatabase: demo --keep leaves PostgreSQL running for
// the queries it prints, until Ctrl-C, then says how to start it again.
func TestDemoKeepKeepsTheDatabase(t *testing.T) {
	t.Parallel()
	p := start(t, map[string]string{"HOME": t.TempDir()}, "demo", "--duration", "4s", "--keep", "--tasks", "200")
	eventually(t, 2*time.Minute, "the demo to end and keep PostgreSQL running", func() bool {
		return strings.Contains(p.stdout.String(), "PostgreSQL keeps running") || p.exited()
	})
	if p.exited() {
		t.Fatalf("the demo exited:\n%s\n%s", p.stdout.String(), p.stderr.String())
	}
	m := regexp.MustCompile(`psql '([^']+)'`).FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no psql command printed:\n%s", p.stdout.String())
	}
	if n := scalar(t, m[1], `SELECT count(*) FROM tasks`); n == 0 {
		t.Fatal("the kept database has no task")
	}
	p.signal(syscall.SIGINT)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d after Ctrl-C:\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stdout.String(), "Start it again with:") {
		t.Fatalf("no restart command:\n%s", p.stdout.String())
	}
	// What --keep kept, and the page the demo wrote, are the user's; a test
	// leaves nothing behind.
	for _, re := range []string{`its data is kept in (\S+)\.`, `page with charts: (\S+\.html)`} {
		if m := regexp.MustCompile(re).FindStringSubmatch(p.stdout.String()); m != nil {
			if err := os.RemoveAll(m[1]); err != nil {
				t.Errorf("remove %s: %v", m[1], err)
			}
		} else {
			t.Errorf("the demo did not say %s:\n%s", re, p.stdout.String())
		}
	}
}
