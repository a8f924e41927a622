package simulator_test

import (
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// TestArrivalsNeverEnd: a live simulator at the real pace keeps tasks
// arriving however long it runs (a month here), at the configured rate,
// never from its future, and forgets what is long past every window.
func TestArrivalsNeverEnd(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	cfg := simulator.DefaultGenConfig()
	cfg.Tasks, cfg.ArrivalsPerHour, cfg.Horizon = 100, 600, 0
	clock := simulator.NewClock(start, 0)
	s := simulator.New(simulator.Config{Clock: clock, Arrivals: simulator.NewArrivals(cfg, start)}, simulator.Generate(cfg, start))
	for _, after := range []time.Duration{time.Hour, 24 * time.Hour, 30 * 24 * time.Hour} {
		clock.Set(start.Add(after))
		now := clock.Now()
		var lastHour, total int
		for _, tt := range s.Truth() {
			created, err := mps.ParseTime(tt.CreateTime)
			if err != nil || created.After(now) {
				t.Fatalf("after %s: task %s created %s, clock %s (%v)", after, tt.TaskId, tt.CreateTime, now, err)
			}
			if created.After(now.Add(-time.Hour)) {
				lastHour++
			}
			total++
		}
		// 600 an hour, exponentially spaced: well within 450..750.
		if lastHour < 450 || lastHour > 750 {
			t.Fatalf("after %s: %d tasks arrived in the last hour, want about 600", after, lastHour)
		}
		// The window holds at most a week of arrivals (plus the first 100).
		if total > 600*168*11/10+100 {
			t.Fatalf("after %s: %d tasks in the window", after, total)
		}
	}
}
