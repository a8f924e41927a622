package syncer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/mps"
)

// fakeLister answers with ListFunc, and DetailFunc (default: gone).
type fakeLister struct {
	ListFunc   func(ctx context.Context, status mps.Status, token string) (*mps.Page, error)
	DetailFunc func(ctx context.Context, taskID string) (*mps.TaskDetail, error)
}

func (f *fakeLister) ListTasks(ctx context.Context, q mps.Query) (*mps.Page, error) {
	return f.ListFunc(ctx, q.Status, q.ScrollToken)
}

func (f *fakeLister) TaskDetail(ctx context.Context, _ mps.Source, taskID string) (*mps.TaskDetail, error) {
	if f.DetailFunc != nil {
		return f.DetailFunc(ctx, taskID)
	}
	return nil, &mps.APIError{Code: mps.CodeResourceNotFound}
}

// fakeStore records what it is given; each XxxFunc may override.
type fakeStore struct {
	mu            sync.Mutex
	LockFunc      func(ctx context.Context) (Lock, error)
	WritePageFunc func(ctx context.Context, p WritePageParams) (PageResult, error)
	pages         []WritePageParams
	finished      []FinishRunParams
	caps          map[string]Capability
}

type fakeLock struct{ lost chan struct{} }

func (l *fakeLock) Lost() <-chan struct{}   { return l.lost }
func (l *fakeLock) Release(context.Context) {}

func (f *fakeStore) Lock(ctx context.Context) (Lock, error) {
	if f.LockFunc != nil {
		return f.LockFunc(ctx)
	}
	return &fakeLock{lost: make(chan struct{})}, nil
}

func (f *fakeStore) StartRun(context.Context, StartRunParams) (RunStarted, error) {
	return RunStarted{RunID: 1}, nil
}

func (f *fakeStore) WritePage(ctx context.Context, p WritePageParams) (PageResult, error) {
	f.mu.Lock()
	f.pages = append(f.pages, p)
	f.mu.Unlock()
	if f.WritePageFunc != nil {
		return f.WritePageFunc(ctx, p)
	}
	return PageResult{Inserted: int64(len(p.Tasks))}, nil
}

func (f *fakeStore) RecordProgress(context.Context, Progress) error { return nil }

func (f *fakeStore) TaskStatus(context.Context, string, string) (mps.Status, error) { return "", nil }

func (f *fakeStore) EnqueueUndetailed(context.Context, time.Duration) (int64, error) { return 0, nil }

func (f *fakeStore) RunHistory(context.Context) (RunHistory, error) { return RunHistory{}, nil }

func (f *fakeStore) SourceHistory(context.Context, string) (SourceHistory, error) {
	return SourceHistory{}, nil
}

func (f *fakeStore) InFlightTasks(context.Context, string, string, int) ([]InFlightTask, error) {
	return nil, nil
}

func (f *fakeStore) ProbeTask(context.Context, string, time.Time, time.Duration) (ProbeTask, bool, error) {
	return ProbeTask{}, false, nil
}

func (f *fakeStore) MarkGone(context.Context, []string) error { return nil }

func (f *fakeStore) CompleteDetail(context.Context, details.Record) (bool, error) { return true, nil }

func (f *fakeStore) Capability(_ context.Context, name string) (Capability, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.caps[name]; ok {
		return c, nil
	}
	return Capability{Name: name}, nil
}

func (f *fakeStore) SetCapability(_ context.Context, c Capability) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.caps == nil {
		f.caps = map[string]Capability{}
	}
	f.caps[c.Name] = c
	return nil
}

func (f *fakeStore) FinishRun(_ context.Context, p FinishRunParams) (FinishResult, error) {
	f.finished = append(f.finished, p)
	return FinishResult{}, nil
}

// pagedLister serves n tasks per status in pages of size, tokens being the
// next task's id.
func pagedLister(n, size int) *fakeLister {
	return &fakeLister{ListFunc: func(_ context.Context, st mps.Status, token string) (*mps.Page, error) {
		start := 0
		if token != "" {
			fmt.Sscanf(token[strings.LastIndexByte(token, '-')+1:], "%d", &start)
		}
		p := &mps.Page{}
		for i := start; i < n && i < start+size; i++ {
			p.Tasks = append(p.Tasks, mps.Task{TaskID: fmt.Sprintf("%s-%d", st, i)})
		}
		if start+size < n {
			p.ScrollToken = fmt.Sprintf("%s-%d", st, start+size)
		}
		return p, nil
	}}
}

func TestRunDrainsEveryStatusInLifecycleOrder(t *testing.T) {
	t.Parallel()
	st := &fakeStore{}
	s := New(pagedLister(250, 100), st, Config{}, nil)
	res, err := s.Run(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 9 || res.Seen != 750 || res.Inserted != 750 || len(res.Drained) != 3 {
		t.Fatalf("result %+v", res)
	}
	var order []mps.Status
	for _, p := range st.pages {
		if len(order) == 0 || order[len(order)-1] != p.Status {
			order = append(order, p.Status)
		}
	}
	if fmt.Sprint(order) != "[WAITING PROCESSING FINISH]" {
		t.Fatalf("drain order %v", order)
	}
	if len(st.finished) != 1 || st.finished[0].Failed {
		t.Fatalf("finish %+v", st.finished)
	}
}

func TestRepeatedTokenStopsTheDrain(t *testing.T) {
	t.Parallel()
	calls := 0
	l := &fakeLister{ListFunc: func(_ context.Context, _ mps.Status, token string) (*mps.Page, error) {
		calls++
		next := map[string]string{"": "a", "a": "b", "b": "a"}[token]
		return &mps.Page{Tasks: []mps.Task{{TaskID: "t" + token}, {TaskID: token}}, ScrollToken: next}, nil
	}}
	st := &fakeStore{}
	_, err := New(l, st, Config{Statuses: []mps.Status{mps.StatusFinish}}, nil).Run(context.Background(), "test")
	if err == nil || !strings.Contains(err.Error(), `ScrollToken "a" twice`) || calls != 3 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	if !st.finished[0].Failed || len(st.finished[0].Drained) != 0 {
		t.Fatalf("finish %+v", st.finished[0])
	}
}

func TestPageCapStopsTheDrain(t *testing.T) {
	t.Parallel()
	_, err := New(pagedLister(1000, 10), &fakeStore{}, Config{MaxPagesPerStatus: 5}, nil).Run(context.Background(), "test")
	if err == nil || !strings.Contains(err.Error(), "more than 5 pages") {
		t.Fatalf("err %v", err)
	}
}

func TestTotalCountIsIgnored(t *testing.T) {
	t.Parallel()
	l := pagedLister(30, 10)
	inner := l.ListFunc
	l.ListFunc = func(ctx context.Context, st mps.Status, token string) (*mps.Page, error) {
		p, err := inner(ctx, st, token)
		zero := int64(0)
		p.TotalCount = &zero // claims nothing is left
		return p, err
	}
	res, err := New(l, &fakeStore{}, Config{}, nil).Run(context.Background(), "test")
	if err != nil || res.Seen != 90 {
		t.Fatalf("seen %d, err %v", res.Seen, err)
	}
}

func TestRejectedTokenRestartsTheCursorBoundedTimes(t *testing.T) {
	t.Parallel()
	inner := pagedLister(30, 10).ListFunc
	// Every code the API may answer a stale token with restarts the cursor.
	for _, code := range []string{mps.CodeInvalidParameter, "InvalidParameter", "ResourceNotFound", "ResourceNotFound.Task"} {
		rejections := 0
		l := &fakeLister{ListFunc: func(ctx context.Context, st mps.Status, token string) (*mps.Page, error) {
			if token != "" && rejections < 2 {
				rejections++
				return nil, &mps.APIError{Code: code}
			}
			return inner(ctx, st, token)
		}}
		res, err := New(l, &fakeStore{}, Config{Statuses: []mps.Status{mps.StatusFinish}, PageSize: 10}, nil).Run(context.Background(), "test")
		if err != nil || res.Restarts != 2 || res.Seen != 50 {
			t.Fatalf("%s: res %+v err %v", code, res, err)
		}
	}

	always := &fakeLister{ListFunc: func(ctx context.Context, st mps.Status, token string) (*mps.Page, error) {
		if token != "" {
			return nil, &mps.APIError{Code: mps.CodeInvalidParameter}
		}
		return inner(ctx, st, token)
	}}
	res, err := New(always, &fakeStore{}, Config{Statuses: []mps.Status{mps.StatusFinish}, MaxRestarts: 3}, nil).Run(context.Background(), "test")
	if mps.ErrorCode(err) != mps.CodeInvalidParameter || res.Restarts != 3 {
		t.Fatalf("a token rejected past the bound must fail the run: %v, %d restarts", err, res.Restarts)
	}
	// The first page has no token to blame: its rejection is fatal at once.
	first := &fakeLister{ListFunc: func(ctx context.Context, st mps.Status, token string) (*mps.Page, error) {
		return nil, &mps.APIError{Code: mps.CodeInvalidParameter}
	}}
	res, err = New(first, &fakeStore{}, Config{Statuses: []mps.Status{mps.StatusFinish}}, nil).Run(context.Background(), "test")
	if mps.ErrorCode(err) != mps.CodeInvalidParameter || res.Restarts != 0 {
		t.Fatalf("page 1: %v, %d restarts", err, res.Restarts)
	}
}

func TestFetchErrorKeepsCommittedPages(t *testing.T) {
	t.Parallel()
	inner := pagedLister(50, 10).ListFunc
	l := &fakeLister{ListFunc: func(ctx context.Context, st mps.Status, token string) (*mps.Page, error) {
		if token == "WAITING-30" {
			return nil, &mps.APIError{Code: "AuthFailure.SecretIdNotFound", RequestID: "req-1"}
		}
		return inner(ctx, st, token)
	}}
	st := &fakeStore{}
	res, err := New(l, st, Config{}, nil).Run(context.Background(), "test")
	if err == nil || len(st.pages) != 3 || len(res.RequestIDs) != 1 || res.RequestIDs[0] != "req-1" {
		t.Fatalf("err %v, pages %d, res %+v", err, len(st.pages), res)
	}
	if !st.finished[0].Failed || !strings.Contains(st.finished[0].Error, "AuthFailure.SecretIdNotFound") {
		t.Fatalf("finish %+v", st.finished[0])
	}
}

func TestWriteErrorFailsTheRun(t *testing.T) {
	t.Parallel()
	st := &fakeStore{WritePageFunc: func(_ context.Context, p WritePageParams) (PageResult, error) {
		return PageResult{}, errors.New("disk full")
	}}
	res, err := New(pagedLister(500, 10), st, Config{}, nil).Run(context.Background(), "test")
	// Two writers take pages 1 and 2 at once: either may report first.
	if err == nil || !regexp.MustCompile(`^write page [12] of WAITING: disk full$`).MatchString(err.Error()) || res.Pages != 0 {
		t.Fatalf("err %v res %+v", err, res)
	}
	if len(st.pages) > 2 {
		t.Fatalf("kept writing after a failure: %d pages", len(st.pages))
	}
}

func TestLockedRunIsSkipped(t *testing.T) {
	t.Parallel()
	st := &fakeStore{LockFunc: func(context.Context) (Lock, error) { return nil, ErrLocked }}
	_, err := New(pagedLister(10, 10), st, Config{}, nil).Run(context.Background(), "test")
	if !errors.Is(err, ErrLocked) || len(st.finished) != 0 {
		t.Fatalf("err %v, finished %v", err, st.finished)
	}
}

func TestLostLockCancelsTheRun(t *testing.T) {
	t.Parallel()
	lost := make(chan struct{})
	st := &fakeStore{LockFunc: func(context.Context) (Lock, error) { return &fakeLock{lost: lost}, nil }}
	inner := pagedLister(1_000_000, 10).ListFunc
	n := 0
	l := &fakeLister{ListFunc: func(ctx context.Context, s mps.Status, tok string) (*mps.Page, error) {
		if n++; n == 5 {
			close(lost)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return inner(ctx, s, tok)
	}}
	_, err := New(l, st, Config{}, nil).Run(context.Background(), "test")
	if err == nil || !strings.Contains(err.Error(), "lost the run lock") || !st.finished[0].Failed {
		t.Fatalf("err %v", err)
	}
}

func TestDedupeKeepsLastRecord(t *testing.T) {
	t.Parallel()
	in := []mps.Task{{TaskID: "a", TaskType: "1"}, {TaskID: "b"}, {TaskID: "a", TaskType: "2"}}
	out := dedupe(in)
	if len(out) != 2 || out[0].TaskType != "2" || out[1].TaskID != "b" {
		t.Fatalf("%+v", out)
	}
}

// A server that repeats the request's token at the end of its list: on a
// short page that is the end; on a full last page it is the end once the
// same token comes back twice.
func TestEchoedTokenEndsTheList(t *testing.T) {
	t.Parallel()
	for _, n := range []int{25, 30} { // a short last page, a full one
		calls := 0
		l := &fakeLister{ListFunc: func(_ context.Context, st mps.Status, token string) (*mps.Page, error) {
			calls++
			p, _ := pagedLister(n, 10).ListFunc(context.Background(), st, token)
			if p.ScrollToken == "" && token != "" {
				p.ScrollToken = token
			}
			return p, nil
		}}
		res, err := New(l, &fakeStore{}, Config{Statuses: []mps.Status{mps.StatusFinish}, PageSize: 10}, nil).Run(context.Background(), "test")
		wantCalls := 3
		if n == 30 {
			wantCalls = 4
		}
		if err != nil || res.Seen != int64(n)+int64(n/30*10) || res.EchoedTokens != 1 || calls != wantCalls {
			t.Fatalf("%d tasks: res %+v, err %v, %d calls", n, res.Progress, err, calls)
		}
	}
}

// historyStore is a fakeStore whose ledger says what a test wants.
type historyStore struct {
	fakeStore
	h RunHistory
}

func (s *historyStore) RunHistory(context.Context) (RunHistory, error) { return s.h, nil }

// TestFailingFullRunsDoNotStopArchiving: once a full run is due and fails,
// full and incremental runs alternate until a full one succeeds, and the
// failures are counted for the alert.
func TestFailingFullRunsDoNotStopArchiving(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, tc := range []struct {
		name     string
		h        RunHistory
		kind     string
		failures int64
	}{
		{"due", RunHistory{LastSuccess: now, LastFull: now, SinceSuccess: time.Minute, SinceLastFull: 25 * time.Hour}, KindFull, 0},
		{"due, the last full failed", RunHistory{LastSuccess: now, LastFull: now, SinceSuccess: time.Minute, SinceLastFull: 30 * time.Hour,
			FullFailures: 3, LastRunFailedFull: true}, KindIncremental, 3},
		{"due, an incremental ran since the failed full", RunHistory{LastSuccess: now, LastFull: now, SinceSuccess: time.Minute,
			SinceLastFull: 30 * time.Hour, FullFailures: 3}, KindFull, 3},
		{"failed full, but the last success is too old", RunHistory{LastSuccess: now, LastFull: now, SinceSuccess: 7 * 24 * time.Hour,
			SinceLastFull: 7 * 24 * time.Hour, FullFailures: 9, LastRunFailedFull: true}, KindFull, 9},
	} {
		st := &historyStore{h: tc.h}
		st.caps = map[string]Capability{CapTimeRange: {Name: CapTimeRange, State: CapSupported, CheckedAt: now}}
		s := New(&fakeLister{}, st, Config{FullEvery: 24 * time.Hour}, nil)
		var res runState
		if err := s.plan(context.Background(), false, &res); err != nil {
			t.Fatal(err)
		}
		if res.Kind != tc.kind || res.fullFailures != tc.failures {
			t.Errorf("%s: %s (%s), %d failures; want %s", tc.name, res.Kind, res.Why, res.fullFailures, tc.kind)
		}
	}
}
