package mpsclient_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/simulator"
)

const (
	testID  = "AKIDclienttest"
	testKey = "client-test-key-0123456789"
)

var creds = map[string]string{testID: testKey}

func newClient(t *testing.T, endpoint string, mod func(*mpsclient.Config)) *mpsclient.Client {
	t.Helper()
	cfg := mpsclient.Config{
		Endpoint:       endpoint,
		Credential:     common.NewCredential(testID, testKey),
		RateLimit:      1000,
		Burst:          100,
		RequestTimeout: 2 * time.Second,
		MaxAttempts:    4,
		BackoffBase:    time.Millisecond,
		BackoffMax:     5 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := mpsclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// goldenServer answers with the API page's example bodies, after checking
// the official SDK's signature, and records each request body.
func goldenServer(t *testing.T) (string, *[]string) {
	t.Helper()
	var bodies []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := simulator.VerifySignature(r, b, creds, time.Now()); err != nil {
			t.Errorf("signature: %v", err)
		}
		if r.Header.Get("X-TC-Action") != "DescribeTasks" || r.Header.Get("X-TC-Version") != "2019-06-12" || r.Header.Get("X-TC-Language") != "en-US" {
			t.Errorf("headers: %v", r.Header)
		}
		bodies = append(bodies, string(b))
		name := "example1"
		switch {
		case strings.Contains(string(b), `"PROCESSING"`):
			name = "example3"
		case strings.Contains(string(b), `"taskId6"`):
			name = "example2"
		case strings.Contains(string(b), `"FINISH"`):
		default:
			name = ""
		}
		w.Header().Set("Content-Type", "application/json")
		if name == "" {
			_, _ = w.Write([]byte(`{"Response":{"TotalCount":0,"TaskSet":[],"ScrollToken":"","RequestId":"empty"}}`))
			return
		}
		out, err := os.ReadFile(filepath.Join("..", "mps", "testdata", "spec", name+".response.json"))
		if err != nil {
			t.Error(err)
		}
		_, _ = w.Write(out)
	}))
	t.Cleanup(hs.Close)
	return hs.URL, &bodies
}

func TestGoldenSpecExamples(t *testing.T) {
	t.Parallel()
	url, bodies := goldenServer(t)
	c := newClient(t, url, func(c *mpsclient.Config) { c.PageSize = 5 })
	ctx := context.Background()

	p1, err := c.ListTasks(ctx, mps.Query{Status: mps.StatusFinish, ScrollToken: ""})
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Tasks) != 5 || p1.ScrollToken != "taskId6" || *p1.TotalCount != 12 || p1.RequestID != "46311b39-10ce-47eb-b2b6-7ce82bb4476d" {
		t.Fatalf("page 1: %+v", p1)
	}
	p2, err := c.ListTasks(ctx, mps.Query{Status: mps.StatusFinish, ScrollToken: p1.ScrollToken})
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.Tasks) != 1 || p2.Tasks[0].TaskID != "taskId6" || p2.ScrollToken != "" {
		t.Fatalf("page 2: %+v", p2)
	}
	p3, err := c.ListTasks(ctx, mps.Query{Status: mps.StatusProcessing, ScrollToken: ""})
	if err != nil {
		t.Fatal(err)
	}
	if len(p3.Tasks) != 1 || p3.Tasks[0].TaskID != "taskId7" || !p3.Tasks[0].FinishTime.IsZero() ||
		!p3.Tasks[0].BeginProcessTime.Equal(time.Date(2018, 12, 27, 13, 57, 15, 0, time.UTC)) {
		t.Fatalf("page 3: %+v", p3.Tasks)
	}
	want := []string{
		`{"Status":"FINISH","Limit":5}`,
		`{"Status":"FINISH","Limit":5,"ScrollToken":"taskId6"}`,
		`{"Status":"PROCESSING","Limit":5}`,
	}
	for i, b := range *bodies {
		if b != want[i] {
			t.Errorf("request %d body %s, want %s", i, b, want[i])
		}
	}
}

// faultServer answers the first n requests with fail, then delegates.
func countingServer(t *testing.T, handler func(n int64, w http.ResponseWriter, r *http.Request)) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler(n.Add(1), w, r)
	}))
	t.Cleanup(hs.Close)
	return hs.URL, &n
}

const okPage = `{"Response":{"TotalCount":0,"TaskSet":[],"ScrollToken":"","RequestId":"ok"}}`

func errorBody(code string) string {
	return `{"Response":{"Error":{"Code":"` + code + `","Message":"boom"},"RequestId":"req-` + code + `"}}`
}

func TestTransientFailuresAreRetried(t *testing.T) {
	t.Parallel()
	failures := map[string]func(w http.ResponseWriter){
		"RequestLimitExceeded.UinLimitExceeded": func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(errorBody("RequestLimitExceeded.UinLimitExceeded")))
		},
		"InternalError.DbError": func(w http.ResponseWriter) { _, _ = w.Write([]byte(errorBody("InternalError.DbError"))) },
		"ServiceUnavailable":    func(w http.ResponseWriter) { _, _ = w.Write([]byte(errorBody("ServiceUnavailable"))) },
		"ResourceUnavailable":   func(w http.ResponseWriter) { _, _ = w.Write([]byte(errorBody("ResourceUnavailable"))) },
		"html 502": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			_, _ = w.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
		},
		"truncated":   func(w http.ResponseWriter) { _, _ = w.Write([]byte(okPage[:30])) },
		"wrong shape": func(w http.ResponseWriter) { _, _ = w.Write([]byte(`[1,2,3]`)) },
		"reset": func(w http.ResponseWriter) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		},
		"stall": func(w http.ResponseWriter) { time.Sleep(700 * time.Millisecond) },
	}
	for name, fail := range failures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url, n := countingServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
				if n <= 2 {
					fail(w)
					return
				}
				_, _ = w.Write([]byte(okPage))
			})
			var codes []string
			c := newClient(t, url, func(c *mpsclient.Config) {
				c.RequestTimeout = 300 * time.Millisecond
				c.Observe = func(a mpsclient.Attempt) { codes = append(codes, a.Code) }
			})
			if _, err := c.ListTasks(context.Background(), mps.Query{Status: mps.StatusFinish, ScrollToken: ""}); err != nil {
				t.Fatalf("not retried to success: %v (codes %v)", err, codes)
			}
			if n.Load() != 3 || len(codes) != 3 || codes[0] == "" || codes[2] != "" {
				t.Fatalf("%d requests, codes %v", n.Load(), codes)
			}
		})
	}
}

func TestFatalCodesFailAtOnce(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"AuthFailure.SignatureFailure", "AuthFailure.SecretIdNotFound", "FailedOperation.InvalidMpsUser",
		"FailedOperation.UserArrears", "UnauthorizedOperation", "InvalidParameterValue.Limit", "InvalidParameter"} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			url, n := countingServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(errorBody(code))) })
			c := newClient(t, url, nil)
			_, err := c.ListTasks(context.Background(), mps.Query{Status: mps.StatusFinish, ScrollToken: ""})
			var ae *mps.APIError
			if !errors.As(err, &ae) || ae.Code != code || ae.RequestID != "req-"+code || ae.Message != "boom" {
				t.Fatalf("error = %v", err)
			}
			if n.Load() != 1 {
				t.Fatalf("%d requests for a fatal code", n.Load())
			}
			if !strings.Contains(err.Error(), code) || !strings.Contains(err.Error(), "req-"+code) {
				t.Fatalf("error text lacks code or RequestId: %v", err)
			}
		})
	}
}

func TestAttemptsAreBounded(t *testing.T) {
	t.Parallel()
	url, n := countingServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(errorBody("InternalError")))
	})
	c := newClient(t, url, nil)
	_, err := c.ListTasks(context.Background(), mps.Query{Status: mps.StatusFinish, ScrollToken: ""})
	var ae *mps.APIError
	if !errors.As(err, &ae) || ae.Code != "InternalError" || ae.Attempts != 4 || n.Load() != 4 {
		t.Fatalf("err %v after %d requests", err, n.Load())
	}
}

func TestCancelStopsRetries(t *testing.T) {
	t.Parallel()
	url, _ := countingServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(errorBody("InternalError")))
	})
	c := newClient(t, url, func(c *mpsclient.Config) {
		c.BackoffBase, c.BackoffMax, c.MaxAttempts = time.Hour, time.Hour, 10
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.ListTasks(ctx, mps.Query{Status: mps.StatusFinish, ScrollToken: ""})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
}

func TestEachAttemptIsSignedAfresh(t *testing.T) {
	t.Parallel()
	var auths []string
	url, _ := countingServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		auths = append(auths, r.Header.Get("Authorization")+r.Header.Get("X-TC-Timestamp"))
		if n == 1 {
			_, _ = w.Write([]byte(errorBody("RequestLimitExceeded")))
			return
		}
		_, _ = w.Write([]byte(okPage))
	})
	c := newClient(t, url, nil)
	if _, err := c.ListTasks(context.Background(), mps.Query{Status: mps.StatusFinish, ScrollToken: ""}); err != nil {
		t.Fatal(err)
	}
	// A rate-limit answer waits at least a second, so the timestamp, and
	// with it the signature, must differ.
	if len(auths) != 2 || auths[0] == auths[1] {
		t.Fatalf("signatures %v", auths)
	}
}

func TestRateLimiterPacesCalls(t *testing.T) {
	t.Parallel()
	url, _ := countingServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(okPage)) })
	var waited atomic.Int64
	c := newClient(t, url, func(c *mpsclient.Config) {
		c.RateLimit, c.Burst = 20, 1
		c.ObserveWait = func(d time.Duration) { waited.Add(int64(d)) }
	})
	start := time.Now()
	for range 11 {
		if _, err := c.ListTasks(context.Background(), mps.Query{Status: mps.StatusFinish, ScrollToken: ""}); err != nil {
			t.Fatal(err)
		}
	}
	// 11 calls at 20/s with a burst of 1 take at least 10 intervals.
	if el := time.Since(start); el < 450*time.Millisecond || time.Duration(waited.Load()) < 300*time.Millisecond {
		t.Fatalf("11 calls took %s, waited %s", el, time.Duration(waited.Load()))
	}
}

func TestServerTimeFromDateHeader(t *testing.T) {
	t.Parallel()
	url, _ := countingServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Date", "Wed, 27 Dec 2028 13:57:15 GMT")
		_, _ = w.Write([]byte(okPage))
	})
	p, err := newClient(t, url, nil).ListTasks(context.Background(), mps.Query{Status: mps.StatusFinish, ScrollToken: ""})
	if err != nil {
		t.Fatal(err)
	}
	if !p.ServerTime.Equal(time.Date(2028, 12, 27, 13, 57, 15, 0, time.UTC)) {
		t.Fatalf("server time %v", p.ServerTime)
	}
}

func TestParseEndpoint(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://mps.tencentcloudapi.com":       "https mps.tencentcloudapi.com",
		"https://mps.intl.tencentcloudapi.com/": "https mps.intl.tencentcloudapi.com",
		"http://127.0.0.1:9080":                 "http 127.0.0.1:9080",
	} {
		s, h, err := mpsclient.ParseEndpoint(in)
		if err != nil || s+" "+h != want {
			t.Errorf("%s: %s %s %v", in, s, h, err)
		}
	}
	if _, _, err := mpsclient.ParseEndpoint("127.0.0.1:9080"); err == nil || !strings.Contains(err.Error(), "or http://127.0.0.1:9080 for a local simulator") {
		t.Errorf("a host:port without scheme: %v", err)
	}
	for _, bad := range []string{"mps.tencentcloudapi.com", "ftp://x", "https://", "https://user:pw@host", "://x", "user:pw@host:80"} {
		if _, _, err := mpsclient.ParseEndpoint(bad); err == nil {
			t.Errorf("%s accepted", bad)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

// A Tencent error body behind a non-200 status is read for its code: a
// fatal one fails at once with its RequestId, a transient one is retried.
func TestJSONErrorBodyWhateverTheHTTPStatus(t *testing.T) {
	t.Parallel()
	url, n := countingServer(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(errorBody("AuthFailure.SignatureFailure")))
	})
	_, err := newClient(t, url, nil).ListTasks(context.Background(), mps.Query{Status: mps.StatusFinish})
	var ae *mps.APIError
	if !errors.As(err, &ae) || ae.Code != "AuthFailure.SignatureFailure" || ae.RequestID != "req-AuthFailure.SignatureFailure" || n.Load() != 1 {
		t.Fatalf("err %v after %d requests", err, n.Load())
	}

	url, n = countingServer(t, func(k int64, w http.ResponseWriter, _ *http.Request) {
		if k == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(errorBody("InternalError")))
			return
		}
		_, _ = w.Write([]byte(okPage))
	})
	if _, err := newClient(t, url, nil).ListTasks(context.Background(), mps.Query{Status: mps.StatusFinish}); err != nil || n.Load() != 2 {
		t.Fatalf("err %v after %d requests", err, n.Load())
	}
}

// DescribeTaskDetail goes through the simulator with real signatures, on a
// limiter of its own; a task past the detail retention is gone.
func TestTaskDetailThroughTheSimulator(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	mk := func(id, typ string, subs []string, age time.Duration) *simulator.Task {
		c := now.Add(-age)
		return &simulator.Task{ID: id, Type: typ, SubTaskTypes: subs, Create: c.UnixNano(), Begin: c.Add(time.Minute).UnixNano(), Finish: c.Add(2 * time.Minute).UnixNano()}
	}
	sim := simulator.New(simulator.Config{Credentials: creds, Clock: simulator.NewClock(now, 0), DetailRetention: 72 * time.Hour}, []*simulator.Task{
		mk("wf", "WorkflowTask", []string{"action-trans", "action-AIRecognition"}, time.Hour),
		mk("live", "LiveProcessTask", []string{"AiRecognition"}, time.Hour),
		mk("old", "WorkflowTask", []string{"Transcode"}, 100*time.Hour),
	})
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	var attempts []mpsclient.Attempt
	var mu sync.Mutex
	c := newClient(t, hs.URL, func(cfg *mpsclient.Config) {
		cfg.Observe = func(a mpsclient.Attempt) { mu.Lock(); attempts = append(attempts, a); mu.Unlock() }
	})
	d, err := c.TaskDetail(context.Background(), mps.SourceMedia, "wf")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != mps.StatusFinish || d.TaskType != "WorkflowTask" || !d.FinishTime.Equal(now.Add(-time.Hour+2*time.Minute)) || d.RequestID == "" {
		t.Fatalf("detail %+v", d)
	}
	if lt := d.ListTask(); strings.Join(lt.SubTaskTypes, ",") != "Transcode,AiRecognition" || lt.TaskType != "WorkflowTask" {
		t.Fatalf("list task %+v", lt)
	}
	if d, err := c.TaskDetail(context.Background(), mps.SourceMedia, "live"); err != nil || d.ListTask().TaskType != "LiveProcessTask" {
		t.Fatalf("live: %+v %v", d, err)
	}
	_, err = c.TaskDetail(context.Background(), mps.SourceMedia, "old")
	if !mps.Gone(mps.ErrorCode(err)) || !strings.HasPrefix(err.Error(), "DescribeTaskDetail failed: ResourceNotFound") {
		t.Fatalf("a task past the detail retention: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 3 || attempts[0].Action != mps.ActionDescribeTaskDetail {
		t.Fatalf("attempts %+v", attempts)
	}
}

// A wrong endpoint's 404 (or another non-API 4xx) is a configuration
// error: one request, no retries.
func TestWrongEndpointFailsAtOnce(t *testing.T) {
	t.Parallel()
	url, n := countingServer(t, func(_ int64, w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	_, err := newClient(t, url, nil).ListTasks(context.Background(), mps.Query{Status: mps.StatusFinish})
	if mps.ErrorCode(err) != mps.CodeEndpointError || n.Load() != 1 || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("err %v after %d requests", err, n.Load())
	}
	// A 429 is a rate limit: retried.
	url, n = countingServer(t, func(k int64, w http.ResponseWriter, _ *http.Request) {
		if k == 1 {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = w.Write([]byte(okPage))
	})
	if _, err := newClient(t, url, nil).ListTasks(context.Background(), mps.Query{Status: mps.StatusFinish}); err != nil || n.Load() != 2 {
		t.Fatalf("429: err %v after %d requests", err, n.Load())
	}
}
