package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
)

// backlogReader is the archive's view of the detail queue.
type backlogReader interface {
	DetailBacklog(ctx context.Context) (details.Backlog, error)
}

// detailProgress says what outcome capture is doing until ctx ends: an info
// line every logEvery while there is a backlog (what was read, what is left,
// and at the pace so far how long it will take), and, when tty is set, a
// line that updates in place every second. It returns a function that
// clears the in-place line and waits for it to stop.
func detailProgress(ctx context.Context, log *slog.Logger, q backlogReader, f *details.Fetcher, logEvery time.Duration, tty io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		began, fetched0 := time.Now(), f.Stats().Fetched+f.Stats().Expired
		lastLog, width := time.Now(), 0
		for {
			select {
			case <-ctx.Done():
				if tty != nil && width > 0 {
					fmt.Fprintf(tty, "\r%*s\r", width, "")
				}
				return
			case <-tick.C:
			}
			if tty == nil && time.Since(lastLog) < logEvery {
				continue
			}
			b, err := q.DetailBacklog(ctx)
			if err != nil {
				continue
			}
			st := f.Stats()
			read := st.Fetched + st.Expired - fetched0
			rate := float64(read) / time.Since(began).Seconds()
			left := "unknown"
			if rate > 0 {
				left = (time.Duration(float64(b.Pending)/rate) * time.Second).Round(time.Second).String()
			}
			if tty != nil {
				// Under 80 columns: a wrapped line cannot be rewritten in place.
				line := fmt.Sprintf("outcomes: %d read, %d queued, %.0f/s, ~%s left (Ctrl-C is safe)", read, b.Pending, rate, left)
				if r := []rune(line); len(r) > 79 {
					line = string(r[:79])
				}
				fmt.Fprintf(tty, "\r%-*s", width, line)
				width = max(width, len(line))
			}
			// On a terminal the line above says it; log lines would break it.
			if tty == nil && time.Since(lastLog) >= logEvery && b.Pending > 0 {
				lastLog = time.Now()
				attrs := []any{"read", read, "queued", b.Pending, "per_second", fmt.Sprintf("%.1f", rate), "estimated_left", left}
				if fl, failing := f.Failing(); failing {
					attrs = append(attrs, "failing_code", fl.Code, "hint", fl.Hint)
				}
				log.Info("reading outcomes", attrs...)
			}
		}
	}()
	return func() { cancel(); <-done }
}
