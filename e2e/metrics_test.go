package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/simulator"
)

var updateInventory = flag.Bool("update-metrics", false, "rewrite deploy/metrics.txt from the live metrics")

// inventoryPath lists every metric family the binary exports, for the
// tests of alert rules and dashboards (which live in modules of their own
// and cannot run the binary): TestMetricsInventory keeps it true.
const inventoryPath = "../deploy/metrics.txt"

// startPushgateway serves a fake Pushgateway for the test's life.
func startPushgateway(t *testing.T) (*pushgateway, string) {
	t.Helper()
	gw := &pushgateway{}
	hs := httptest.NewServer(gw)
	t.Cleanup(hs.Close)
	return gw, hs.URL
}

// pushgateway is a Prometheus Pushgateway's receiving end: it keeps each
// push's method, path and decoded families, and the groups as a real one
// holds them (a PUT replaces the group its path names, a POST the families
// it sends, a DELETE removes the group).
type pushgateway struct {
	mu     sync.Mutex
	pushes []push
	groups map[string][]*dto.MetricFamily // by path: /metrics/job/J/instance/I
}

type push struct {
	method, path string
	families     []*dto.MetricFamily
}

func (g *pushgateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
	var fams []*dto.MetricFamily
	for r.Method != http.MethodDelete {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if !errors.Is(err, io.EOF) {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			break
		}
		fams = append(fams, mf)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pushes = append(g.pushes, push{r.Method, r.URL.Path, fams})
	if g.groups == nil {
		g.groups = map[string][]*dto.MetricFamily{}
	}
	switch r.Method {
	case http.MethodPut:
		g.groups[r.URL.Path] = fams
	case http.MethodPost:
		kept := slices.DeleteFunc(g.groups[r.URL.Path], func(old *dto.MetricFamily) bool {
			return slices.ContainsFunc(fams, func(mf *dto.MetricFamily) bool { return mf.GetName() == old.GetName() })
		})
		g.groups[r.URL.Path] = append(kept, fams...)
	case http.MethodDelete:
		delete(g.groups, r.URL.Path)
	}
	w.WriteHeader(http.StatusOK)
}

// group is what the Pushgateway holds for a path now.
func (g *pushgateway) group(path string) ([]*dto.MetricFamily, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fams, ok := g.groups[path]
	return fams, ok
}

// pushCount is how many requests the Pushgateway received.
func (g *pushgateway) pushCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pushes)
}

// groupPath is where sync pushes as instance.
func groupPath(instance string) string { return "/metrics/job/mps-archiver-sync/instance/" + instance }

func gauge(fams []*dto.MetricFamily, name string) (float64, bool) {
	for _, mf := range fams {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetGauge() != nil {
			return mf.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// inventory is one line per family: name, type, label names.
func inventory(fams []*dto.MetricFamily) map[string]string {
	out := map[string]string{}
	for _, mf := range fams {
		if !strings.HasPrefix(mf.GetName(), "mps_archiver_") {
			continue
		}
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		var names []string
		for l := range labels {
			names = append(names, l)
		}
		sort.Strings(names)
		out[mf.GetName()] = strings.TrimSpace(fmt.Sprintf("%s %s %s", mf.GetName(), strings.ToLower(mf.GetType().String()), strings.Join(names, ",")))
	}
	return out
}

// TestSyncPushesToPushgateway: `sync` with MPS_ARCHIVER_PUSHGATEWAY replaces
// the job's metrics when it ends, its own series only, with the figures the
// cronjob overlay's alerts read; an unreachable Pushgateway is a warning,
// not a failed sync.
func TestSyncPushesToPushgateway(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(300, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	gw, gwURL := startPushgateway(t)
	env := baseEnv(a, db)
	env["MPS_ARCHIVER_PUSHGATEWAY"] = gwURL
	if r := run(t, env, "sync"); r.code != 0 {
		t.Fatalf("sync: %s", r.stderr)
	}
	if len(gw.pushes) != 1 {
		t.Fatalf("%d pushes", len(gw.pushes))
	}
	p := gw.pushes[0]
	host, _ := os.Hostname()
	if p.method != http.MethodPut || p.path != groupPath(host) {
		t.Errorf("pushed by %s to %s, want PUT to %s (the host name is the default instance)", p.method, p.path, groupPath(host))
	}
	for _, mf := range p.families {
		if !strings.HasPrefix(mf.GetName(), "mps_archiver_") {
			t.Errorf("pushed %s, not an mps_archiver_ series", mf.GetName())
		}
	}
	if v, ok := gauge(p.families, "mps_archiver_last_run_failed"); !ok || v != 0 {
		t.Errorf("last_run_failed %v %v", v, ok)
	}
	deadline, ok := gauge(p.families, "mps_archiver_retention_deadline_timestamp_seconds")
	if want := float64(time.Now().Add(168 * time.Hour).Unix()); !ok || deadline < want-600 || deadline > want+60 {
		t.Errorf("retention deadline %v, want about %v", deadline, want)
	}

	env["MPS_ARCHIVER_PUSHGATEWAY"] = "http://127.0.0.1:1"
	r := run(t, env, "sync")
	if r.code != 0 || !strings.Contains(r.stderr, "could not push metrics to the Pushgateway") {
		t.Fatalf("unreachable Pushgateway: exit %d:\n%s", r.code, r.stderr)
	}
	env["MPS_ARCHIVER_PUSHGATEWAY"] = "pushgateway:9091"
	if r := run(t, env, "sync"); r.code != 1 || !strings.Contains(r.stderr, "sync.pushgateway (MPS_ARCHIVER_PUSHGATEWAY)") {
		t.Fatalf("a Pushgateway without scheme: exit %d:\n%s", r.code, r.stderr)
	}
}

// TestPushgatewaySkippedSyncKeepsTheFailure: a sync that finds the run
// lock taken (exit 3) pushes nothing, so the failure the last real run
// pushed stays in the instance's group for the alerts to see, instead of
// being replaced by the skipped run's last_run_failed 0.
func TestPushgatewaySkippedSyncKeepsTheFailure(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(50, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	gw, gwURL := startPushgateway(t)
	env := baseEnv(a, db)
	env["MPS_ARCHIVER_PUSHGATEWAY"] = gwURL
	env["TENCENTCLOUD_SECRET_KEY"] = "not-the-key"
	if r := run(t, env, "sync"); r.code != 1 || gw.pushCount() != 1 {
		t.Fatalf("sync with a wrong key: exit %d, %d pushes: %s", r.code, gw.pushCount(), r.stderr)
	}
	path := gw.pushes[0].path
	fams, ok := gw.group(path)
	if v, found := gauge(fams, "mps_archiver_last_run_failed"); !ok || !found || v != 1 {
		t.Fatalf("after a failed run the group holds last_run_failed %v (%v %v)", v, ok, found)
	}

	conn := pgtest.Conn(t, db)
	if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_lock($1)`, runLockKey); err != nil {
		t.Fatal(err)
	}
	if r := run(t, env, "sync"); r.code != 3 {
		t.Fatalf("locked: exit %d: %s", r.code, r.stderr)
	}
	fams, _ = gw.group(path)
	if v, _ := gauge(fams, "mps_archiver_last_run_failed"); v != 1 || gw.pushCount() != 1 {
		t.Errorf("after a skipped run: last_run_failed %v, %d pushes; want the failure kept and no push", v, gw.pushCount())
	}
}

// TestPushgatewayInstances: each instance (MPS_ARCHIVER_PUSHGATEWAY_INSTANCE,
// by default the host name) pushes to a group of its own, so two CronJobs
// or hosts pushing to one Pushgateway do not replace each other's series.
func TestPushgatewayInstances(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(50, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	failing := migrated(t)
	healthy := migrated(t)
	gw, gwURL := startPushgateway(t)

	envA := baseEnv(a, failing)
	envA["MPS_ARCHIVER_PUSHGATEWAY"] = gwURL
	envA["MPS_ARCHIVER_PUSHGATEWAY_INSTANCE"] = "cron-a"
	envA["TENCENTCLOUD_SECRET_KEY"] = "not-the-key"
	if r := run(t, envA, "sync"); r.code != 1 {
		t.Fatalf("instance a: exit %d: %s", r.code, r.stderr)
	}
	envB := baseEnv(a, healthy)
	envB["MPS_ARCHIVER_PUSHGATEWAY"] = gwURL
	envB["MPS_ARCHIVER_PUSHGATEWAY_INSTANCE"] = "cron-b"
	if r := run(t, envB, "sync"); r.code != 0 {
		t.Fatalf("instance b: exit %d: %s", r.code, r.stderr)
	}
	for instance, want := range map[string]float64{"cron-a": 1, "cron-b": 0} {
		fams, ok := gw.group(groupPath(instance))
		if v, found := gauge(fams, "mps_archiver_last_run_failed"); !ok || !found || v != want {
			t.Errorf("group of %s: last_run_failed %v (group %v, series %v), want %v", instance, v, ok, found, want)
		}
	}

	envB["MPS_ARCHIVER_PUSHGATEWAY_INSTANCE"] = "bad\ninstance"
	if r := run(t, envB, "sync"); r.code != 1 || !strings.Contains(r.stderr, "sync.pushgateway_instance (MPS_ARCHIVER_PUSHGATEWAY_INSTANCE)") {
		t.Errorf("an instance with a newline: exit %d: %s", r.code, r.stderr)
	}
}

// TestPushedEventsOutlivePushes: when the archive last found a coverage gap
// and last lost a detail to expiry are read from the database, so every
// push carries them (each sync's own counters start at zero, and an alert
// on them would end with the next push).
func TestPushedEventsOutlivePushes(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(50, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	pgtest.Exec(t, db, `INSERT INTO coverage_gaps (detected_at, run_id, previous_run_id, gap_start, gap_end)
		VALUES (now() - interval '2 hours', 1, 0, now() - interval '9 days', now() - interval '8 days')`)
	pgtest.Exec(t, db, `INSERT INTO task_details (task_id, fetched_at, outcome) VALUES ('gone-1', now() - interval '3 hours', 'expired')`)
	gap := scalar(t, db, `SELECT extract(epoch FROM max(detected_at))::bigint FROM coverage_gaps`)
	expired := scalar(t, db, `SELECT extract(epoch FROM max(fetched_at))::bigint FROM task_details`)

	gw, gwURL := startPushgateway(t)
	env := baseEnv(a, db)
	env["MPS_ARCHIVER_PUSHGATEWAY"] = gwURL
	env["MPS_ARCHIVER_PUSHGATEWAY_INSTANCE"] = "cron-a"
	for i := range 2 {
		if r := run(t, env, "sync"); r.code != 0 {
			t.Fatalf("sync %d: exit %d: %s", i+1, r.code, r.stderr)
		}
		fams, _ := gw.group(groupPath("cron-a"))
		for name, want := range map[string]int64{
			"mps_archiver_last_coverage_gap_timestamp_seconds":   gap,
			"mps_archiver_last_detail_expired_timestamp_seconds": expired,
		} {
			if v, ok := gauge(fams, name); !ok || int64(v) != want && int64(v) != want-1 {
				t.Errorf("push %d: %s = %v (%v), want %d", i+1, name, v, ok, want)
			}
		}
	}
}

// TestMetricsInventory: the families a live serve exports (after a run that
// captured outcomes) and that sync pushes are those deploy/metrics.txt
// lists. Alert rules and dashboards are checked against that file.
func TestMetricsInventory(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	// Some errors, so that retries are counted too.
	a := newAPI(t, outcomePopulation(300, now), simulator.NewClock(now, 0), simulator.Faults{ErrorRate: 0.05})
	db := migrated(t)
	env := baseEnv(a, db)
	env["MPS_DETAILS_MODE"] = "all"
	env["MPS_USAGE_MODE"], env["MPS_USAGE_RATE_LIMIT"] = "on", "100"
	// Cold months on: their gauges exist only then (nothing is closed here).
	env["MPS_ARCHIVE_KEEP_MONTHS"], env["MPS_ARCHIVE_DESTINATION"] = "120", t.TempDir()
	p := start(t, env, "serve", "--listen", "127.0.0.1:0")
	addr := p.httpAddr(t)
	eventually(t, time.Minute, "a successful run, captured outcomes and read usage", func() bool {
		if scalar(t, db, `SELECT count(*) FROM task_details`) == 0 {
			return false
		}
		// A run's metrics follow its row: wait for them, not the row.
		_, m := get(t, "http://"+addr+"/metrics")
		return strings.Contains(m, "mps_archiver_api_retries_total{") &&
			metric(t, m, `mps_archiver_sync_runs_total{result="succeeded"}`) >= 1 &&
			metric(t, m, `mps_archiver_usage_runs_total{result="succeeded"}`)+metric(t, m, `mps_archiver_usage_runs_total{result="failed"}`) >= 1
	})
	_, body := get(t, "http://"+addr+"/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	served, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var fams []*dto.MetricFamily
	for _, mf := range served {
		fams = append(fams, mf)
	}
	lines := inventory(fams)
	// serve stops first: a run it starts on its schedule (every five
	// minutes) would hold the run lock, and the sync below would skip.
	p.signal(syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("serve exited %d on SIGTERM", code)
	}

	gw, gwURL := startPushgateway(t)
	env["MPS_ARCHIVER_PUSHGATEWAY"] = gwURL
	if r := run(t, env, "sync"); r.code != 0 || len(gw.pushes) != 1 {
		t.Fatalf("sync: exit %d, %d pushes: %s", r.code, len(gw.pushes), r.stderr)
	}
	for name := range inventory(gw.pushes[0].families) {
		if _, ok := lines[name]; !ok {
			t.Errorf("sync pushes %s, which serve does not export", name)
		}
	}
	var b bytes.Buffer
	b.WriteString("# Every metric family mps-archiver exports: name, type, label names.\n")
	b.WriteString("# Generated by `go test ./e2e -run TestMetricsInventory -update-metrics`; alert\n")
	b.WriteString("# rules and dashboards are checked against it.\n")
	var sorted []string
	for _, l := range lines {
		sorted = append(sorted, l)
	}
	slices.Sort(sorted)
	for _, l := range sorted {
		b.WriteString(l + "\n")
	}
	if *updateInventory {
		must(t, os.WriteFile(inventoryPath, b.Bytes(), 0o644))
		return
	}
	want, err := os.ReadFile(inventoryPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != b.String() {
		t.Fatalf("the exported metrics are not those of %s (a renamed metric silently breaks an alert); if the change is meant, run go test ./e2e -run TestMetricsInventory -update-metrics.\nlive:\n%s", inventoryPath, b.String())
	}
}
