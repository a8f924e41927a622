package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// TestFailedRunLeadsWithItsCause: a failed run's line starts with the
// error and what to check, and carries no zeroed counters.
func TestFailedRunLeadsWithItsCause(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		hint string
	}{
		{fmt.Errorf("fetch page 1 of WAITING: %w", &mps.APIError{Action: mps.ActionDescribeTasks, Code: mps.CodeNetworkError,
			Message: "dial tcp 127.0.0.1:9080: connect: connection refused", Attempts: 6}), "nothing answers at MPS_ENDPOINT"},
		{fmt.Errorf("record run start: %w", fmt.Errorf("%w: connection refused", storage.ErrUnavailable)), "check DATABASE_URL"},
		{&mps.APIError{Code: "AuthFailure.SecretIdNotFound"}, "check TENCENTCLOUD_SECRET_ID"},
		{&mps.APIError{Code: "UnauthorizedOperation"}, "grant mps:DescribeTasks"},
	} {
		var buf bytes.Buffer
		LogResult(slog.New(slog.NewJSONHandler(&buf, nil)), syncer.Result{Progress: syncer.Progress{RunID: 7}, Trigger: "schedule", Kind: syncer.KindFull,
			Duration: 30 * time.Millisecond}, tc.err)
		line := buf.String()
		if !strings.Contains(line, `"msg":"sync failed","error":`) || !strings.Contains(line, tc.hint) {
			t.Errorf("%v: %s", tc.err, line)
		}
		if strings.Index(line, `"hint"`) > strings.Index(line, `"run_id"`) {
			t.Errorf("the hint comes after the counters: %s", line)
		}
		for _, zero := range []string{`"pages":0`, `"tasks_seen":0`, `"list_requests":0`} {
			if strings.Contains(line, zero) {
				t.Errorf("zeroed counter %s in %s", zero, line)
			}
		}
	}
}
