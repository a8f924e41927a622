// Package simulator is a local stand-in for the MPS DescribeTasks API (and
// DescribeTaskDetail, DescribeImageTasks, DescribeImageTaskDetail and
// DescribeUsageData). It speaks Tencent Cloud API 3.0 over HTTP, verifies
// TC3-HMAC-SHA256 signatures, pages through ScrollTokens as the API page
// describes, enforces a per-SecretId rate limit, and can inject the faults a
// real network and a real service produce. Tests, benchmarks and the demo
// all run against it.
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
	// media and images are tasks split by list, in the same order; media
	// is tasks itself while there are no image tasks.
	media, images []*Task
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
	countAt    [listKinds]time.Time
	countCache [listKinds]*[4][]int32 // per list, prefix counts: [0] every status, [rank] one status
}

// Stats counts what the server answered.
type Stats struct {
	Requests int64 `json:"requests"`
	// RequestsByStatus counts the list requests by their Status ("" for
	// none), and "detail" the DescribeTaskDetail ones and "usage" the
	// DescribeUsageData ones; DescribeImageTasks and DescribeImageTaskDetail
	// requests count under "image/" and the same keys ("image/FINISH",
	// "image/detail").
	RequestsByStatus map[string]int64 `json:"requests_by_status"`
	// RequestsByAction counts every request whose signature verified by
	// its X-TC-Action, including those then refused (InvalidAction, the
	// rate limit, a bad parameter, an injected fault).
	RequestsByAction map[string]int64 `json:"requests_by_action"`
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
		stats:    Stats{RequestsByStatus: map[string]int64{}, RequestsByAction: map[string]int64{}, ErrorsByCode: map[string]int64{}},
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
	s.install(tasks)
	s.arrivedUntil.Store(now.Add(arrivalsAhead))
}

// install makes tasks, sorted by (Create, ID), the population: its index
// and its lists, whose prefix counts it drops. The caller holds s.mu, so
// that no list request sees the new lists with the old counts.
func (s *Server) install(tasks []*Task) {
	index := make(map[string]int, len(tasks))
	var images []*Task
	for i, t := range tasks {
		index[t.ID] = i
		if t.Image {
			images = append(images, t)
		}
	}
	media := tasks
	if len(images) > 0 {
		media = make([]*Task, 0, len(tasks)-len(images))
		for _, t := range tasks {
			if !t.Image {
				media = append(media, t)
			}
		}
	}
	s.tasks, s.index, s.media, s.images = tasks, index, media, images
	s.resetCounts()
}

// resetCounts drops the prefix counts of every list.
func (s *Server) resetCounts() {
	s.countMu.Lock()
	s.countCache = [listKinds]*[4][]int32{}
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
	s.mu.Lock()
	s.install(sorted)
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
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := s.stats
	out.RequestsByStatus = maps.Clone(s.stats.RequestsByStatus)
	out.RequestsByAction = maps.Clone(s.stats.RequestsByAction)
	out.ErrorsByCode = maps.Clone(s.stats.ErrorsByCode)
	return out
}

// TruthTask is a task as the API would describe it now, with its status
// and, for a FINISH task, the outcome its detail says. An image task has
// TaskType ImageTask and no SubTaskTypes.
type TruthTask struct {
	mps.TaskSimpleInfo
	// Source is the list the task belongs to: mps.SourceMedia.Name
	// (DescribeTasks) or mps.SourceImage.Name (DescribeImageTasks), even
	// where DescribeTasks lists image tasks too.
	Source string `json:"Source"`
	Status string `json:"Status"`
	Failed bool   `json:"Failed,omitempty"`
	// Outcome is succeeded or failed for a FINISH task whose detail the API
	// still has, expired for one whose detail it no longer has, "" else.
	Outcome    string `json:"Outcome,omitempty"`
	ErrCode    string `json:"ErrCode,omitempty"`
	ErrCodeExt string `json:"ErrCodeExt,omitempty"`
	// Outputs and Inputs are the media facts of the detail the API has
	// (none once it expired, none of an image task).
	Outputs []MediaOutput `json:"Outputs,omitempty"`
	Inputs  []MediaInput  `json:"Inputs,omitempty"`
}

// Truth lists every task the API would return at the clock's now (those
// created in the last 168 hours), media and image tasks, in listing order.
// Raw records are left out.
func (s *Server) Truth() []TruthTask {
	s.extendArrivals(s.clock.Now())
	now := s.clock.Now().UnixNano()
	s.mu.RLock()
	defer s.mu.RUnlock()
	lo, hi := windowOf(s.tasks, now)
	out := make([]TruthTask, 0, hi-lo)
	for _, t := range s.tasks[lo:hi] {
		if t.Raw != nil {
			continue
		}
		tt := TruthTask{TaskSimpleInfo: t.Info(now), Source: mps.SourceMedia.Name, Status: string(t.StatusAt(now)), Failed: t.Failed}
		if t.Image {
			tt.Source = mps.SourceImage.Name
		}
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

// windowOf returns the index range of tasks (sorted by Create) visible at
// now.
func windowOf(tasks []*Task, now int64) (lo, hi int) {
	from := now - int64(Retention)
	lo, _ = slices.BinarySearchFunc(tasks, from, func(t *Task, v int64) int { return cmpInt(t.Create, v+1) })
	hi, _ = slices.BinarySearchFunc(tasks, now, func(t *Task, v int64) int { return cmpInt(t.Create, v+1) })
	return lo, hi
}

// listKind is one of the lists the server keeps, each sorted by (Create,
// ID).
type listKind int

const (
	listAll   listKind = iota // every task: DescribeTasks with ImageTasksInTaskList
	listMedia                 // DescribeTasks
	listImage                 // DescribeImageTasks
	listKinds
)

// listFor is the list DescribeImageTasks (image) or DescribeTasks reads
// under v.
func listFor(image bool, v Variant) listKind {
	switch {
	case image:
		return listImage
	case v.ImageTasksInTaskList:
		return listAll
	}
	return listMedia
}

// holds reports whether the list has t.
func (k listKind) holds(t *Task) bool {
	switch k {
	case listMedia:
		return !t.Image
	case listImage:
		return t.Image
	}
	return true
}

// tasksOf is the list k; the caller holds s.mu.
func (s *Server) tasksOf(k listKind) []*Task {
	switch k {
	case listMedia:
		return s.media
	case listImage:
		return s.images
	}
	return s.tasks
}

// position is the index in the list k (tasks) of all[i], a task the list
// holds: found by its CreateTime, then among the tasks created at the same
// instant, so that no list needs an index of its own.
func position(k listKind, tasks []*Task, all []*Task, i int) int {
	if k == listAll {
		return i
	}
	t := all[i]
	j, _ := slices.BinarySearchFunc(tasks, t.Create, func(x *Task, v int64) int { return cmpInt(x.Create, v) })
	for j < len(tasks) && tasks[j] != t {
		j++
	}
	return j
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
	s.countAction(action)
	v := s.Variant()
	if !v.serves(action) {
		s.fail(w, reqID, "", mps.CodeInvalidAction, fmt.Sprintf("the action %q is not supported", action))
		return
	}
	if ver := r.Header.Get("X-TC-Version"); ver != mps.Version {
		s.fail(w, reqID, "", "NoSuchVersion", fmt.Sprintf("the version %q is not supported", ver))
		return
	}
	// Each action has its own limit of 100 requests a second.
	if !s.allow(action + "/" + secretID) {
		s.fail(w, reqID, "", mps.CodeRequestLimitExceeded, "your current request times equals to `100` in a second, which exceeds the frequency limit `100` for a second. please reduce the frequency of calls.")
		return
	}
	switch action {
	case mps.ActionDescribeTaskDetail, mps.ActionDescribeImageTaskDetail:
		s.serveDetail(w, r, reqID, body, action == mps.ActionDescribeImageTaskDetail)
	case mps.ActionDescribeUsageData:
		s.serveUsage(w, r, reqID, body)
	default:
		s.serveList(w, r, reqID, body, action, v)
	}
}

// serveList answers DescribeTasks and DescribeImageTasks: the same
// parameters and paging over their own lists, except that
// DescribeImageTasks documents its Status as required.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, reqID string, body []byte, action string, v Variant) {
	q, code, msg := parseQuery(body, v)
	q.action, q.image = action, action == mps.ActionDescribeImageTasks
	s.count(statsKey(q.image, q.status))
	if code == "" && q.image && q.status == "" {
		code, msg = "MissingParameter", "The request is missing a required parameter `Status`."
	}
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

func (s *Server) count(key string) {
	s.statsMu.Lock()
	s.stats.RequestsByStatus[key]++
	s.statsMu.Unlock()
}

func (s *Server) countAction(action string) {
	s.statsMu.Lock()
	s.stats.RequestsByAction[action]++
	s.statsMu.Unlock()
}

// statsKey is the RequestsByStatus key of a request of an image action
// (image) or not, by its Status or "detail".
func statsKey(image bool, status string) string {
	if image {
		return mps.SourceImage.Name + "/" + status
	}
	return status
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
	action      string // the API action, for the faults
	image       bool   // DescribeImageTasks' list (or detail)
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

// list is the page q asks of its list (DescribeImageTasks' or
// DescribeTasks').
func (s *Server) list(q query, v Variant) (*pageBody, string, string) {
	now := s.clock.Now().UnixNano()
	s.mu.RLock()
	defer s.mu.RUnlock()
	kind := listFor(q.image, v)
	tasks := s.tasksOf(kind)
	lo, hi := windowOf(tasks, now)
	start, end := q.start, q.end
	if v.DefaultStart72h && start == 0 && end != 0 {
		start = now - int64(DefaultStartWindow)
	}
	field := v.filterField()
	ranged := field != "" && (start != 0 || end != 0)
	if ranged && field == FiltersCreateTime {
		// Tasks are sorted by CreateTime: narrow the scan to the range
		// exactly, bounds' inclusiveness included, so that the prefix counts
		// of TotalCount hold too.
		if start != 0 {
			at := start
			if v.ExclusiveBounds {
				at++
			}
			i, _ := slices.BinarySearchFunc(tasks, at, func(t *Task, v int64) int { return cmpInt(t.Create, v) })
			lo = max(lo, i)
		}
		if end != 0 {
			at := end + 1
			if v.ExclusiveBounds {
				at--
			}
			i, _ := slices.BinarySearchFunc(tasks, at, func(t *Task, v int64) int { return cmpInt(t.Create, v) })
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
		// it, a task that has since moved to another status still marks the
		// place; one that never existed, or that the action does not list
		// (an image task's id sent to DescribeTasks), is an error.
		i, ok := s.index[q.token]
		if !ok || !kind.holds(s.tasks[i]) {
			return nil, mps.CodeInvalidParameter, "ScrollToken is invalid."
		}
		if v.RejectMovedTokens && q.status != "" && string(s.tasks[i].StatusAt(now)) != q.status {
			return nil, mps.CodeInvalidParameter, "ScrollToken is invalid."
		}
		i = position(kind, tasks, s.tasks, i)
		if v.ExclusiveTokens {
			i++
		}
		first = max(lo, i)
	}
	set := make([]json.RawMessage, 0, q.limit)
	next := ""
	for i := first; i < hi && i >= 0; i++ {
		t := tasks[i]
		if !match(t) {
			continue
		}
		if len(set) == q.limit {
			next = t.ID
			break
		}
		set = append(set, t.render(now, q.image))
	}
	if next == "" && q.hasToken && v.EchoLastToken {
		next = q.token
	}
	total := int64(s.remaining(kind, tasks, q, now, first, hi, match, ranged && field != FiltersCreateTime))
	return &pageBody{TotalCount: &total, TaskSet: set, ScrollToken: &next}, "", ""
}

// remaining is TotalCount: the records of the list kind (tasks) that match
// from the page's first one on, which is what the API page's second and
// third examples show. Plain status filters are answered from per-list,
// per-status prefix counts that are rebuilt at most once a second, so
// draining a million tasks is not quadratic.
func (s *Server) remaining(kind listKind, tasks []*Task, q query, now int64, start, hi int, match func(*Task) bool, scan bool) int {
	if scan || q.failed != nil || start >= hi {
		n := 0
		for i := start; i < hi; i++ {
			if match(tasks[i]) {
				n++
			}
		}
		return n
	}
	s.countMu.Lock()
	defer s.countMu.Unlock()
	if s.countCache[kind] == nil || time.Since(s.countAt[kind]) > time.Second {
		s.countCache[kind], s.countAt[kind] = prefixCounts(tasks, now), time.Now()
	}
	c := s.countCache[kind][mps.Status(q.status).Rank()]
	return int(c[hi] - c[start])
}

// prefixCounts counts, for each prefix of tasks, the tasks of every status
// ([0]) and of each status ([rank]) at now.
func prefixCounts(tasks []*Task, now int64) *[4][]int32 {
	var cache [4][]int32
	for k := range cache {
		cache[k] = make([]int32, len(tasks)+1)
	}
	for i, t := range tasks {
		r := t.StatusAt(now).Rank()
		for k := range cache {
			cache[k][i+1] = cache[k][i]
		}
		cache[0][i+1]++
		cache[r][i+1]++
	}
	return &cache
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
