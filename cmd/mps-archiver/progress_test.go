package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
)

type fixedBacklog struct{ b details.Backlog }

func (f fixedBacklog) DetailBacklog(context.Context) (details.Backlog, error) { return f.b, nil }

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestDetailProgress: while outcomes are read, logs get a progress line
// with what is left, and a terminal a line that updates in place and is
// cleared at the end.
func TestDetailProgress(t *testing.T) {
	t.Parallel()
	f := details.New(nil, nil, details.Config{}, nil)
	q := fixedBacklog{details.Backlog{Pending: 1234}}

	var logs lockedBuffer
	stop := detailProgress(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)), q, f, time.Second, nil)
	waitFor(t, func() bool { return strings.Contains(logs.String(), "msg=\"reading outcomes\" read=0 queued=1234") })
	stop()

	var tty lockedBuffer
	stop = detailProgress(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)), q, f, time.Second, &tty)
	waitFor(t, func() bool { return strings.Contains(tty.String(), "\routcomes: 0 read, 1234 queued") })
	stop()
	if out := tty.String(); !strings.HasSuffix(out, "\r") || strings.Contains(out, "\n") {
		t.Fatalf("the terminal line was not updated in place and cleared: %q", out)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
