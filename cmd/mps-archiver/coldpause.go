//go:build coldpause

package main

import (
	"fmt"
	"os"
	"time"
)

// coldPause, in a binary built with the coldpause tag (the e2e tests'),
// pauses a second between cold-storage steps when
// MPS_ARCHIVER_TEST_PAUSE_BETWEEN_STEPS is set, and says so on stderr:
// the kill -9 test kills the process there.
func coldPause() func(step string, month time.Time) {
	if os.Getenv("MPS_ARCHIVER_TEST_PAUSE_BETWEEN_STEPS") == "" {
		return nil
	}
	return func(step string, month time.Time) {
		fmt.Fprintf(os.Stderr, "cold-step %s %s\n", step, month.Format("2006-01"))
		time.Sleep(time.Second)
	}
}
