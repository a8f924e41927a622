package details_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/mps"
)

// memQueue is the queue's contract in memory, for the fetcher's own logic.
type memQueue struct {
	mu     sync.Mutex
	jobs   map[string]*details.Job
	leased map[string]bool
	nb     map[string]time.Time
	stored []details.Record
}

func (q *memQueue) ClaimDetails(ctx context.Context, p details.ClaimParams) ([]details.Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var c []*details.Job
	for id, j := range q.jobs {
		if !q.leased[id] && !q.nb[id].After(time.Now()) {
			c = append(c, j)
		}
	}
	sort.Slice(c, func(a, b int) bool { return c[a].Deadline.Before(c[b].Deadline) })
	var out []details.Job
	for _, j := range c {
		if len(out) == p.Limit {
			break
		}
		j.Attempts++
		q.leased[j.TaskID] = true
		out = append(out, *j)
	}
	return out, nil
}
func (q *memQueue) CompleteDetail(ctx context.Context, r details.Record) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.jobs, r.TaskID)
	delete(q.leased, r.TaskID)
	q.stored = append(q.stored, r)
	return true, nil
}
func (q *memQueue) ReleaseDetail(ctx context.Context, p details.ReleaseParams) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.leased, p.TaskID)
	if j := q.jobs[p.TaskID]; j != nil && p.Retry {
		j.LastError = p.Error
		q.nb[p.TaskID] = p.NotBefore
	}
	return nil
}
func (q *memQueue) DetailBacklog(ctx context.Context) (details.Backlog, error) {
	return details.Backlog{}, nil
}

type flakyAPI struct {
	broken atomic.Bool
	calls  atomic.Int64
}

func (a *flakyAPI) TaskDetail(ctx context.Context, _ mps.Source, id string) (*mps.TaskDetail, error) {
	a.calls.Add(1)
	if a.broken.Load() {
		return nil, &mps.APIError{Code: "UnauthorizedOperation", Message: "no"}
	}
	return mps.DecodeTaskDetail(id, []byte(`{"Response":{"TaskType":"EditMediaTask","Status":"FINISH","EditMediaTask":{"TaskId":"`+id+`","Status":"FINISH","ErrCode":0}}}`))
}

// TestFailingStateHoldsUpOnlyFailedCalls: after an outage whose policy is
// fixed without a restart, the oldest queued jobs are past their give-up
// time and need no call: they are recorded at once, not one per pause, so
// the readable jobs behind them are reached, and the failing state ends.
func TestFailingStateHoldsUpOnlyFailedCalls(t *testing.T) {
	t.Parallel()
	now := time.Now()
	q := &memQueue{jobs: map[string]*details.Job{}, leased: map[string]bool{}, nb: map[string]time.Time{}}
	add := func(id string, created time.Time, lastErr string) {
		q.jobs[id] = &details.Job{TaskID: id, Deadline: created.Add(72 * time.Hour), GiveUpAt: created.Add(mps.Window), LastError: lastErr}
	}
	for i := range 5 {
		add(fmt.Sprintf("fresh-%d", i), now.Add(-time.Hour), "")
	}
	api := &flakyAPI{}
	api.broken.Store(true)
	// A pause no test could wait out: only jobs that need no call may pass.
	f := details.New(api, q, details.Config{Workers: 2, SystemicAfter: 5, SystemicPause: time.Hour, RetryAfter: time.Hour}, nil)
	done := make(chan struct{})
	close(done)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Five failed calls: the fifth makes the state systemic and its worker
	// pauses; stop there.
	go func() {
		for {
			if _, failing := f.Failing(); failing {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_ = f.Run(ctx, done)
	if _, failing := f.Failing(); !failing {
		t.Fatal("not failing after five failed reads")
	}
	api.broken.Store(false)
	for i := range 40 {
		add(fmt.Sprintf("old-%02d", i), now.Add(-8*24*time.Hour), "UnauthorizedOperation")
	}
	q.mu.Lock()
	for id := range q.jobs {
		q.nb[id] = time.Time{}
		delete(q.leased, id)
	}
	q.mu.Unlock()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel2()
	if err := f.Run(ctx2, done); err != nil {
		t.Fatal(err)
	}
	if _, failing := f.Failing(); failing || len(q.jobs) != 0 || len(q.stored) != 45 {
		t.Fatalf("failing %v, %d jobs left, %d stored", failing, len(q.jobs), len(q.stored))
	}
}
