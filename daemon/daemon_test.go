package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/metrics"
	"github.com/mps-archiver/mps-archiver/syncer"
)

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"*/5 * * * *", "0 */5 * * * *", "@every 10m", "@hourly", "CRON_TZ=Asia/Shanghai 0 3 * * *", "TZ=UTC 0 3 * * *",
		"*/59 * * * *", "0 0 */23 * * *", "0 1-20/2 * * *"} {
		if _, err := ParseSchedule(ok, ""); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "61 * * * *", "* * *", "CRON_TZ=", "CRON_TZ=Nowhere/City 0 * * * *", "@every -1s", "@fortnightly", "0 0 30 2 *",
		"*/61 * * * *", "*/60 * * * *", "0 */24 * * *", "*/0 * * * *", "*/90 * * * * *", "TZ=UTC 5-50/70 * * * *"} {
		if _, err := ParseSchedule(bad, ""); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseSchedule("0 3 * * *", "Mars/Olympus"); err == nil || !strings.Contains(err.Error(), "time_zone") {
		t.Errorf("bad time zone: %v", err)
	}
	s, err := ParseSchedule("0 3 * * *", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	next := s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if !next.Equal(time.Date(2026, 1, 1, 19, 0, 0, 0, time.UTC)) {
		t.Errorf("03:00 Shanghai is 19:00 UTC, got %v", next.UTC())
	}
}

type runnerFunc func(ctx context.Context, trigger string) (syncer.Result, error)

func (f runnerFunc) Run(ctx context.Context, trigger string) (syncer.Result, error) {
	return f(ctx, trigger)
}

type healthy struct{ err error }

func (h healthy) Ping(context.Context) error        { return h.err }
func (h healthy) CheckSchema(context.Context) error { return nil }

// TestPanicDoesNotStopTheSchedule: a run that panics is recovered, and the
// next tick runs again (Recover innermost, inside SkipIfStillRunning).
func TestPanicDoesNotStopTheSchedule(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	r := runnerFunc(func(ctx context.Context, trigger string) (syncer.Result, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return syncer.Result{}, nil
	})
	svc, err := New(Config{Schedule: "* * * * * *"}, r, healthy{}, metrics.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if calls.Load() < 3 {
		t.Fatalf("%d calls: the schedule stopped after a panic", calls.Load())
	}
}

func TestReadinessAndStopTwice(t *testing.T) {
	t.Parallel()
	h := &healthy{}
	r := runnerFunc(func(ctx context.Context, trigger string) (syncer.Result, error) {
		return syncer.Result{}, syncer.ErrLocked
	})
	m := metrics.New()
	svc, err := New(Config{Schedule: "@every 1h", Listen: "127.0.0.1:0", RunOnStart: true}, r, h, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	url := "http://" + svc.Addr().String()
	resp, err := http.Get(url + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	h.err = errors.New("connection refused")
	svc2, _ := New(Config{Schedule: "@every 1h", Listen: "127.0.0.1:0"}, r, healthy{err: errors.New("connection refused")}, metrics.New(), slog.New(slog.DiscardHandler))
	if err := svc2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get("http://" + svc2.Addr().String() + "/readyz")
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("readyz with the database down: %v %v", resp, err)
	}
	resp.Body.Close()
	svc.Stop()
	svc.Stop()
	svc2.Stop()
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("HTTP still served after Stop")
	}
}

func TestFallingBehindIsLoud(t *testing.T) {
	t.Parallel()
	var buf syncBuf
	m := metrics.New()
	m.SetLastSuccess(time.Now().Add(-150 * time.Hour))
	r := runnerFunc(func(ctx context.Context, trigger string) (syncer.Result, error) {
		return syncer.Result{}, errors.New("database unavailable")
	})
	svc, err := New(Config{Schedule: "@every 1h", RunOnStart: true}, r, healthy{}, m, slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "falling behind") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	svc.Stop()
	if !strings.Contains(buf.String(), `"retention_headroom_hours":17.99`) {
		t.Fatalf("no falling-behind error with 18 h of headroom:\n%s", buf.String())
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A tick skipped because this process is still syncing counts as a skipped
// run in both metric families, as a lock-skipped one does.
func TestSkippedTicksAgree(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.SkippedBusy()
	m.ObserveRun(syncer.Result{}, syncer.ErrLocked)
	got := map[string]float64{}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range s.GetLabel() {
				key += "," + l.GetValue()
			}
			got[key] = s.GetCounter().GetValue()
		}
	}
	if got["mps_archiver_sync_runs_total,skipped"] != 2 || got["mps_archiver_runs_skipped_total,busy"] != 1 || got["mps_archiver_runs_skipped_total,locked"] != 1 {
		t.Fatalf("%v", got)
	}
}
