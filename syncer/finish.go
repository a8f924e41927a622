// How FINISH is drained in full: partitioned where the API's time filters
// are known to read CreateTime, one cursor otherwise, and what is learned
// of the filters on the way.

package syncer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

func (s *Syncer) drainAll(ctx context.Context, res *runState) error {
	for _, st := range s.cfg.Statuses {
		var err error
		if st == mps.StatusFinish {
			err = s.drainFinishAny(ctx, res)
		} else {
			_, err = s.drain(ctx, st, []cursor{{q: res.query(st)}}, 0, res)
		}
		if err != nil {
			return err
		}
		res.Drained = append(res.Drained, st)
	}
	return nil
}

// enqueue says which tasks of a page are queued for detail capture.
func (s *Syncer) enqueue(f fetched) string {
	switch {
	case f.q.SubTaskHasFailed != nil && *f.q.SubTaskHasFailed:
		return EnqueueListed
	case s.cfg.Details == DetailsAll:
		return EnqueueFinished
	}
	return ""
}

// drainFailed lists FINISH with SubTaskHasFailed=true and queues what it
// lists for detail capture. Where the API rejects the filter (learned and
// remembered like the time filters), every FINISH task without a detail is
// queued instead: the failed ones are among them.
func (s *Syncer) drainFailed(ctx context.Context, res *runState) error {
	prev, err := s.capability(ctx, res, CapFailedFilter)
	if err != nil {
		return fmt.Errorf("read what the API supports: %w", err)
	}
	fresh := prev.State != "" && time.Since(prev.CheckedAt) < s.cfg.RecheckEvery
	if !fresh || prev.State == CapSupported {
		yes := true
		q := res.query(mps.StatusFinish)
		q.SubTaskHasFailed = &yes
		if res.Kind == KindIncremental {
			// Like FINISH's: a failed task from before the bound is resolved
			// by its detail when it vanishes from the in-flight lists.
			q.Start, q.End = res.LowerBound, s.apiNow(res).Add(partitionMargin).Truncate(time.Second)
		}
		_, err := s.drain(ctx, mps.StatusFinish, []cursor{{q: q}}, 0, res)
		switch {
		case err == nil:
			if !fresh {
				s.learn(ctx, prev, CapSupported, nil, res)
			}
			return nil
		case !mps.UnknownParameter(err, "SubTaskHasFailed"):
			return err
		}
		s.learn(ctx, prev, CapUnsupported, err, res)
	}
	if _, err := s.store.EnqueueUndetailed(ctx, s.cfg.DetailRetention); err != nil {
		return err
	}
	return nil
}

// errFilterIgnored is wrapped when a ranged page held records outside its
// range.
var errFilterIgnored = errors.New("the API ignored the time filter")

// drainFinish drains FINISH as time partitions where the API honours
// StartTime/EndTime on CreateTime, and as one unfiltered cursor otherwise.
// What is known of the filters is read from the archive, shared by every
// replica; a missing finding, or one older than RecheckEvery, is learned
// again from a probe: the first page of a middle partition, fetched alone,
// so that a server that rejects or ignores the filters costs one request
// more than a single cursor. Every ranged page is checked as well, so a
// finding that goes stale mid-run is caught.
//
// Partitions are safe only on CreateTime, which every task has: a filter
// on FinishTime cannot match a FINISH record without one (Tencent's
// international examples show such records), so there, or while the field
// is not known, FINISH is one unfiltered cursor. It costs the same
// requests, only less concurrency. The first page of a ranged cursor that
// the API refuses (a bound it will not take) also falls back to one
// unfiltered cursor rather than failing every full run.
func (s *Syncer) drainFinish(ctx context.Context, res *runState) error {
	prev, err := s.capability(ctx, res, CapTimeRange)
	if err != nil {
		return fmt.Errorf("read what the API supports: %w", err)
	}
	if res.src.Of() == mps.SourceMedia {
		res.TimeRange = prev.State
	}
	one := []cursor{{q: res.query(mps.StatusFinish)}}
	fresh := prev.State != "" && time.Since(prev.CheckedAt) < s.cfg.RecheckEvery
	if fresh && prev.State != CapSupported {
		_, err := s.drain(ctx, mps.StatusFinish, one, 0, res)
		return err
	}
	qs := s.partitions(res, s.apiNow(res))
	if !fresh {
		i := len(qs) / 2
		rest, err := s.drain(ctx, mps.StatusFinish, qs[i:i+1], 1, res)
		if state, ok := filterFinding(err); ok {
			s.learn(ctx, prev, state, err, res)
			if state != CapSupported {
				_, err := s.drain(ctx, mps.StatusFinish, one, 0, res)
				return err
			}
			qs = append(append(qs[:i:i], qs[i+1:]...), rest...)
			prev.State = CapSupported
		} else if boundRefused(err) {
			s.log.Warn("DescribeTasks refused a time-ranged first page; FINISH is drained as one cursor this run", "error", err)
			_, err := s.drain(ctx, mps.StatusFinish, one, 0, res)
			return err
		} else {
			return err
		}
	}
	field, err := s.timeField(ctx, res)
	if err != nil {
		return err
	}
	if field != FieldCreateTime {
		// The partitions already drained (the probe's) are a subset of the
		// one cursor's list: re-listing them changes nothing.
		_, err := s.drain(ctx, mps.StatusFinish, one, 0, res)
		return err
	}
	_, err = s.drain(ctx, mps.StatusFinish, qs, 0, res)
	if state, ok := filterFinding(err); ok && state != CapSupported {
		s.learn(ctx, prev, state, err, res)
		_, err = s.drain(ctx, mps.StatusFinish, one, 0, res)
	} else if boundRefused(err) {
		s.log.Warn("DescribeTasks refused a time-ranged first page; FINISH is drained as one cursor this run", "error", err)
		_, err = s.drain(ctx, mps.StatusFinish, one, 0, res)
	}
	return err
}

// boundRefused reports whether a ranged drain failed on a first page the
// API refused as a bad parameter value (a bound outside what it takes).
func boundRefused(err error) bool {
	var pe *pageError
	return errors.As(err, &pe) && pe.page == 1 && pe.ranged && strings.HasPrefix(mps.ErrorCode(err), mps.CodeInvalidParameter) &&
		mps.ErrorCode(err) != mps.CodeInvalidLimit
}

// timeField is which task time the API's time filters read, as learned,
// probed again after RecheckEvery: an archived task whose FinishTime is
// well after its CreateTime is asked for by a narrow range around each
// time; the range that lists it names the field. "" while no such task is
// archived yet (a first run), or the probe is inconclusive.
func (s *Syncer) timeField(ctx context.Context, res *runState) (string, error) {
	prev, err := s.capability(ctx, res, CapTimeField)
	if err != nil {
		return "", fmt.Errorf("read what the API supports: %w", err)
	}
	if prev.State != "" && time.Since(prev.CheckedAt) < s.cfg.RecheckEvery {
		return prev.State, nil
	}
	now := s.apiNow(res)
	t, ok, err := s.store.ProbeTask(ctx, res.src.Of().Name, now.Add(-Window+time.Hour), probeSpan)
	if err != nil {
		return "", fmt.Errorf("find a task to probe the time filters with: %w", err)
	}
	if !ok {
		return prev.State, nil
	}
	for _, f := range []struct {
		field string
		at    time.Time
	}{{FieldCreateTime, t.CreateTime}, {FieldFinishTime, t.FinishTime}} {
		q := res.query(mps.StatusFinish)
		q.Start, q.End = f.at.Add(-time.Second).Truncate(time.Second), f.at.Add(2*time.Second).Truncate(time.Second)
		page, err := s.lister.ListTasks(ctx, q)
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			s.log.Debug("could not probe which time the API's filters read", "error", err)
			return prev.State, nil
		}
		if holds(page.Tasks, t.TaskID) {
			c := Capability{Name: prev.Name, State: f.field, CheckedAt: time.Now(), Detail: "probed with task " + t.TaskID}
			if err := s.store.SetCapability(ctx, c); err != nil && ctx.Err() == nil {
				s.log.Warn("could not record what the API supports", "capability", c.Name, "error", err)
			}
			if prev.State != f.field {
				s.log.Debug(res.src.Of().ListAction+"' StartTime/EndTime filter on "+f.field, "capability", c.Name, "was", cmp.Or(prev.State, "unknown"))
			}
			return f.field, nil
		}
	}
	return prev.State, nil
}

// probeSpan is how far apart a probe task's two times must be for a
// narrow range to hold one and not the other.
const probeSpan = 10 * time.Second

// filterFinding reads what a ranged drain's outcome says of the time
// filters; ok is false when it says nothing (another error).
func filterFinding(err error) (state string, ok bool) {
	switch {
	case err == nil:
		return CapSupported, true
	case errors.Is(err, errFilterIgnored):
		return CapIgnored, true
	case mps.UnknownParameter(err, "StartTime", "EndTime"):
		return CapUnsupported, true
	}
	return "", false
}

// learn records a finding about the API and logs it when it changed.
func (s *Syncer) learn(ctx context.Context, prev Capability, state string, cause error, res *runState) {
	name := prev.Name
	if name == CapTimeRange {
		res.TimeRange = state
	}
	action := res.src.Of().ListAction
	base := strings.TrimPrefix(name, res.src.Of().Name+":")
	c := Capability{Name: name, State: state, CheckedAt: time.Now()}
	if cause != nil {
		c.Detail = cause.Error()
	}
	if err := s.store.SetCapability(ctx, c); err != nil && ctx.Err() == nil {
		s.log.Warn("could not record what the API supports", "capability", name, "error", err)
	}
	if prev.State == state {
		return
	}
	was := cmp.Or(prev.State, "unknown")
	attrs := []any{"capability", name, "state", state, "was", was}
	verb := map[string]string{CapSupported: "honours", CapIgnored: "ignores", CapUnsupported: "rejects"}[state]
	switch base {
	case CapTimeRange:
		if state == CapSupported {
			s.log.Debug(action+" honours StartTime/EndTime: FINISH is drained in time partitions", append(attrs, "partitions", s.cfg.Partitions)...)
			return
		}
		s.log.Warn(action+" "+verb+" StartTime/EndTime: FINISH is drained as one cursor (checked again in "+s.cfg.RecheckEvery.String()+")",
			append(attrs, "detail", c.Detail)...)
	case CapFailedFilter:
		if state == CapSupported {
			s.log.Debug(action+" honours SubTaskHasFailed: details.mode failed reads the failed tasks' details only", attrs...)
			return
		}
		s.log.Warn(action+" "+verb+" SubTaskHasFailed: details.mode failed reads the detail of every finished task (checked again in "+s.cfg.RecheckEvery.String()+")",
			append(attrs, "detail", c.Detail)...)
	case CapAction:
		if state == CapSupported {
			s.log.Info("the API serves "+action+": its tasks are archived", attrs...)
			return
		}
		s.log.Warn("the API does not serve "+action+": the "+res.src.Of().Name+" source is skipped (checked again in "+s.cfg.RecheckEvery.String()+")",
			append(attrs, "detail", c.Detail)...)
	}
}

// partitionMargin widens the partitioned span beyond the API's window at
// both ends, for clock skew and whatever time the window is measured on.
const partitionMargin = time.Hour

// partitions returns the FINISH cursors: Partitions contiguous time ranges
// spanning the API's window ending at now, each with both bounds, each
// overlapping the next by a second (bounds may be exclusive).
func (s *Syncer) partitions(res *runState, now time.Time) []cursor {
	p := s.cfg.Partitions
	from := now.Add(-Window - partitionMargin).Truncate(time.Second)
	to := now.Add(partitionMargin).Truncate(time.Second)
	step := to.Sub(from) / time.Duration(p)
	out := make([]cursor, p)
	for i := range out {
		q := res.query(mps.StatusFinish)
		q.Start, q.End = from, to
		if i > 0 {
			q.Start = from.Add(time.Duration(i)*step - time.Second).Truncate(time.Second)
		}
		if i < p-1 {
			q.End = from.Add(time.Duration(i+1)*step + time.Second).Truncate(time.Second)
		}
		out[i].q = q
	}
	return out
}

// drainFinishAny drains FINISH in full (partitioned where that pays and is
// safe, learning what the API's filters do wherever incremental runs or
// partitions need it), and the failed list where details.mode asks for it.
func (s *Syncer) drainFinishAny(ctx context.Context, res *runState) error {
	var err error
	if s.cfg.Partitions > 1 || s.cfg.FullEvery > 0 {
		// Incremental runs need to know what the filters do, whatever the
		// partition count: one partition learns it too.
		err = s.drainFinish(ctx, res)
	} else {
		_, err = s.drain(ctx, mps.StatusFinish, []cursor{{q: res.query(mps.StatusFinish)}}, 0, res)
	}
	if err == nil && s.cfg.Details == DetailsFailed {
		err = s.drainFailed(ctx, res)
	}
	return err
}
