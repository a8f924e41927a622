package syncer

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/mps"
)

// plan decides the run's kind. A run is full when asked, when FullEvery is
// off, on the first run, when the last full success is FullEvery old, when
// the last success is too old for an incremental run to reach back to it
// safely, or when the API's time filters are not known to work. Otherwise
// it is incremental, its FINISH lower bound the last successful run's start
// on the API's clock, minus Overlap. A failed run never moves the bound.
func (s *Syncer) plan(ctx context.Context, forceFull bool, res *runState) error {
	res.Kind = KindFull
	switch {
	case forceFull:
		res.Why = "asked"
		return nil
	case s.cfg.FullEvery <= 0:
		res.Why = "incremental runs are off"
		return nil
	}
	h, err := s.store.RunHistory(ctx)
	if err != nil {
		return fmt.Errorf("read the run ledger: %w", err)
	}
	c, err := s.store.Capability(ctx, CapTimeRange)
	if err != nil {
		return fmt.Errorf("read what the API supports: %w", err)
	}
	res.fullFailures = h.FullFailures
	incremental := false
	switch {
	case h.LastFull.IsZero():
		res.Why = "first run"
	case h.SinceSuccess > tooOld:
		res.Why = "the last success is too old"
	case c.State != CapSupported:
		res.Why = "the API's time filters are " + cmp.Or(c.State, "not known yet")
	case h.SinceLastFull >= s.cfg.FullEvery && !h.LastRunFailedFull:
		res.Why = "due"
	case h.SinceLastFull >= s.cfg.FullEvery:
		// A full run that keeps failing (a run timeout on a huge account, a
		// bound the API rejects) must not stop archiving: full and
		// incremental runs alternate until a full one succeeds, and the
		// failures are counted for the alert.
		s.log.Warn("a full run is due but the last one failed; this run is incremental so that archiving goes on, the next tries full again",
			"full_failures", h.FullFailures)
		incremental = true
	default:
		incremental = true
	}
	if incremental {
		res.Kind, res.Why = KindIncremental, ""
		// The last success's start on the API's clock, never later than on
		// this machine's: a Date that ran ahead must not move the bound past
		// tasks it has to list.
		last := h.LastSuccess
		if max := s.cfg.MaxClockSkew; max > 0 {
			if local := s.cfg.Now().Add(-h.SinceSuccess + max); local.Before(last) {
				last = local
			}
		}
		res.lastSuccess = last
		res.LowerBound = last.Add(-s.cfg.Overlap).Truncate(time.Second)
	}
	return nil
}

// tooOld is how old the last success may be for an incremental run: older,
// and tasks may have left the API's window since (a coverage gap), which
// only a full run can say.
const tooOld = Window - 24*time.Hour

// drainIncremental reads only what can have changed since the last
// successful run: WAITING and PROCESSING in full, FINISH from the lower
// bound on, then every archived in-flight task none of those listed, one
// DescribeTaskDetail each. Whichever task time StartTime/EndTime filter
// on, every change is met: a task that finished since the bound is in the
// FINISH listing under a FinishTime filter; under a CreateTime filter one
// created before the bound was archived in flight by an earlier run, and
// is resolved here by its detail. Where the filters turn out rejected or
// ignored, the run drains FINISH in full instead.
func (s *Syncer) drainIncremental(ctx context.Context, res *runState) error {
	res.seen, res.seenSeed = map[uint64]struct{}{}, maphash.MakeSeed()
	for _, st := range []mps.Status{mps.StatusWaiting, mps.StatusProcessing} {
		if _, err := s.drain(ctx, st, []cursor{{q: res.query(st)}}, 0, res); err != nil {
			return err
		}
		res.Drained = append(res.Drained, st)
	}
	// The ledger's ages are on the archive's clock; the window is on the
	// API's, known since the first answer.
	if s.apiNow(res).Sub(res.lastSuccess) > tooOld {
		res.Kind, res.Why, res.seen = KindFull, "the last success is too old", nil
		if err := s.drainFinishAny(ctx, res); err != nil {
			return err
		}
		res.Drained = append(res.Drained, mps.StatusFinish)
		return nil
	}
	q := res.query(mps.StatusFinish)
	q.Start, q.End = res.LowerBound, s.apiNow(res).Add(partitionMargin).Truncate(time.Second)
	_, err := s.drain(ctx, mps.StatusFinish, []cursor{{q: q}}, 0, res)
	if state, ok := filterFinding(err); ok && state != CapSupported {
		prev, cerr := s.capability(ctx, res, CapTimeRange)
		if cerr != nil {
			return fmt.Errorf("read what the API supports: %w", cerr)
		}
		s.learn(ctx, prev, state, err, res)
		res.Kind, res.Why, res.seen, res.Drained = KindFull, "the API's time filters are "+state, nil, nil
		return s.drainAll(ctx, res)
	} else if err != nil {
		return err
	}
	if s.cfg.Details == DetailsFailed {
		if err := s.drainFailed(ctx, res); err != nil {
			return err
		}
	}
	res.Drained = append(res.Drained, mps.StatusFinish)
	return s.resolveVanished(ctx, res)
}

// inFlightBatch is how many archived in-flight tasks are read at a time.
const inFlightBatch = 1000

// resolveVanished reads the detail of every archived in-flight task this
// run did not list: it finished (archived FINISH, with its outcome), moved
// on, or left the API's window unfinished (recorded as gone). The archive
// is read a batch at a time and resolved tasks are written a page of each
// status at a time, so memory does not grow with the backlog. A detail
// that cannot be read is that task's problem (counted, read again next
// run); when the first reads all fail alike, the rest wait for the next
// run rather than cost a request each.
func (s *Syncer) resolveVanished(ctx context.Context, res *runState) error {
	detailsOn := s.cfg.Details != DetailsNone && s.cfg.Details != ""
	pending := map[mps.Status][]mps.Task{}
	flush := func(st mps.Status) error {
		tasks := pending[st]
		if len(tasks) == 0 {
			return nil
		}
		pending[st] = nil
		p := WritePageParams{RunID: res.RunID, Source: res.src.Of().Name, Status: st, Tasks: tasks}
		if st == mps.StatusFinish && detailsOn {
			// Those whose outcome was not stored from the detail in hand (it
			// had not settled) are queued to be read again.
			p.EnqueueDetails, p.DetailRetention = EnqueueListed, s.cfg.DetailRetention
		}
		pr, err := s.store.WritePage(ctx, p)
		if err != nil {
			return fmt.Errorf("write %d resolved %s tasks: %w", len(tasks), st, err)
		}
		res.Seen += int64(len(tasks))
		res.Inserted += pr.Inserted
		res.Updated += pr.Updated
		res.Unchanged += pr.Unchanged
		return nil
	}
	var failedInARow int64
	var lastErr error
	var gone []string
	for after := ""; ; {
		batch, err := s.store.InFlightTasks(ctx, res.src.Of().Name, after, inFlightBatch)
		if err != nil {
			return err
		}
		for _, t := range batch {
			if _, ok := res.seen[res.seenKey(t.TaskID)]; ok {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if failedInARow >= systemicDetailErrors {
				res.Unresolved++
				continue
			}
			d, err := s.lister.TaskDetail(ctx, res.src, t.TaskID)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if !mps.Gone(mps.ErrorCode(err)) {
					res.DetailErrors++
					res.Unresolved++
					failedInARow++
					lastErr = err
					s.log.Debug("could not resolve an in-flight task; the next run tries again", "task_id", t.TaskID, "error", err)
					continue
				}
				// The detail can be gone (3 days on the international site)
				// while the list still holds the task: only a task past the
				// list's window is known to have left it.
				if !t.CreateTime.IsZero() && s.apiNow(res).Sub(t.CreateTime) > Window {
					gone = append(gone, t.TaskID)
				} else {
					res.Unresolved++
				}
				continue
			}
			failedInARow = 0
			st := d.Status
			if st.Rank() == 0 {
				res.Unresolved++
				continue
			}
			res.Resolved++
			if pending[st] = append(pending[st], resolvedTask(t, d)); len(pending[st]) == mps.MaxLimit {
				if err := flush(st); err != nil {
					return err
				}
			}
			if st == mps.StatusFinish && detailsOn {
				// The detail in hand is the outcome (no second read), unless
				// it has not settled: then the page queues it.
				if rec := details.Capture(d, details.Defaults.MaxRawBytes); !rec.Outcome.Unsettled || rec.Outcome.Result == mps.OutcomeFailed {
					if _, err := s.store.CompleteDetail(ctx, rec); err != nil {
						return fmt.Errorf("store detail of %s: %w", t.TaskID, err)
					}
				}
			}
		}
		if len(gone) > 0 {
			if err := s.store.MarkGone(ctx, gone); err != nil {
				return err
			}
			res.Gone += int64(len(gone))
			gone = gone[:0]
		}
		if len(batch) < inFlightBatch {
			break
		}
		after = batch[len(batch)-1].TaskID
	}
	if failedInARow >= systemicDetailErrors {
		s.log.Warn("DescribeTaskDetail fails for every in-flight task; the rest wait for the next run (a full run lists them all)",
			"run_id", res.RunID, "error", lastErr)
	}
	for _, st := range mps.Statuses {
		if err := flush(st); err != nil {
			return err
		}
	}
	return nil
}

// systemicDetailErrors failed detail reads in a row stop a run's
// resolving: the rest are left for the next run.
const systemicDetailErrors = 10

// resolvedTask is the archived record of an in-flight task with the status
// and times its detail gives: its type and SubTaskTypes stay as the list
// wrote them.
func resolvedTask(t InFlightTask, d *mps.TaskDetail) mps.Task {
	var rec map[string]any
	if json.Unmarshal(t.Raw, &rec) != nil || rec == nil {
		return d.ListTask()
	}
	for k, v := range map[string]time.Time{"CreateTime": d.CreateTime, "BeginProcessTime": d.BeginProcessTime, "FinishTime": d.FinishTime} {
		if !v.IsZero() {
			rec[k] = mps.FormatTime(v)
		}
	}
	rec["ArchiverSource"] = mps.RecoveredSource
	raw, err := json.Marshal(rec)
	if err != nil {
		return d.ListTask()
	}
	task, ok := mps.DecodeTask(raw)
	if !ok {
		return d.ListTask()
	}
	return task
}
