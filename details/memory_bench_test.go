package details_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// largeDetailJSON is a DescribeTaskDetail Response of about size bytes:
// full-text speech recognition with many segments.
func largeDetailJSON(id string, size int) []byte {
	var b strings.Builder
	b.WriteString(`{"TaskType":"WorkflowTask","Status":"FINISH","TaskNotifyConfig":{"NotifyKey":"` + simulator.NotifyKey + `"},` +
		`"WorkflowTask":{"TaskId":"` + id + `","Status":"FINISH","ErrCode":0,"AiRecognitionResultSet":[{"Type":"AsrFullTextRecognition",` +
		`"AsrFullTextTask":{"Status":"SUCCESS","ErrCodeExt":"","Output":{"SegmentSet":[`)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"Confidence":0.97,"StartTimeOffset":%d.5,"EndTimeOffset":%d.9,"Text":"segment %d of the recognised speech, as long as a sentence usually is"}`, i, i+1, i)
	}
	b.WriteString(`]}}}]}}`)
	return []byte(b.String())
}

// peakHeap samples the live heap every millisecond until stop is called,
// which returns the peak in bytes above the heap when it started (after a
// GC): what the work added, not the simulator's own tasks.
func peakHeap() (stop func() uint64) {
	runtime.GC()
	s0 := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s0)
	base := s0[0].Value.Uint64()
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() - min(base, peak.Load()) }
}

// BenchmarkLargeDetailsPeakHeap: four workers read 16 details of 10 MiB
// each through the real client over HTTP; it reports the peak live heap
// (sampled every millisecond with garbage collected at once) above what the
// process held before (the in-process simulator's copies of
// the details among it).
// Measured in docs/operations.md; the pod's limit is 128 MiB.
func BenchmarkLargeDetailsPeakHeap(b *testing.B) {
	now := time.Now().UTC()
	sc := &simulator.Scenario{}
	for i := range 16 {
		id := fmt.Sprintf("large-%02d", i)
		sc.Tasks = append(sc.Tasks, simulator.ScenarioTask{TaskId: id, TaskType: "WorkflowTask", SubTaskTypes: []string{"AiRecognition"},
			Create: "-2h", Begin: "-90m", Finish: "-1h", Detail: largeDetailJSON(id, 10<<20)})
	}
	tasks, err := sc.Build(now)
	if err != nil {
		b.Fatal(err)
	}
	// A low GC percent makes the sampled heap the live heap (garbage is
	// collected almost at once): what a memory limit must hold.
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	var peak uint64
	for b.Loop() {
		b.StopTimer()
		r := newRig(b, simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: simulator.NewClock(now, 0)}, tasks))
		s := syncer.New(r.client, r.st, syncer.Config{Details: syncer.DetailsAll, DetailRetention: 72 * time.Hour}, nil)
		if _, err := s.Run(context.Background(), "bench"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		stop := peakHeap()
		f := details.New(r.client, r.st, details.Config{Workers: 4}, nil)
		done := make(chan struct{})
		close(done)
		if err := f.Run(context.Background(), done); err != nil {
			b.Fatal(err)
		}
		peak = max(peak, stop())
		if st := f.Stats(); st.Fetched != 16 {
			b.Fatalf("stats %+v", st)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "live-peak-MiB")
}
