package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type eventSource struct {
	gap, expired time.Time
	err          error
}

func (s *eventSource) LastEvents(context.Context) (time.Time, time.Time, error) {
	return s.gap, s.expired, s.err
}

// TestWatchEvents: the times of the last gap and expiry are exported as
// read from the archive, and not at all until a read succeeds (a 0 would
// say "never" and end an alert).
func TestWatchEvents(t *testing.T) {
	t.Parallel()
	m := New()
	src := &eventSource{err: errors.New("database unavailable")}
	m.WatchEvents(src)
	if got := gauges(t, m.Registry); len(got) != 0 {
		t.Fatalf("before a successful read: %v", got)
	}
	src.gap, src.err = time.Unix(1_800_000_000, 0), nil
	got := gauges(t, m.Registry)
	if len(got) != 2 || got["mps_archiver_last_coverage_gap_timestamp_seconds"] != 1.8e9 || got["mps_archiver_last_detail_expired_timestamp_seconds"] != 0 {
		t.Fatalf("after a read: %v", got)
	}
}

// gauges are the event gauges a registry exports, by name.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if n := mf.GetName(); strings.HasPrefix(n, "mps_archiver_last_") && strings.HasSuffix(n, "_timestamp_seconds") && n != "mps_archiver_last_success_timestamp_seconds" {
			out[n] = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return out
}

// TestPushGroupsByInstance: a push names its group by job and instance, so
// that instances pushing to one Pushgateway do not replace each other.
func TestPushGroupsByInstance(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var paths []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
	}))
	defer hs.Close()
	m := New()
	for _, instance := range []string{"cron-a", "cron-b"} {
		if err := m.Push(context.Background(), hs.URL, PushJob, instance); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "PUT /metrics/job/mps-archiver-sync/instance/cron-a,PUT /metrics/job/mps-archiver-sync/instance/cron-b"; strings.Join(paths, ",") != want {
		t.Errorf("pushed to %v, want %s", paths, want)
	}
}
