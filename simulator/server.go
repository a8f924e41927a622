// Package simulator is a local stand-in for the MPS DescribeTasks API. It
// speaks Tencent Cloud API 3.0 over HTTP, verifies TC3-HMAC-SHA256
// signatures, pages through ScrollTokens as the API page describes, enforces a
// per-SecretId rate limit, and can inject the faults a real network and a
// real service produce. Tests, benchmarks and the demo all run against it.
//
// It shares only the wire types (package mps) with the client.
package simulator

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Retention is how far back the API lists tasks.
const Retention = 168 * time.Hour

// Config configures a Server.
type Config struct {
	// Credentials maps SecretId to SecretKey.
	Credentials map[string]string
	// RateLimit per SecretId in requests per second (default 100; negative
	// disables it).
	RateLimit float64
	// Arrivals, when set, keep tasks arriving for as long as the server
	// runs (the live mode without an end), generated as its clock reaches
	// them.
	Arrivals *Arrivals
	// Clock is the simulated now (default: real time).
	Clock *Clock
	// Faults to inject from the start.
	Faults Faults
	// AuthNow is the real time the signature check compares X-TC-Timestamp
	// with (default time.Now); tests skew it to exercise SignatureExpire.
	AuthNow func() time.Time
	// Variant picks the reading of each behaviour the API pages disagree
	// about (zero: the Chinese reference page's).
	Variant Variant
	// DetailRetention is how long after creation DescribeTaskDetail still
	// knows a task (default 168h; the international site documents 72h).
	DetailRetention time.Duration
	// DetailErrors are the errors failed tasks report (default
	// DefaultDetailErrors); GenConfig.FailureShare says how many fail.
	DetailErrors []DetailError
}

// Server is the simulated API. Its methods are safe for concurrent use.
type Server struct {
	cfg    Config
	clock  *Clock
	faults *faultInjector

	mu    sync.RWMutex
	tasks []*Task // sorted by (Create, ID)
	index map[string]int
	// arrivals, when set, are generated as the clock reaches them;
	// arrivedUntil (a time.Time) is when the next batch is due.
	arrivals     *Arrivals
	arrivedUntil atomic.Value

	varMu   sync.RWMutex
	variant Variant

	limMu    sync.Mutex
	limiters map[string]*rate.Limiter // per action and SecretId

	statsMu sync.Mutex
	stats   Stats

	// usageOrigin is the Beijing day of the first task the server was
	// given: DescribeUsageData serves a made-up history before it.
	usageOrigin  time.Time
	usageQueries []UsageQueryLog // under statsMu

	countMu    sync.Mutex
	countAt    time.Time
	countCache *[4][]int32 // prefix counts: [0] every status, [rank] one status
}

// Stats counts what the server answered.
type Stats struct {
	Requests         int64            `json:"requests"`
	RequestsByStatus map[string]int64 `json:"requests_by_status"`
	ErrorsByCode     map[string]int64 `json:"errors_by_code"`
	FaultsInjected   int64            `json:"faults_injected"`
}

// New returns a server holding tasks.
func New(cfg Config, tasks []*Task) *Server {
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 100
	}
	if cfg.Clock == nil {
		cfg.Clock = NewClock(time.Now(), 1)
	}
	if cfg.AuthNow == nil {
		cfg.AuthNow = time.Now
	}
	if cfg.DetailRetention <= 0 {
		cfg.DetailRetention = Retention
	}
	if len(cfg.DetailErrors) == 0 {
		cfg.DetailErrors = DefaultDetailErrors
	}
	s := &Server{
		cfg:      cfg,
		variant:  cfg.Variant,
		clock:    cfg.Clock,
		faults:   newFaultInjector(cfg.Faults),
		limiters: map[string]*rate.Limiter{},
		stats:    Stats{RequestsByStatus: map[string]int64{}, ErrorsByCode: map[string]int64{}},
	}
	s.SetTasks(tasks)
	s.arrivals = cfg.Arrivals
	s.arrivedUntil.Store(time.Time{})
	return s
}

// arrivalsAhead is how far past its clock the server has generated
// open-ended arrivals (they are listed only once the clock reaches them).
const arrivalsAhead = time.Hour

// extendArrivals generates open-ended arrivals up to the clock plus
// arrivalsAhead, and forgets tasks long past every window, so that a live
// simulator runs for as long as it is left running.
func (s *Server) extendArrivals(now time.Time) {
	if s.arrivals == nil || now.Before(s.arrivedUntil.Load().(time.Time)) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	until := s.arrivedUntil.Load().(time.Time)
	if now.Before(until) {
		return
	}
	until = now.Add(2 * arrivalsAhead)
	tasks := s.tasks
	if cut := now.Add(-2 * Retention).UnixNano(); len(tasks) > 0 && tasks[0].Create < cut {
		i, _ := slices.BinarySearchFunc(tasks, cut, func(t *Task, v int64) int { return cmpInt(t.Create, v) })
		tasks = slices.Clone(tasks[i:])
	}
	tasks = append(tasks, s.arrivals.Until(until)...)
	index := make(map[string]int, len(tasks))
	for i, t := range tasks {
		index[t.ID] = i
	}
	s.tasks, s.index = tasks, index
	s.arrivedUntil.Store(now.Add(arrivalsAhead))
	s.countMu.Lock()
	s.countCache = nil
	s.countMu.Unlock()
}

// Clock is the server's clock.
func (s *Server) Clock() *Clock { return s.clock }

// SetFaults replaces the fault configuration.
func (s *Server) SetFaults(f Faults) { s.faults.set(f) }

// SetVariant switches the API's reading of the open behaviours.
func (s *Server) SetVariant(v Variant) {
	s.varMu.Lock()
	s.variant = v
	s.varMu.Unlock()
}

// Variant is the reading in force.
func (s *Server) Variant() Variant {
	s.varMu.RLock()
	defer s.varMu.RUnlock()
	return s.variant
}

// SetRateLimit changes the per-SecretId limit (negative: off).
func (s *Server) SetRateLimit(perSecond float64) {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	s.cfg.RateLimit = perSecond
	s.limiters = map[string]*rate.Limiter{}
}

// SetTasks replaces the population.
func (s *Server) SetTasks(tasks []*Task) {
	sorted := slices.Clone(tasks)
	slices.SortFunc(sorted, func(a, b *Task) int {
		if a.Create != b.Create {
			if a.Create < b.Create {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	index := make(map[string]int, len(sorted))
	for i, t := range sorted {
		index[t.ID] = i
	}
	s.mu.Lock()
	s.tasks, s.index = sorted, index
	origin := mps.UsageDay(s.clock.Now().Add(-Retention))
	if len(sorted) > 0 {
		if first := mps.UsageDay(time.Unix(0, sorted[0].Create)); first.Before(origin) {
			origin = first
		}
	}
	if s.usageOrigin.IsZero() || origin.Before(s.usageOrigin) {
		s.usageOrigin = origin
	}
	s.mu.Unlock()
	s.countMu.Lock()
	s.countCache = nil
	s.countMu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := s.stats
	out.RequestsByStatus = maps.Clone(s.stats.RequestsByStatus)
	out.ErrorsByCode = maps.Clone(s.stats.ErrorsByCode)
	return out
}

// TruthTask is a task as the API would describe it now, with its status
// and, for a FINISH task, the outcome its detail says.
type TruthTask struct {
	mps.TaskSimpleInfo
	Status string `json:"Status"`
	Failed bool   `json:"Failed,omitempty"`
	// Outcome is succeeded or failed for a FINISH task whose detail the API
	// still has, expired for one whose detail it no longer has, "" else.
	Outcome    string `json:"Outcome,omitempty"`
	ErrCode    string `json:"ErrCode,omitempty"`
	ErrCodeExt string `json:"ErrCodeExt,omitempty"`
	// Outputs and Inputs are the media facts of the detail the API has
	// (none once it expired).
	Outputs []MediaOutput `json:"Outputs,omitempty"`
	Inputs  []MediaInput  `json:"Inputs,omitempty"`
}

// Truth lists every task the API would return at the clock's now (those
// created in the last 168 hours), in listing order. Raw records are left out.
func (s *Server) Truth() []TruthTask {
	s.extendArrivals(s.clock.Now())
	now := s.clock.Now().UnixNano()
	s.mu.RLock()
	defer s.mu.RUnlock()
	lo, hi := s.window(now)
	out := make([]TruthTask, 0, hi-lo)
	for _, t := range s.tasks[lo:hi] {
		if t.Raw != nil {
			continue
		}
		tt := TruthTask{TaskSimpleInfo: t.Info(now), Status: string(t.StatusAt(now)), Failed: t.Failed}
		tt.Outcome, tt.ErrCode, tt.ErrCodeExt = t.Expected(now, s.cfg.DetailErrors)
		if tt.Outcome != "" && now-t.Create > int64(s.cfg.DetailRetention) {
			tt.Outcome, tt.ErrCode, tt.ErrCodeExt = mps.OutcomeExpired, "", ""
		}
		if tt.Outcome == mps.OutcomeSucceeded || tt.Outcome == mps.OutcomeFailed {
			m := t.media(now, s.cfg.DetailErrors)
			tt.Outputs, tt.Inputs = m.outputs, m.inputs
		}
		out = append(out, tt)
	}
	return out
}

// window returns the index range of tasks visible at now.
func (s *Server) window(now int64) (lo, hi int) {
	from := now - int64(Retention)
	lo, _ = slices.BinarySearchFunc(s.tasks, from, func(t *Task, v int64) int { return cmpInt(t.Create, v+1) })
	hi, _ = slices.BinarySearchFunc(s.tasks, now, func(t *Task, v int64) int { return cmpInt(t.Create, v+1) })
	return lo, hi
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ServeHTTP answers API 3.0 calls.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	s.extendArrivals(s.clock.Now())
	// The Date header carries the simulated clock, as the real API's carries
	// its own: the archiver measures the 7-day window on it.
	w.Header().Set("Date", s.clock.Now().Add(s.faults.dateSkew()).UTC().Format(http.TimeFormat))
	s.statsMu.Lock()
	s.stats.Requests++
	s.statsMu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.fail(w, reqID, "", "InternalError", "could not read the request body")
		return
	}
	if r.Method != http.MethodPost {
		s.fail(w, reqID, "", "UnsupportedOperation", "only POST with a JSON body is supported")
		return
	}
	secretID, aerr := verify(r, body, s.cfg.Credentials, s.cfg.AuthNow())
	if aerr != nil {
		s.fail(w, reqID, "", aerr.code, aerr.msg)
		return
	}
	action := r.Header.Get("X-TC-Action")
	if action != mps.ActionDescribeTasks && action != mps.ActionDescribeTaskDetail && action != mps.ActionDescribeUsageData {
		s.fail(w, reqID, "", mps.CodeInvalidAction, fmt.Sprintf("the action %q is not supported", action))
		return
	}
	if v := r.Header.Get("X-TC-Version"); v != mps.Version {
		s.fail(w, reqID, "", "NoSuchVersion", fmt.Sprintf("the version %q is not supported", v))
		return
	}
	// Each action has its own limit of 100 requests a second.
	if !s.allow(action + "/" + secretID) {
		s.fail(w, reqID, "", mps.CodeRequestLimitExceeded, "your current request times equals to `100` in a second, which exceeds the frequency limit `100` for a second. please reduce the frequency of calls.")
		return
	}
	if action == mps.ActionDescribeTaskDetail {
		s.serveDetail(w, r, reqID, body)
		return
	}
	if action == mps.ActionDescribeUsageData {
		s.serveUsage(w, r, reqID, body)
		return
	}
	v := s.Variant()
	q, code, msg := parseQuery(body, v)
	s.count(q.status)
	if code != "" {
		s.fail(w, reqID, q.status, code, msg)
		return
	}
	if s.inject(w, r, reqID, q) {
		return
	}
	resp, code, msg := s.list(q, v)
	if code != "" {
		s.fail(w, reqID, q.status, code, msg)
		return
	}
	writeBody(w, encodePage(resp, reqID))
}

// encodePage writes a page by hand: the records are already JSON, and
// re-marshalling them would validate and compact every one again.
func encodePage(p *pageBody, reqID string) []byte {
	size := 128
	for _, r := range p.TaskSet {
		size += len(r) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"Response":{"TotalCount":`...)
	b = strconv.AppendInt(b, *p.TotalCount, 10)
	b = append(b, `,"TaskSet":[`...)
	for i, r := range p.TaskSet {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	token, _ := json.Marshal(*p.ScrollToken)
	id, _ := json.Marshal(reqID)
	b = append(b, `],"ScrollToken":`...)
	b = append(b, token...)
	b = append(b, `,"RequestId":`...)
	b = append(b, id...)
	return append(b, `}}`...)
}

func writeBody(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func (s *Server) allow(key string) bool {
	s.limMu.Lock()
	if s.cfg.RateLimit < 0 {
		s.limMu.Unlock()
		return true
	}
	l, ok := s.limiters[key]
	if !ok {
		l = rate.NewLimiter(rate.Limit(s.cfg.RateLimit), max(1, int(s.cfg.RateLimit)))
		s.limiters[key] = l
	}
	s.limMu.Unlock()
	return l.Allow()
}

func (s *Server) count(status string) {
	s.statsMu.Lock()
	s.stats.RequestsByStatus[status]++
	s.statsMu.Unlock()
}

func (s *Server) fail(w http.ResponseWriter, reqID, status, code, msg string) {
	s.statsMu.Lock()
	s.stats.ErrorsByCode[code]++
	s.statsMu.Unlock()
	var e mps.ErrorBody
	e.Error.Code, e.Error.Message, e.RequestId = code, msg, reqID
	writeJSON(w, map[string]any{"Response": e})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

type query struct {
	status      string // "" = every status
	limit       int
	token       string
	hasToken    bool
	start, end  int64 // time filter, 0 = absent
	failed      *bool
	requestBody []byte
}

// parseQuery reads the body as the API does: unknown parameters and bad values
// are errors, and Limit may be a number or a numeric string. The optional
// filters are unknown parameters to a server at the seed page's version, and
// dropped by one that ignores them.
func parseQuery(body []byte, vr Variant) (query, string, string) {
	q := query{limit: mps.DefaultLimit, requestBody: body}
	var m map[string]json.RawMessage
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return q, "InvalidParameter", "the request body is not a JSON object"
	}
	for k, v := range m {
		switch k {
		case "Status":
			var s string
			if json.Unmarshal(v, &s) != nil {
				return q, mps.CodeInvalidParameter, "Status must be a string"
			}
			st, err := mps.ParseStatus(s)
			if err != nil || string(st) != s {
				return q, mps.CodeInvalidParameter, fmt.Sprintf("Status %q is not one of WAITING, PROCESSING, FINISH", s)
			}
			q.status = s
		case "Limit":
			n, ok := flexInt(v)
			if !ok || n < 1 || n > mps.MaxLimit {
				return q, mps.CodeInvalidLimit, "Limit must be an integer from 1 to 100"
			}
			q.limit = n
		case "ScrollToken":
			if json.Unmarshal(v, &q.token) != nil {
				return q, mps.CodeInvalidParameter, "ScrollToken must be a string"
			}
			q.hasToken = q.token != ""
		case "StartTime", "EndTime", "SubTaskHasFailed":
			if vr.Filters == FiltersUnsupported {
				return q, mps.CodeUnknownParameter, fmt.Sprintf("The parameter `%s` is not recognized.", k)
			}
			if vr.Filters == FiltersIgnored {
				continue
			}
			if k == "SubTaskHasFailed" {
				var b bool
				if json.Unmarshal(v, &b) != nil {
					return q, mps.CodeInvalidParameter, "SubTaskHasFailed must be a boolean"
				}
				q.failed = &b
				continue
			}
			var s string
			if json.Unmarshal(v, &s) != nil {
				return q, mps.CodeInvalidParameter, k + " must be an ISO 8601 string"
			}
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return q, mps.CodeInvalidParameter, k + " must be an ISO 8601 time"
			}
			if k == "StartTime" {
				q.start = t.UnixNano()
			} else {
				q.end = t.UnixNano()
			}
		default:
			return q, mps.CodeUnknownParameter, fmt.Sprintf("The parameter `%s` is not recognized.", k)
		}
	}
	return q, "", ""
}

func flexInt(v json.RawMessage) (int, bool) {
	var n int
	if json.Unmarshal(v, &n) == nil {
		return n, true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil
}

// pageBody mirrors mps.DescribeTasksResponseParams but carries records as raw
// JSON, so scenario records can be served verbatim.
type pageBody struct {
	TotalCount  *int64            `json:"TotalCount"`
	TaskSet     []json.RawMessage `json:"TaskSet"`
	ScrollToken *string           `json:"ScrollToken"`
	RequestId   *string           `json:"RequestId"`
}

func (s *Server) list(q query, v Variant) (*pageBody, string, string) {
	now := s.clock.Now().UnixNano()
	s.mu.RLock()
	defer s.mu.RUnlock()
	lo, hi := s.window(now)
	start, end := q.start, q.end
	if v.DefaultStart72h && start == 0 && end != 0 {
		start = now - int64(DefaultStartWindow)
	}
	field := v.filterField()
	ranged := field != "" && (start != 0 || end != 0)
	if ranged && field == FiltersCreateTime {
		// Tasks are sorted by CreateTime: narrow the scan; match checks the
		// bounds' inclusiveness.
		if start != 0 {
			i, _ := slices.BinarySearchFunc(s.tasks, start, func(t *Task, v int64) int { return cmpInt(t.Create, v) })
			lo = max(lo, i)
		}
		if end != 0 {
			i, _ := slices.BinarySearchFunc(s.tasks, end, func(t *Task, v int64) int { return cmpInt(t.Create, v+1) })
			hi = min(hi, i)
		}
	}
	match := func(t *Task) bool {
		if q.status != "" && string(t.StatusAt(now)) != q.status {
			return false
		}
		if ranged {
			at := t.Create
			if field == FiltersFinishTime {
				at = t.Finish
				if t.StatusAt(now) != mps.StatusFinish {
					at = 0
				}
			}
			if !v.inRange(at, start, end) {
				return false
			}
		}
		return q.failed == nil || t.Failed == *q.failed
	}
	first := lo
	if q.hasToken {
		// The token is the next record's TaskId. Unless the variant rejects
		// it, a task that has since moved to another list still marks the
		// place; one that never existed is an error.
		i, ok := s.index[q.token]
		if !ok {
			return nil, mps.CodeInvalidParameter, "ScrollToken is invalid."
		}
		if v.RejectMovedTokens && q.status != "" && string(s.tasks[i].StatusAt(now)) != q.status {
			return nil, mps.CodeInvalidParameter, "ScrollToken is invalid."
		}
		if v.ExclusiveTokens {
			i++
		}
		first = max(lo, i)
	}
	set := make([]json.RawMessage, 0, q.limit)
	next := ""
	for i := first; i < hi && i >= 0; i++ {
		t := s.tasks[i]
		if !match(t) {
			continue
		}
		if len(set) == q.limit {
			next = t.ID
			break
		}
		set = append(set, t.render(now))
	}
	if next == "" && q.hasToken && v.EchoLastToken {
		next = q.token
	}
	total := int64(s.remaining(q, now, first, hi, match, ranged && field != FiltersCreateTime))
	return &pageBody{TotalCount: &total, TaskSet: set, ScrollToken: &next}, "", ""
}

// remaining is TotalCount: the records that match from the page's first one
// on, which is what the API page's second and third examples show. Plain
// status filters are answered from per-status prefix counts that are rebuilt
// at most once a second, so draining a million tasks is not quadratic.
func (s *Server) remaining(q query, now int64, start, hi int, match func(*Task) bool, scan bool) int {
	if scan || q.failed != nil || start >= hi {
		n := 0
		for i := start; i < hi; i++ {
			if match(s.tasks[i]) {
				n++
			}
		}
		return n
	}
	s.countMu.Lock()
	defer s.countMu.Unlock()
	if s.countCache == nil || time.Since(s.countAt) > time.Second {
		var cache [4][]int32
		for k := range cache {
			cache[k] = make([]int32, len(s.tasks)+1)
		}
		for i, t := range s.tasks {
			r := t.StatusAt(now).Rank()
			for k := range cache {
				cache[k][i+1] = cache[k][i]
			}
			cache[0][i+1]++
			cache[r][i+1]++
		}
		s.countCache, s.countAt = &cache, time.Now()
	}
	c := s.countCache[mps.Status(q.status).Rank()]
	return int(c[hi] - c[start])
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
