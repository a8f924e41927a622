package simulator

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Faults says what goes wrong, per request, with each rate in [0,1]. One
// draw decides each request, so the rates are exact shares and add up: 0.3
// errors and 0.3 HTML answers fail 60% of requests. At most one fault hits a
// request (latency aside).
type Faults struct {
	Seed uint64 `json:"seed"`
	// ErrorRate of requests are answered with one of ErrorCodes (default
	// InternalError) in the API's error body.
	ErrorRate  float64  `json:"error_rate"`
	ErrorCodes []string `json:"error_codes,omitempty"`
	// HTML5xxRate of requests get HTTP 502 with an HTML page.
	HTML5xxRate float64 `json:"html_5xx_rate"`
	// TruncateRate of successful answers are cut in half.
	TruncateRate float64 `json:"truncate_rate"`
	// StallRate of requests hang for StallFor (default 2m) before answering.
	StallRate float64       `json:"stall_rate"`
	StallFor  time.Duration `json:"stall_for"`
	// ExpireTokenRate of requests that carry a ScrollToken are told it is
	// invalid, with the action's documented InvalidParameterValue.
	ExpireTokenRate float64 `json:"expire_token_rate"`
	// Latency is added to every request, plus up to Jitter more.
	Latency time.Duration `json:"latency"`
	Jitter  time.Duration `json:"jitter"`
	// Actions limits the faults and latency to these actions
	// (DescribeTasks, DescribeTaskDetail, DescribeImageTasks,
	// DescribeImageTaskDetail, DescribeUsageData); empty: every action. A
	// key whose CAM policy lacks one action fails that action alone.
	Actions []string `json:"actions,omitempty"`
	// DateSkew moves the Date header of every answer away from the clock
	// the API lists and filters by: a proxy's, or a misconfigured front
	// end's, clock.
	DateSkew time.Duration `json:"date_skew,omitempty"`
}

type faultInjector struct {
	mu  sync.Mutex
	f   Faults
	rng *rand.Rand
}

func newFaultInjector(f Faults) *faultInjector {
	fi := &faultInjector{}
	fi.set(f)
	return fi
}

func (fi *faultInjector) set(f Faults) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	if f.StallFor <= 0 {
		f.StallFor = 2 * time.Minute
	}
	if len(f.ErrorCodes) == 0 {
		f.ErrorCodes = []string{mps.CodeInternalError}
	}
	fi.f = f
	fi.rng = rand.New(rand.NewPCG(f.Seed, 0xfa017))
}

type fault int

const (
	faultNone fault = iota
	faultError
	faultHTML
	faultTruncate
	faultStall
	faultExpire
)

// dateSkew is what the Date header is moved by.
func (fi *faultInjector) dateSkew() time.Duration {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return fi.f.DateSkew
}

// draw decides the fault and delay for one request of action.
func (fi *faultInjector) draw(action string, hasToken bool) (fault, string, time.Duration, time.Duration) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	f := fi.f
	if len(f.Actions) > 0 && !slices.Contains(f.Actions, action) {
		return faultNone, "", 0, 0
	}
	delay := f.Latency
	if f.Jitter > 0 {
		delay += time.Duration(fi.rng.Int64N(int64(f.Jitter)))
	}
	r := fi.rng.Float64()
	below := func(p float64) bool {
		if r < p {
			return true
		}
		r -= p
		return false
	}
	switch {
	case below(f.ErrorRate):
		return faultError, f.ErrorCodes[fi.rng.IntN(len(f.ErrorCodes))], delay, 0
	case below(f.HTML5xxRate):
		return faultHTML, "", delay, 0
	case below(f.TruncateRate):
		return faultTruncate, "", delay, 0
	case below(f.StallRate):
		return faultStall, "", delay, f.StallFor
	case hasToken && below(f.ExpireTokenRate):
		return faultExpire, "", delay, 0
	}
	return faultNone, "", delay, 0
}

// inject applies the drawn fault to a request of q.action; it reports
// whether the request was answered.
func (s *Server) inject(w http.ResponseWriter, r *http.Request, reqID string, q query) bool {
	action := q.action
	kind, code, delay, stall := s.faults.draw(action, q.hasToken)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	if kind != faultNone {
		s.statsMu.Lock()
		s.stats.FaultsInjected++
		s.statsMu.Unlock()
	}
	switch kind {
	case faultError:
		s.fail(w, reqID, q.status, code, "injected fault")
		return true
	case faultHTML:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>stgw</center></body></html>\n"))
		return true
	case faultTruncate:
		if action != mps.ActionDescribeTasks && action != mps.ActionDescribeImageTasks {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"Response":{"Data":[{"TaskType":"Trans`))
			return true
		}
		resp, code, msg := s.list(q, s.Variant())
		if code != "" {
			s.fail(w, reqID, q.status, code, msg)
			return true
		}
		body := encodePage(resp, reqID)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body[:len(body)/2])
		return true
	case faultStall:
		t := time.NewTimer(stall)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		s.fail(w, reqID, q.status, mps.CodeInternalError, "stalled")
		return true
	case faultExpire:
		s.fail(w, reqID, q.status, mps.CodeInvalidParameter, "ScrollToken is invalid.")
		return true
	}
	return false
}
