package mps

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// largeDetail is a DescribeTaskDetail body of about size bytes: a
// WorkflowTask whose full-text speech recognition holds many segments, the
// shape that makes details large.
func largeDetail(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"Response":{"TaskType":"WorkflowTask","Status":"FINISH","CreateTime":"2026-11-30T10:00:00Z","FinishTime":"2026-11-30T10:30:00Z",` +
		`"TaskNotifyConfig":{"NotifyKey":"large-detail-notify-key"},"WorkflowTask":{"TaskId":"big","Status":"FINISH","ErrCode":0,` +
		`"AiRecognitionResultSet":[{"Type":"AsrFullTextRecognition","AsrFullTextTask":{"Status":"SUCCESS","ErrCodeExt":"","Output":{"SegmentSet":[`)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"Confidence":0.97,"StartTimeOffset":%d.5,"EndTimeOffset":%d.9,"Text":"segment %d of the recognised speech, as long as a sentence usually is"}`, i, i+1, i)
	}
	b.WriteString(`]}}}]},"RequestId":"r-large"}}`)
	return []byte(b.String())
}

// TestLargeDetailDecodedOnce: a 10 MiB detail is decided, counted and
// redacted in one decoding, allocating a few times its size, not the
// several full parses (111 MiB of heap at peak) it used to cost.
func TestLargeDetailDecodedOnce(t *testing.T) {
	body := largeDetail(10 << 20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d, err := DecodeTaskDetail("big", body)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("decoding %d bytes allocated %.1f MiB (%.1fx)", len(body), float64(alloc)/(1<<20), float64(alloc)/float64(len(body)))
	if d.Outcome.Result != OutcomeSucceeded || d.Size != len(body) || d.Raw != nil || d.Redactions != 1 {
		t.Fatalf("decoded %+v", struct {
			Result          string
			Size, Redaction int
			Raw             bool
		}{d.Outcome.Result, d.Size, d.Redactions, d.Raw != nil})
	}
	if limit := uint64(6 * len(body)); alloc > limit {
		t.Fatalf("decoding a %d-byte detail allocated %d bytes, over %d", len(body), alloc, limit)
	}
	// A small one is kept whole, redacted.
	small, err := DecodeTaskDetail("small", largeDetail(64<<10))
	if err != nil || small.Raw == nil || strings.Contains(string(small.Raw), "large-detail-notify-key") || !json.Valid(small.Raw) {
		t.Fatalf("small detail: %v %q", err, small.Raw[:min(200, len(small.Raw))])
	}
}

func BenchmarkDecodeLargeDetail(b *testing.B) {
	body := largeDetail(10 << 20)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeTaskDetail("big", body); err != nil {
			b.Fatal(err)
		}
	}
}
