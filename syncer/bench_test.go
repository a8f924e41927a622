package syncer_test

import (
	"context"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// BenchmarkColdSync drains 20,000 tasks from the simulator into an empty
// archive over real HTTP and a real PostgreSQL; tasks/s is reported.
func BenchmarkColdSync(b *testing.B) {
	now := time.Now().UTC()
	tasks := generated(20_000, now, nil)
	for b.Loop() {
		b.StopTimer()
		r := newRigB(b, newSim(tasks, simulator.NewClock(now, 0), simulator.Faults{}))
		b.StartTimer()
		res, err := r.syncer.Run(context.Background(), "bench")
		if err != nil || res.Inserted != 20_000 {
			b.Fatalf("%v %+v", err, res)
		}
	}
	b.ReportMetric(float64(20_000*b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkResync drains 20,000 unchanged tasks.
func BenchmarkResync(b *testing.B) {
	now := time.Now().UTC()
	r := newRigB(b, newSim(generated(20_000, now, nil), simulator.NewClock(now, 0), simulator.Faults{}))
	if _, err := r.syncer.Run(context.Background(), "warm"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res, err := r.syncer.Run(context.Background(), "bench")
		if err != nil || res.Inserted+res.Updated != 0 || res.Unchanged < 20_000 {
			b.Fatalf("%v %+v", err, res)
		}
	}
	b.ReportMetric(float64(20_000*b.N)/b.Elapsed().Seconds(), "tasks/s")
}

func newRigB(b *testing.B, sim *simulator.Server) *rig {
	r := newRig(b, sim, nil)
	r.syncer = syncer.New(r.client, r.st, syncer.Config{Partitions: 4}, nil)
	return r
}
