// The drain: cursors fetched ahead, pages written by a pool of writers,
// and the paging protocol with the invariants a drain can observe.

package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// cursor is a place in one list: the next request, and the last record of
// the page before it (to ask again from, should the API skip the token).
type cursor struct {
	q        mps.Query
	prevLast string
}

// fetched is a page on its way to the writers.
type fetched struct {
	page *mps.Page
	q    mps.Query
	n    int
	// status is the list its tasks are archived under: the drain's, or for
	// a task recovered by DescribeTaskDetail the status the detail gave.
	status mps.Status
	// recovered marks a one-task page read by DescribeTaskDetail.
	recovered bool
}

// drain walks the pages of one status's cursors qs. Fetchers (one per
// cursor) fetch ahead while Writers goroutines commit pages; this goroutine
// only counts. The channels hold a page per cursor, so memory stays at a few
// pages whatever the archive's size. With maxPages > 0 each cursor stops
// after that many pages, and the cursors not yet at their end are returned,
// ready to go on.
func (s *Syncer) drain(ctx context.Context, status mps.Status, qs []cursor, maxPages int, res *runState) (rest []cursor, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	began, pages0, seen0 := time.Now(), res.Pages, res.Seen
	defer func() {
		if err == nil {
			s.log.Debug("status drained", "run_id", res.RunID, "status", status, "cursors", len(qs),
				"pages", res.Pages-pages0, "tasks", res.Seen-seen0, "seconds", time.Since(began).Round(time.Millisecond).Seconds())
		}
	}()
	pages := make(chan fetched, len(qs))
	fetchErrs := make(chan fetchResult, len(qs))
	// A failed fetch stops the other cursors but lets the writers commit what
	// was already fetched; a failed write stops everything.
	fetchCtx, cancelFetch := context.WithCancel(ctx)
	defer cancelFetch()
	var fetchers sync.WaitGroup
	for _, q := range qs {
		fetchers.Add(1)
		go func() {
			defer fetchers.Done()
			fr := s.fetch(fetchCtx, q, maxPages, pages)
			if fr.err != nil {
				cancelFetch()
			}
			fetchErrs <- fr
		}()
	}
	go func() { fetchers.Wait(); close(pages); close(fetchErrs) }()

	type written struct {
		f     fetched
		tasks int
		pr    PageResult
		err   error
	}
	done := make(chan written, s.cfg.Writers)
	var writers sync.WaitGroup
	for range s.cfg.Writers {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for f := range pages {
				if ctx.Err() != nil {
					continue // drain the channel so the fetchers can exit
				}
				tasks := dedupe(f.page.Tasks)
				pr, err := s.store.WritePage(ctx, WritePageParams{RunID: res.RunID, Source: f.q.Source.Of().Name, Status: f.status, Tasks: tasks,
					EnqueueDetails: s.enqueue(f), DetailRetention: s.cfg.DetailRetention})
				if err != nil {
					cancel()
				}
				done <- written{f: f, tasks: len(tasks), pr: pr, err: err}
			}
		}()
	}
	go func() { writers.Wait(); close(done) }()

	var writeErr error
	if res.lastProgress.IsZero() {
		res.lastProgress = time.Now()
	}
	for w := range done {
		if w.err != nil {
			if writeErr == nil && !(errors.Is(w.err, context.Canceled) && ctx.Err() != nil) {
				writeErr = fmt.Errorf("write page %d of %s: %w", w.f.n, status, w.err)
			}
			continue
		}
		p := w.f.page
		if res.APIStarted.IsZero() {
			s.observeClock(res, p.ServerTime)
		}
		if !w.f.recovered {
			res.Pages++
		}
		if res.seen != nil {
			for i := range p.Tasks {
				res.seen[res.seenKey(p.Tasks[i].TaskID)] = struct{}{}
			}
		}
		res.Seen += int64(w.tasks)
		res.Inserted += w.pr.Inserted
		res.Updated += w.pr.Updated
		res.Unchanged += w.pr.Unchanged
		res.Skipped += int64(p.Skipped)
		res.Warnings += int64(p.Warnings())
		if s.cfg.OnPage != nil {
			s.cfg.OnPage(PageEvent{RunID: res.RunID, Status: w.f.status, Page: w.f.n, Tasks: w.tasks, PageResult: w.pr})
		}
		if time.Since(res.lastProgress) >= s.cfg.ProgressEvery {
			res.lastProgress = time.Now()
			if err := s.store.RecordProgress(ctx, res.Progress); err != nil && ctx.Err() == nil {
				s.log.Warn("could not record run progress", "run_id", res.RunID, "error", err)
			}
		}
	}
	// The first real failure wins over the cancellations it caused.
	var fetchErr error
	for fr := range fetchErrs {
		res.Events.add(fr.Events)
		res.DetailErrors += fr.detailErrors
		if fr.next != nil {
			rest = append(rest, *fr.next)
		}
		if fr.err != nil && (fetchErr == nil || errors.Is(fetchErr, context.Canceled) && !errors.Is(fr.err, context.Canceled)) {
			fetchErr = fr.err
		}
	}
	if writeErr != nil {
		return nil, writeErr
	}
	if fetchErr != nil && errors.Is(fetchErr, context.Canceled) && ctx.Err() != nil {
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
	}
	return rest, fetchErr
}

// rangeSlack absorbs bounds that are exclusive, or rounded to the second.
const rangeSlack = time.Second

// countOutside counts the records that no reading of q's range admits: both
// CreateTime and FinishTime known and outside it. A record missing either
// time proves nothing.
func countOutside(tasks []mps.Task, q mps.Query) int64 {
	out := func(t time.Time) bool {
		return !t.IsZero() && (t.Before(q.Start.Add(-rangeSlack)) || t.After(q.End.Add(rangeSlack)))
	}
	var n int64
	for i := range tasks {
		if out(tasks[i].CreateTime) && out(tasks[i].FinishTime) {
			n++
		}
	}
	return n
}

type fetchResult struct {
	Events
	detailErrors int64
	next         *cursor // where the cursor goes on, when maxPages stopped it
	err          error
}

// fetch follows one cursor's ScrollTokens to the end of its list, checking
// what a drain can observe of the API's paging:
//
//   - The page after token T should start with T's task. If T's task is not
//     on it at all, the API skipped it (tokens that point past their record,
//     or a task that moved away): T is read by DescribeTaskDetail and
//     archived under the status the detail gives.
//   - An empty token ends the list, and so does a short page that repeats
//     the request's token (or a full one that repeats it twice in a row).
//     Any other token seen twice, or more pages than the cap, ends the drain
//     with an error. TotalCount is never consulted:
//     the API page's own examples disagree about it.
//   - A rejected token (a parameter error or a missing resource, the API
//     documents no code of its own for it) restarts the cursor from the top,
//     at most MaxRestarts times a run; a rejected first page stays fatal.
//   - A ranged page must hold only records in its range; one that does not
//     ends the drain with errFilterIgnored (after its page is written).
func (s *Syncer) fetch(ctx context.Context, c cursor, maxPages int, out chan<- fetched) fetchResult {
	var fr fetchResult
	q, prevLast := c.q, c.prevLast
	seen := map[string]struct{}{}
	top := q
	top.ScrollToken = ""
	send := func(f fetched) bool {
		select {
		case out <- f:
			return true
		case <-ctx.Done():
			fr.err = ctx.Err()
			return false
		}
	}
	echoed := false // the last page repeated its request's token
	for n := 1; ; n++ {
		if n > s.cfg.MaxPagesPerStatus {
			fr.err = fmt.Errorf("drain %s: more than %d pages; stopping (raise sync.max_pages_per_status if the account really is this large)", q.Status, s.cfg.MaxPagesPerStatus)
			return fr
		}
		if maxPages > 0 && n > maxPages {
			fr.next = &cursor{q: q, prevLast: prevLast}
			return fr
		}
		page, err := s.lister.ListTasks(ctx, q)
		if err != nil {
			if q.ScrollToken != "" && mps.TokenRejected(mps.ErrorCode(err)) && fr.Restarts < int64(s.cfg.MaxRestarts) {
				s.log.Debug("scroll token rejected; restarting the cursor from the top", "status", q.Status, "page", n, "error", err)
				fr.Restarts++
				q, n, prevLast, echoed = top, 0, "", false
				clear(seen)
				continue
			}
			if ctx.Err() != nil {
				fr.err = ctx.Err()
			} else {
				fr.err = &pageError{page: n, ranged: q.Ranged(), err: fmt.Errorf("fetch page %d of %s: %w", n, q.Status, err)}
			}
			return fr
		}
		if q.ScrollToken != "" && !holds(page.Tasks, q.ScrollToken) {
			if fr.err = s.recoverSkipped(ctx, q, prevLast, n, send, &fr); fr.err != nil {
				return fr
			}
		}
		if !send(fetched{page: page, q: q, n: n, status: q.Status}) {
			return fr
		}
		if q.Ranged() {
			if k := countOutside(page.Tasks, q); k > 0 {
				fr.OutOfRange += k
				fr.err = fmt.Errorf("drain %s: page %d held %d records outside the requested %s…%s: %w", q.Status, n, k,
					q.Start.Format(time.RFC3339), q.End.Format(time.RFC3339), errFilterIgnored)
				return fr
			}
		}
		next := page.ScrollToken
		if next == "" {
			return fr
		}
		if next == q.ScrollToken {
			// A server that repeats the request's token at the end of its
			// list does so on a full last page too: ask once more, and a
			// second echo is the end.
			if len(page.Tasks) < s.cfg.PageSize || echoed {
				fr.EchoedTokens++
				return fr
			}
			echoed = true
			continue
		}
		echoed = false
		if _, dup := seen[next]; dup {
			fr.err = fmt.Errorf("drain %s: the API returned ScrollToken %q twice; stopping instead of looping", q.Status, next)
			return fr
		}
		seen[next] = struct{}{}
		if len(page.Tasks) > 0 {
			prevLast = page.Tasks[len(page.Tasks)-1].TaskID
		}
		q.ScrollToken = next
	}
}

// recoverSkipped archives the task of token q.ScrollToken, which the page
// after it skipped. A task FINISH in the archive (from this source's list)
// needs nothing more; any other is read by the source's detail action (its
// own quota, not the list's); where the detail is gone (its retention can be shorter than the
// list's), the list is asked once more from the record before the token,
// prevLast, which a server whose pages start after their token answers
// from the token's record on.
func (s *Syncer) recoverSkipped(ctx context.Context, q mps.Query, prevLast string, n int, send func(fetched) bool, fr *fetchResult) error {
	id := q.ScrollToken
	if st, err := s.store.TaskStatus(ctx, q.Source.Of().Name, id); err != nil {
		return fmt.Errorf("read task %s, skipped by page %d of %s: %w", id, n, q.Status, err)
	} else if st == mps.StatusFinish {
		fr.TokensRecovered++
		return nil
	}
	d, err := s.lister.TaskDetail(ctx, q.Source, id)
	if err == nil {
		st := d.Status
		if st.Rank() == 0 {
			st = q.Status
		}
		if send(fetched{page: &mps.Page{Tasks: []mps.Task{d.ListTask()}, ServerTime: d.ServerTime}, q: q, n: n, status: st, recovered: true}) {
			fr.TokensRecovered++
		}
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !mps.Gone(mps.ErrorCode(err)) {
		// That task's problem, not the run's: counted, and the next run
		// meets it again.
		fr.detailErrors++
		s.log.Debug("could not read a task the list skipped; the next run tries again", "task_id", id, "status", q.Status, "page", n, "error", err)
		return nil
	}
	if prevLast != "" {
		again := q
		again.ScrollToken = prevLast
		if page, err := s.lister.ListTasks(ctx, again); err == nil && holds(page.Tasks, id) {
			if send(fetched{page: page, q: again, n: n, status: q.Status, recovered: true}) {
				fr.TokensRecovered++
			}
			return nil
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fr.TokensLost++
	s.log.Debug("a task skipped by the list is gone from DescribeTaskDetail too", "task_id", id, "status", q.Status, "page", n)
	return nil
}

// pageError is a page the API did not give, and where it was.
type pageError struct {
	page   int
	ranged bool
	err    error
}

func (e *pageError) Error() string { return e.err.Error() }

func (e *pageError) Unwrap() error { return e.err }

// holds reports whether tasks has the TaskId id.
func holds(tasks []mps.Task, id string) bool {
	for i := range tasks {
		if tasks[i].TaskID == id {
			return true
		}
	}
	return false
}

// dedupe keeps the last record of each TaskId: one INSERT … ON CONFLICT
// cannot touch a row twice.
func dedupe(tasks []mps.Task) []mps.Task {
	if len(tasks) < 2 {
		return tasks
	}
	pos := make(map[string]int, len(tasks))
	out := tasks[:0:0]
	for _, t := range tasks {
		if i, ok := pos[t.TaskID]; ok {
			out[i] = t
			continue
		}
		pos[t.TaskID] = len(out)
		out = append(out, t)
	}
	return out
}
