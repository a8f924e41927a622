package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/metrics"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// TestStopDoesNotHideAFailure: a run that failed for its own reason (the
// database went away) and returned after a stop's grace period ran out is
// a failure, logged and counted as one; a run the stop cancelled is a
// routine stop, a warning.
func TestStopDoesNotHideAFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  func(ctx context.Context) error
		want string
	}{
		{"own failure", func(context.Context) error {
			return fmt.Errorf("record run 9 outcome: %w", fmt.Errorf("%w: dial tcp: connection refused", storage.ErrUnavailable))
		}, `"msg":"sync failed"`},
		{"cancelled by the stop", func(ctx context.Context) error { return context.Cause(ctx) }, `"msg":"sync stopped before it finished`},
	} {
		var buf syncBuf
		started := make(chan struct{})
		r := runnerFunc(func(ctx context.Context, trigger string) (syncer.Result, error) {
			close(started)
			<-ctx.Done() // the grace period has run out
			return syncer.Result{Progress: syncer.Progress{RunID: 9}, Kind: syncer.KindFull}, tc.err(ctx)
		})
		svc, err := New(Config{Schedule: "@every 1h", RunOnStart: true, ShutdownGrace: 50 * time.Millisecond}, r, healthy{}, metrics.New(),
			slog.New(slog.NewJSONHandler(&buf, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-started
		svc.Stop()
		if out := buf.String(); !strings.Contains(out, tc.want) {
			t.Errorf("%s: want %s in\n%s", tc.name, tc.want, out)
		}
	}
}

// TestNetworkHints: each kind of network failure gets its own first step.
func TestNetworkHints(t *testing.T) {
	t.Parallel()
	for msg, want := range map[string]string{
		"tls: failed to verify certificate: x509: certificate signed by unknown authority": "TLS certificate is not trusted",
		"http: server gave HTTP response to HTTPS client":                                  "speaks plain HTTP",
		"read tcp 10.0.0.1:443: connection reset by peer":                                  "the connection to MPS_ENDPOINT failed",
		"dial tcp 127.0.0.1:9: connect: connection refused":                                "nothing answers at MPS_ENDPOINT",
	} {
		if h := Hint(&mps.APIError{Code: mps.CodeNetworkError, Message: msg}); !strings.Contains(h, want) {
			t.Errorf("%s: hint %q", msg, h)
		}
	}
}
