package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// BenchmarkWritePage upserts 100-task pages of new tasks into a growing
// archive: the per-page database cost of a cold sync.
func BenchmarkWritePage(b *testing.B) {
	url := pgtest.NewDB(b)
	st := open(b, url)
	run, err := st.StartRun(context.Background(), syncer.StartRunParams{Trigger: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	created := time.Now().UTC().Truncate(time.Second)
	n := 0
	for b.Loop() {
		page := make([]mps.Task, 100)
		for i := range page {
			page[i] = task(fmt.Sprintf("1250000000-WorkflowTask-%032x", n), created, "action-trans")
			n++
		}
		if _, err := st.WritePage(context.Background(), syncer.WritePageParams{RunID: run.RunID, Status: mps.StatusFinish, Tasks: page}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tasks/s")
}
