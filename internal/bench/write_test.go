package bench

import (
	"bytes"
	"strings"
	"testing"
)

// TestWriteJudgesTargetsOnlyAtSize: a small run's ratios are shown but not
// judged (fixed costs dominate them); a run of TargetTasks or more says of
// each target whether it was met.
func TestWriteJudgesTargetsOnlyAtSize(t *testing.T) {
	t.Parallel()
	ratios := Ratios{SyncVsCopy: 0.7, SyncVsNaive: 4, RateLimitedVsLimit: 0.99, PartitionedVsCursor: 3.5}
	var small, large bytes.Buffer
	Write(&small, &Report{Results: []Result{{Name: "cold sync", Tasks: 1000}}, Ratios: ratios})
	Write(&large, &Report{Results: []Result{{Name: "cold sync", Tasks: TargetTasks}}, Ratios: ratios})
	if s := small.String(); strings.Contains(s, "MISSED") || strings.Count(s, "not judged") != 4 || !strings.Contains(s, "Run with --tasks 100000") {
		t.Errorf("small run:\n%s", s)
	}
	if s := large.String(); strings.Count(s, ": met)") != 3 || !strings.Contains(s, "(target >= 10x: MISSED)") || strings.Contains(s, "not judged") {
		t.Errorf("large run:\n%s", s)
	}
}
