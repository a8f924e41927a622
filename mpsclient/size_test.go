package mpsclient_test

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/mpsclient"
)

func bigDetail(n int) []byte {
	head := `{"Response":{"TaskType":"EditMediaTask","Status":"FINISH","EditMediaTask":{"TaskId":"x","Status":"FINISH","ErrCode":0,"Message":"`
	tail := `"},"RequestId":"r"}}`
	return []byte(head + strings.Repeat("a", n-len(head)-len(tail)) + tail)
}

// TestOversizedAnswersAreNotRead: an answer over the client's limit fails
// with ResponseTooLarge, once (it is not retried); one whose Content-Length
// says so is not read at all, and a chunked one is read only up to the
// limit, never into a buffer that doubled past it.
func TestOversizedAnswersAreNotRead(t *testing.T) {
	body := bigDetail(40 << 20)
	for _, tc := range []struct {
		mode     string
		maxAlloc uint64
	}{
		{"content-length", 2 << 20},
		{"chunked", 3 * uint64(mpsclient.Defaults.MaxResponseBytes)},
	} {
		url, n := countingServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if tc.mode == "content-length" {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			}
			_, _ = w.Write(body)
		})
		c := newClient(t, url, nil)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := c.TaskDetail(context.Background(), mps.SourceMedia, "x")
		runtime.ReadMemStats(&after)
		if mps.ErrorCode(err) != mps.CodeResponseTooLarge || n.Load() != 1 {
			t.Fatalf("%s: %v after %d requests", tc.mode, err, n.Load())
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > tc.maxAlloc {
			t.Errorf("%s: refusing a 40 MiB answer allocated %d MiB, over %d MiB", tc.mode, alloc>>20, tc.maxAlloc>>20)
		}
	}
}
