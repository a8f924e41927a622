// Package mpsclient calls MPS DescribeTasks and DescribeTaskDetail through the
// official Tencent Cloud SDK's common client, which signs every request with
// TC3-HMAC-SHA256.
//
// The SDK's own retries are switched off: they retry only the exact code
// RequestLimitExceeded, sleep without honouring the context and re-send the
// same signed request. This package retries itself, re-signing each attempt,
// with capped exponential backoff and full jitter, and paces each action's
// calls through a token bucket of its own (the API limits each action
// separately).
package mpsclient

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Config configures a Client. Zero values take the defaults noted.
type Config struct {
	// Endpoint is the full URL of the API, e.g. https://mps.tencentcloudapi.com
	// or http://127.0.0.1:8080 for a local simulator.
	Endpoint string
	// Credential signs requests. Required.
	Credential common.CredentialIface
	// Region is sent as X-TC-Region when set; DescribeTasks does not need it.
	Region string
	// RateLimit is the client-side ceiling in requests per second (default 20,
	// well under the API's 100 so the account's other users keep headroom);
	// Burst defaults to 1.
	RateLimit float64
	Burst     int
	// DetailRateLimit is DescribeTaskDetail's own ceiling (default 20),
	// with a burst of 1.
	DetailRateLimit float64
	// UsageRateLimit is DescribeUsageData's own ceiling (default 10), with
	// a burst of 1: a backfill is a few hundred calls at most.
	UsageRateLimit float64
	// PageSize is the Limit sent with each call (default and maximum 100).
	PageSize int
	// RequestTimeout bounds each attempt (default 30s).
	RequestTimeout time.Duration
	// MaxAttempts bounds the attempts of one call (default 6).
	MaxAttempts int
	// BackoffBase and BackoffMax shape the retry delay (defaults 250ms, 10s).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxResponseBytes bounds the answer the client reads (default 12 MiB):
	// a larger one is refused with CodeResponseTooLarge before it is
	// decoded (unread when its Content-Length says so), so one runaway
	// detail cannot take the process's memory: its decoded tree costs
	// several times its size.
	MaxResponseBytes int64
	// DecodeBudget bounds the bytes of large answers read and decoded at
	// once across every caller (default 12 MiB): a worker with a 10 MiB
	// detail waits for another's to be decoded, so peak memory does not
	// grow with the number of workers.
	DecodeBudget int64
	// Transport replaces the HTTP transport (tests, proxies).
	Transport http.RoundTripper
	// Observe, when set, is told about every attempt.
	Observe func(Attempt)
	// ObserveWait, when set, is told how long a call waited for the limiter.
	ObserveWait func(time.Duration)
	// OnRetry, when set, is told about every attempt that will be retried.
	OnRetry func(Retry)
}

// Retry describes a failed attempt that will be retried.
type Retry struct {
	Action    string
	Code      string
	RequestID string
	Attempt   int           // the attempt that failed
	Backoff   time.Duration // the pause before the next
}

// Attempt describes one HTTP round trip, for metrics.
type Attempt struct {
	Action   string     // mps.ActionDescribeTasks, ActionDescribeTaskDetail or ActionDescribeUsageData
	Status   mps.Status // the list's status filter (DescribeTasks only)
	Code     string     // "" on success
	Duration time.Duration
}

// Client lists MPS tasks and reads their details. It is safe for concurrent
// use.
type Client struct {
	cfg           Config
	sdk           *common.Client
	limiter       *rate.Limiter
	detailLimiter *rate.Limiter
	usageLimiter  *rate.Limiter
}

// positiveOr is v, or def where v is not positive (unset).
func positiveOr[T int | float64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// ParseEndpoint checks an MPS_ENDPOINT value and returns its scheme and the
// host[/path] the SDK wants.
func ParseEndpoint(raw string) (scheme, hostPath string, err error) {
	if t := strings.TrimSpace(raw); t != "" && !strings.Contains(t, "://") {
		if strings.Contains(t, "@") {
			return "", "", errors.New("endpoint has no scheme, and must not carry credentials: want https://HOST")
		}
		// host[:port] alone: name the two URLs it could mean.
		return "", "", fmt.Errorf("endpoint %q has no scheme: want https://%s for the API, or http://%s for a local simulator", t, t, t)
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", "", fmt.Errorf("endpoint %q is not a URL: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "", fmt.Errorf("endpoint %q must start with https:// (or http:// for a local simulator)", raw)
	}
	if u.Host == "" {
		return "", "", fmt.Errorf("endpoint %q has no host", raw)
	}
	// The API answers at the host's root: a path would be dropped by the
	// SDK, so it is refused rather than ignored.
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.TrimRight(u.Path, "/") != "" {
		return "", "", fmt.Errorf("endpoint %q must be scheme://host[:port] only (the API answers at the root; no path)", u.Redacted())
	}
	return u.Scheme, u.Host, nil
}

// Defaults are what New uses for the settings a Config leaves zero; the
// archiver's configuration defaults are built from them.
var Defaults = Config{
	Endpoint:        mps.DefaultEndpoint,
	RateLimit:       20,
	DetailRateLimit: 20,
	UsageRateLimit:  10,
	Burst:           1,
	PageSize:        mps.MaxLimit,
	RequestTimeout:  30 * time.Second,
	MaxAttempts:     6,
	BackoffBase:     250 * time.Millisecond,
	BackoffMax:      10 * time.Second,

	MaxResponseBytes: 12 << 20,
	DecodeBudget:     12 << 20,
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.Credential == nil {
		return nil, errors.New("mps client: no credential")
	}
	def := Defaults
	cfg.Endpoint = cmp.Or(cfg.Endpoint, def.Endpoint)
	cfg.RateLimit = positiveOr(cfg.RateLimit, def.RateLimit)
	cfg.DetailRateLimit = positiveOr(cfg.DetailRateLimit, def.DetailRateLimit)
	cfg.UsageRateLimit = positiveOr(cfg.UsageRateLimit, def.UsageRateLimit)
	cfg.Burst = positiveOr(cfg.Burst, def.Burst)
	if cfg.PageSize > mps.MaxLimit {
		cfg.PageSize = 0
	}
	cfg.PageSize = positiveOr(cfg.PageSize, def.PageSize)
	cfg.RequestTimeout = positiveOr(cfg.RequestTimeout, def.RequestTimeout)
	cfg.MaxAttempts = positiveOr(cfg.MaxAttempts, def.MaxAttempts)
	cfg.BackoffBase = positiveOr(cfg.BackoffBase, def.BackoffBase)
	cfg.BackoffMax = positiveOr(cfg.BackoffMax, def.BackoffMax)
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = def.MaxResponseBytes
	}
	if cfg.DecodeBudget <= 0 {
		cfg.DecodeBudget = def.DecodeBudget
	}
	scheme, hostPath, err := ParseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}

	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = hostPath
	cpf.HttpProfile.Scheme = strings.ToUpper(scheme)
	cpf.HttpProfile.ReqMethod = "POST"
	// The context deadline governs each attempt; the http.Client timeout is
	// only a backstop.
	cpf.HttpProfile.ReqTimeout = int(math.Ceil(cfg.RequestTimeout.Seconds())) + 5
	cpf.Language = "en-US"
	cpf.NetworkFailureMaxRetries = 0
	cpf.RateLimitExceededMaxRetries = 0
	cpf.DisableRegionBreaker = true

	sdk := (&common.Client{}).Init(cfg.Region)
	sdk.WithCredential(cfg.Credential).WithProfile(cpf)
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		t.IdleConnTimeout = 90 * time.Second
		tr = t
	}
	sdk.WithHttpTransport(captureTransport{next: tr, max: cfg.MaxResponseBytes, budget: cfg.DecodeBudget,
		decoding: semaphore.NewWeighted(cfg.DecodeBudget)})

	return &Client{
		cfg:     cfg,
		sdk:     sdk,
		limiter: rate.NewLimiter(rate.Limit(cfg.RateLimit), cfg.Burst),
		// Details are a steady queue: no burst of their own.
		detailLimiter: rate.NewLimiter(rate.Limit(cfg.DetailRateLimit), 1),
		usageLimiter:  rate.NewLimiter(rate.Limit(cfg.UsageRateLimit), 1),
	}, nil
}

// PageSize is the Limit the client sends.
func (c *Client) PageSize() int { return c.cfg.PageSize }

// ListTasks fetches the page q asks for, from q's source's list.
func (c *Client) ListTasks(ctx context.Context, q mps.Query) (*mps.Page, error) {
	st := string(q.Status)
	limit := uint64(c.cfg.PageSize)
	params := mps.DescribeTasksRequestParams{Status: &st, Limit: &limit}
	if q.ScrollToken != "" {
		params.ScrollToken = &q.ScrollToken
	}
	if !q.Start.IsZero() {
		s := q.Start.UTC().Format(time.RFC3339)
		params.StartTime = &s
	}
	if !q.End.IsZero() {
		e := q.End.UTC().Format(time.RFC3339)
		params.EndTime = &e
	}
	params.SubTaskHasFailed = q.SubTaskHasFailed
	return c.list(ctx, q.Source.Of(), params)
}

// DescribeTasks calls the action with params, retrying transient failures.
func (c *Client) DescribeTasks(ctx context.Context, params mps.DescribeTasksRequestParams) (*mps.Page, error) {
	return c.list(ctx, mps.SourceMedia, params)
}

// list calls src's list action with params, retrying transient failures.
// A record without a TaskType gets the source's, and a source whose
// records carry user input (DescribeImageTasks' Input) has each record
// redacted as a detail is.
func (c *Client) list(ctx context.Context, src mps.Source, params mps.DescribeTasksRequestParams) (*mps.Page, error) {
	var status mps.Status
	if params.Status != nil {
		status = mps.Status(*params.Status)
	}
	var page *mps.Page
	err := c.retry(ctx, c.limiter, func() error {
		req := &describeTasksRequest{BaseRequest: &tchttp.BaseRequest{}, DescribeTasksRequestParams: params}
		resp := &describeTasksResponse{}
		cap, err := c.send(ctx, src.ListAction, status, req.BaseRequest, req, resp, &resp.cap)
		if err == nil && resp.err != nil {
			err = resp.err
		}
		if err == nil && resp.page == nil {
			err = &mps.APIError{Code: mps.CodeMalformedResponse, Message: "empty response"}
		}
		if err = c.finish(src.ListAction, status, cap, err); err != nil {
			return err
		}
		resp.page.ServerTime = cap.date
		mps.AdoptPage(src, resp.page)
		page = resp.page
		return nil
	})
	return page, err
}

// TaskDetail calls the detail action of src (DescribeTaskDetail for the
// zero Source) for one task, retrying transient failures, paced by its own
// limiter. A task the API no longer knows is an *mps.APIError for which
// mps.Gone is true.
func (c *Client) TaskDetail(ctx context.Context, src mps.Source, taskID string) (*mps.TaskDetail, error) {
	src = src.Of()
	var detail *mps.TaskDetail
	err := c.retry(ctx, c.detailLimiter, func() error {
		req := &describeTaskDetailRequest{BaseRequest: &tchttp.BaseRequest{}, DescribeTaskDetailRequestParams: mps.DescribeTaskDetailRequestParams{TaskId: &taskID}}
		resp := &describeTaskDetailResponse{taskID: taskID, src: src}
		cap, err := c.send(ctx, src.DetailAction, "", req.BaseRequest, req, resp, &resp.cap)
		if err == nil && resp.err != nil {
			err = resp.err
		}
		if err == nil && resp.detail == nil {
			err = &mps.APIError{Code: mps.CodeMalformedResponse, Message: "empty response"}
		}
		if err = c.finish(src.DetailAction, "", cap, err); err != nil {
			return err
		}
		resp.detail.ServerTime = cap.date
		detail = resp.detail
		return nil
	})
	return detail, err
}

// UsageData calls DescribeUsageData for q, retrying transient failures,
// paced by its own limiter, and returns the figures of q's days.
func (c *Client) UsageData(ctx context.Context, q mps.UsageQuery) (mps.UsageAnswer, error) {
	var ans mps.UsageAnswer
	err := c.retry(ctx, c.usageLimiter, func() error {
		req := &describeUsageDataRequest{BaseRequest: &tchttp.BaseRequest{}, DescribeUsageDataRequestParams: q.Params()}
		resp := &describeUsageDataResponse{from: q.From, to: q.To}
		cap, err := c.send(ctx, mps.ActionDescribeUsageData, "", req.BaseRequest, req, resp, &resp.cap)
		if err == nil && resp.err != nil {
			err = resp.err
		}
		if err = c.finish(mps.ActionDescribeUsageData, "", cap, err); err != nil {
			return err
		}
		ans = resp.ans
		return nil
	})
	return ans, err
}

// retry makes up to MaxAttempts attempts of one call, each paced by lim and
// re-signed, with backoff after a transient failure.
func (c *Client) retry(ctx context.Context, lim *rate.Limiter, attempt func() error) error {
	var last *mps.APIError
	for n := 1; n <= c.cfg.MaxAttempts; n++ {
		if n > 1 {
			pause := c.backoff(n-1, last.Code)
			if c.cfg.OnRetry != nil {
				c.cfg.OnRetry(Retry{Action: last.Action, Code: last.Code, RequestID: last.RequestID, Attempt: n - 1, Backoff: pause})
			}
			if err := sleep(ctx, pause); err != nil {
				return err
			}
		}
		if err := c.wait(ctx, lim); err != nil {
			return err
		}
		err := attempt()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ae *mps.APIError
		if !errors.As(err, &ae) {
			return err
		}
		ae.Attempts = n
		if !mps.Transient(ae.Code) {
			return ae
		}
		last = ae
	}
	return last
}

func (c *Client) wait(ctx context.Context, lim *rate.Limiter) error {
	start := time.Now()
	if err := lim.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("rate limiter: %w", err)
	}
	if c.cfg.ObserveWait != nil {
		if d := time.Since(start); d > time.Millisecond {
			c.cfg.ObserveWait(d)
		}
	}
	return nil
}

// backoff is full jitter over a capped exponential; a rate-limit answer waits
// at least one token interval so the retry does not hit the same wall.
func (c *Client) backoff(retry int, code string) time.Duration {
	ceil := c.cfg.BackoffBase << min(retry-1, 20)
	if ceil <= 0 || ceil > c.cfg.BackoffMax {
		ceil = c.cfg.BackoffMax
	}
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	if strings.HasPrefix(code, mps.CodeRequestLimitExceeded) {
		d = max(d, time.Second)
	}
	return d
}

// sent is one attempt in flight: its start and what the transport saw.
type sent struct {
	*captured
	began time.Time
}

// send signs and sends one attempt of action under its own deadline. capp
// receives the transport's capture before the SDK parses the body, so the
// response's UnmarshalJSON can read the full body.
func (c *Client) send(ctx context.Context, action string, status mps.Status, base *tchttp.BaseRequest, req tchttp.Request, resp tchttp.Response, capp **captured) (sent, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	c.sdk.InitBaseRequest(&base, mps.Service, mps.Version, action)
	cap := new(captured)
	*capp = cap
	base.SetContext(context.WithValue(actx, captureKey{}, cap))
	began := time.Now()
	err := c.sdk.Send(req, resp)
	// The answer is decoded (the SDK called UnmarshalJSON): its bytes may go.
	cap.done()
	if cap.apiErr != nil {
		// A Tencent error body behind a non-200 status: its code, not the
		// SDK's HttpStatusCodeError, says what went wrong.
		err = cap.apiErr
	}
	if err != nil {
		err = translate(err, actx)
	}
	return sent{captured: cap, began: began}, err
}

// finish labels an attempt's error with its action and reports the attempt.
func (c *Client) finish(action string, status mps.Status, s sent, err error) error {
	var ae *mps.APIError
	if errors.As(err, &ae) {
		ae.Action = action
	}
	if c.cfg.Observe != nil {
		code := ""
		if err != nil {
			if code = mps.ErrorCode(err); code == "" {
				code = "other"
			}
		}
		c.cfg.Observe(Attempt{Action: action, Status: status, Code: code, Duration: time.Since(s.began)})
	}
	return err
}

type captureKey struct{}

// captured is what captureTransport saw of one response.
type captured struct {
	date   time.Time
	body   []byte        // set when the SDK was handed a stub instead
	apiErr *mps.APIError // a Tencent error body on a non-200 answer
	// release gives back the decode budget the body holds (nil: none).
	release func()
}

// done drops the body and gives its decode budget back.
func (c *captured) done() {
	c.body = nil
	if c.release != nil {
		c.release()
		c.release = nil
	}
}

// stubBody is what the SDK parses in place of a large successful page.
var stubBody = []byte(`{"Response":{"RequestId":""}}`)

// captureTransport does two things the SDK cannot be asked to do. It records
// the response's Date header, the API's clock. And it keeps a large 200 body
// for describeTasksResponse, handing the SDK a stub: the SDK scans every
// body four times with a reflection-based decoder before our decoder sees it,
// which was the largest CPU cost of a sync. Small bodies, where every error
// answer falls, and non-200 answers pass through untouched; DecodePage still
// recognises an error body should a large one ever come.
//
// It also bounds what is read: a 200 body above max is refused unread, and
// large bodies are read and decoded within a shared budget of bytes
// (decoding), so that several workers' large details are decoded one after
// another rather than all at once.
type captureTransport struct {
	next     http.RoundTripper
	max      int64
	budget   int64
	decoding *semaphore.Weighted
}

func (t captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	c, ok := req.Context().Value(captureKey{}).(*captured)
	if err != nil || !ok {
		return resp, err
	}
	if d, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
		c.date = d.UTC()
	}
	if resp.StatusCode != http.StatusOK && resp.Header.Get("Content-Encoding") == "" {
		// Keep the body for the SDK, and read a Tencent error from it.
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var ae *mps.APIError
		if _, derr := mps.DecodePage(body); errors.As(derr, &ae) {
			c.apiErr = ae
		} else if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			// Not the API's answer: a wrong MPS_ENDPOINT (a 404 page, a
			// proxy's 403). Retrying cannot help.
			c.apiErr = &mps.APIError{Code: mps.CodeEndpointError,
				Message: fmt.Sprintf("the endpoint answered HTTP %d without an API error body: is MPS_ENDPOINT the MPS API?", resp.StatusCode)}
		}
		return resp, nil
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" ||
		(resp.ContentLength >= 0 && resp.ContentLength < 4096) {
		return resp, nil
	}
	if resp.ContentLength > t.max {
		// Said too large by its own length: not read at all.
		resp.Body.Close()
		c.apiErr = tooLarge(t.max)
		resp.Body = io.NopCloser(bytes.NewReader(stubBody))
		resp.ContentLength = int64(len(stubBody))
		resp.Header.Del("Content-Length")
		return resp, nil
	}
	weight := resp.ContentLength
	if weight < 0 || weight > t.budget {
		weight = t.budget
	}
	if err := t.decoding.Acquire(req.Context(), weight); err != nil {
		resp.Body.Close()
		return nil, err
	}
	c.release = sync.OnceFunc(func() { t.decoding.Release(weight) })
	body, err := readBounded(resp.Body, resp.ContentLength, t.max)
	resp.Body.Close()
	if err != nil {
		c.done()
		return nil, err
	}
	if int64(len(body)) > t.max {
		body = nil
		c.done()
		c.apiErr = tooLarge(t.max)
		resp.Body = io.NopCloser(bytes.NewReader(stubBody))
		resp.ContentLength = int64(len(stubBody))
		resp.Header.Del("Content-Length")
		return resp, nil
	}
	if len(body) < 4096 {
		c.done()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	c.body = body
	resp.Body = io.NopCloser(bytes.NewReader(stubBody))
	resp.ContentLength = int64(len(stubBody))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// tooLarge is the error of an answer above max bytes.
func tooLarge(max int64) *mps.APIError {
	return &mps.APIError{Code: mps.CodeResponseTooLarge,
		Message: fmt.Sprintf("the answer is larger than %d bytes (the client's limit); it was not read", max)}
}

// readBounded reads at most max+1 bytes of r: into one buffer of the
// announced length when there is one, else into a buffer that grows by
// doubling but never past max+1 (a chunked answer over the limit costs at
// most that, not twice it).
func readBounded(r io.Reader, length, max int64) ([]byte, error) {
	limit := max + 1
	size := int64(64 << 10)
	if length >= 0 {
		size = length + 1 // +1: an answer longer than announced is seen
	}
	buf := make([]byte, 0, min(size, limit))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= limit {
				return buf, nil
			}
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// translate turns whatever the SDK returned into an *mps.APIError.
func translate(err error, actx context.Context) error {
	if err == nil {
		return nil
	}
	var ae *mps.APIError
	if errors.As(err, &ae) {
		return ae
	}
	var sdkErr *tcerr.TencentCloudSDKError
	if errors.As(err, &sdkErr) {
		code, msg := sdkErr.Code, sdkErr.Message
		if code == mps.CodeNetworkError {
			if errors.Is(actx.Err(), context.DeadlineExceeded) {
				code, msg = mps.CodeTimeout, "request deadline exceeded"
			} else if cause := errors.Unwrap(sdkErr); cause != nil {
				msg = cause.Error()
			}
		}
		if code == mps.CodeParseJSONError || code == mps.CodeHTTPStatusError {
			// The SDK quotes the whole body; a 5xx HTML page is noise.
			msg = truncateBody(msg)
		}
		return &mps.APIError{Code: code, Message: msg, RequestID: sdkErr.RequestId}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return &mps.APIError{Code: mps.CodeTimeout, Message: err.Error()}
		}
		return &mps.APIError{Code: mps.CodeNetworkError, Message: err.Error()}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &mps.APIError{Code: mps.CodeTimeout, Message: "request deadline exceeded"}
	}
	return &mps.APIError{Code: mps.CodeNetworkError, Message: err.Error()}
}

func truncateBody(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	return msg
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// describeTasksRequest is the typed request the official SDK's product module
// would generate; the embedded params are the JSON body.
type describeTasksRequest struct {
	*tchttp.BaseRequest
	mps.DescribeTasksRequestParams
}

// describeTaskDetailRequest is DescribeTaskDetail's typed request.
type describeTaskDetailRequest struct {
	*tchttp.BaseRequest
	mps.DescribeTaskDetailRequestParams
}

// describeUsageDataRequest is DescribeUsageData's typed request.
type describeUsageDataRequest struct {
	*tchttp.BaseRequest
	mps.DescribeUsageDataRequestParams
}

// describeUsageDataResponse decodes the body with mps.DecodeUsage.
type describeUsageDataResponse struct {
	tchttp.BaseResponse
	cap      *captured
	from, to time.Time
	ans      mps.UsageAnswer
	err      error
}

// UnmarshalJSON is called by the SDK after it has ruled out an error body.
func (r *describeUsageDataResponse) UnmarshalJSON(body []byte) error {
	if r.cap != nil && r.cap.body != nil {
		body = r.cap.body
	}
	r.ans, r.err = mps.DecodeUsage(body, r.from, r.to)
	var ae *mps.APIError
	if r.err != nil && !errors.As(r.err, &ae) {
		r.err = &mps.APIError{Code: mps.CodeMalformedResponse, Message: r.err.Error()}
	}
	return nil
}

// describeTaskDetailResponse decodes the body with mps.DecodeTaskDetail,
// which keeps the whole Response.
type describeTaskDetailResponse struct {
	tchttp.BaseResponse
	cap    *captured
	taskID string
	src    mps.Source
	detail *mps.TaskDetail
	err    error
}

// UnmarshalJSON is called by the SDK after it has ruled out an error body.
func (r *describeTaskDetailResponse) UnmarshalJSON(body []byte) error {
	if r.cap != nil && r.cap.body != nil {
		body = r.cap.body
	}
	r.detail, r.err = mps.DecodeSourceDetail(r.src, r.taskID, body)
	var ae *mps.APIError
	if r.err != nil && !errors.As(r.err, &ae) {
		r.err = &mps.APIError{Code: mps.CodeMalformedResponse, Message: r.err.Error()}
	}
	return nil
}

// describeTasksResponse decodes the body with mps.DecodePage, which keeps each
// record's raw JSON and never fails a page for one odd record.
type describeTasksResponse struct {
	tchttp.BaseResponse
	cap  *captured
	page *mps.Page
	err  error
}

// UnmarshalJSON is called by the SDK after it has ruled out an error body.
// A malformed page is recorded rather than returned, so the SDK does not wrap
// it with a copy of the whole body.
func (r *describeTasksResponse) UnmarshalJSON(body []byte) error {
	if r.cap != nil && r.cap.body != nil {
		body = r.cap.body
	}
	r.page, r.err = mps.DecodePage(body)
	var ae *mps.APIError
	if r.err != nil && !errors.As(r.err, &ae) {
		r.err = &mps.APIError{Code: mps.CodeMalformedResponse, Message: r.err.Error()}
	}
	return nil
}
