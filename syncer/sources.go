// A run drains each source in turn (DescribeTasks, DescribeImageTasks, …)
// through the same drain: the source is a parameter of every request, of
// what is learned of the API, and of the archive's reads. A source's
// failure is recorded as its own and does not stop the others: each page
// is committed as it is drained, whatever happens after.

package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// query is a request of the run's current source for status st.
func (res *runState) query(st mps.Status) mps.Query {
	return mps.Query{Source: res.src, Status: st}
}

// capName is the capability name of the current source: the media
// source's are the names the archive has always used.
func capName(src mps.Source, name string) string {
	if src = src.Of(); src == mps.SourceMedia {
		return name
	}
	return src.Name + ":" + name
}

// capability reads what is known of the current source's API.
func (s *Syncer) capability(ctx context.Context, res *runState, name string) (Capability, error) {
	name = capName(res.src, name)
	c, err := s.store.Capability(ctx, name)
	if c.Name == "" {
		c.Name = name
	}
	return c, err
}

// drainSources drains every configured source, each as the run planned or,
// for a source that has never been drained in full (one just added) or
// not for too long, in full. It returns the sources' errors joined.
func (s *Syncer) drainSources(ctx context.Context, res *runState) error {
	planned, why := res.Kind, res.Why
	var errs []error
	var drained []mps.Status
	allFull, first := true, true
	for _, src := range s.cfg.Sources {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src.ListAction, ctx.Err()))
			break
		}
		out := SourceOutcome{Source: src.Name}
		res.src, res.Kind, res.Why, res.Drained, res.seen = src, planned, why, nil, nil
		before, lists, details, bound := res.Progress, s.calls.list.Load(), s.calls.detail.Load(), res.LowerBound
		err := s.drainSource(ctx, res, &out)
		res.LowerBound = bound
		out.Seen, out.Inserted, out.Updated = res.Seen-before.Seen, res.Inserted-before.Inserted, res.Updated-before.Updated
		out.ListRequests, out.DetailRequests = s.calls.list.Load()-lists, s.calls.detail.Load()-details
		out.Kind, out.Drained = res.Kind, slices.Clone(res.Drained)
		switch {
		case err != nil:
			out.Status, out.Error = SourceFailed, err.Error()
			if len(s.cfg.Sources) > 1 {
				err = fmt.Errorf("%s: %w", src.ListAction, err)
			}
			errs = append(errs, err)
		case out.Status == "":
			out.Status = SourceSucceeded
		}
		if out.Status != SourceSkipped {
			if out.Kind != KindFull {
				allFull = false
			}
			if first {
				drained, first = out.Drained, false
			} else {
				drained = slices.DeleteFunc(drained, func(st mps.Status) bool { return !slices.Contains(out.Drained, st) })
			}
		}
		if out.Status == SourceFailed && len(s.cfg.Sources) > 1 {
			s.log.Warn("a source failed this run; the others go on, and what it committed stays", "run_id", res.RunID,
				"source", src.Name, "error", out.Error)
		}
		res.Sources = append(res.Sources, out)
	}
	res.src, res.seen, res.Drained = mps.Source{}, nil, drained
	res.Kind, res.Why = planned, why
	if planned == KindIncremental && allFull && !first {
		res.Kind, res.Why = KindFull, "every source drained in full"
	}
	for _, o := range res.Sources {
		if o.Source == mps.SourceMedia.Name && o.Kind == KindFull && planned == KindIncremental {
			// The media source fell back to a full drain (its filters gone,
			// its last success too old): the run says why.
			res.Why = "the media source drained in full"
		}
	}
	return errors.Join(errs...)
}

// sourcePlan makes an incremental run full for the current source where
// the source's own history asks for it: never drained in full (a source
// just added), its last success too old, or (not media) its time filters
// known not to work; otherwise the FINISH lower bound reaches back to the
// source's own last success when that is older than the run's (the media
// source after runs that drained image tasks alone). The media source of
// an archive older than the per-source ledger has none: the run's plan
// stands.
func (s *Syncer) sourcePlan(ctx context.Context, res *runState) error {
	src := res.src
	h, err := s.store.SourceHistory(ctx, src.Name)
	if err != nil {
		return fmt.Errorf("read the run ledger: %w", err)
	}
	if src == mps.SourceMedia && h.LastSuccess.IsZero() {
		return nil
	}
	switch {
	case h.LastFull.IsZero():
		res.Kind, res.Why = KindFull, "first run of the "+src.Name+" source"
		return nil
	case h.SinceSuccess > tooOld:
		res.Kind, res.Why = KindFull, "the "+src.Name+" source's last success is too old"
		return nil
	}
	if last := h.LastSuccess.Add(-s.cfg.Overlap).Truncate(time.Second); last.Before(res.LowerBound) {
		res.LowerBound = last
	}
	if src != mps.SourceMedia {
		c, err := s.capability(ctx, res, CapTimeRange)
		if err != nil {
			return fmt.Errorf("read what the API supports: %w", err)
		}
		if c.State != "" && c.State != CapSupported && time.Since(c.CheckedAt) < s.cfg.RecheckEvery {
			res.Kind, res.Why = KindFull, src.ListAction+"'s time filters are "+c.State
		}
	}
	return nil
}

// drainSource drains the run's current source. A source other than media
// whose list the API does not serve (an older endpoint) is remembered, and
// not asked again for RecheckEvery; it is skipped, unless the
// configuration names it (SkipMissingSources false): then it fails, asked
// each run.
func (s *Syncer) drainSource(ctx context.Context, res *runState, out *SourceOutcome) error {
	src := res.src
	if res.Kind == KindIncremental {
		if err := s.sourcePlan(ctx, res); err != nil {
			return err
		}
	}
	var action Capability
	if src != mps.SourceMedia {
		var err error
		if action, err = s.capability(ctx, res, CapAction); err != nil {
			return fmt.Errorf("read what the API supports: %w", err)
		}
		// Skipped without a request while the finding is fresh; a source
		// the configuration names is asked every run (it fails the run
		// while the endpoint lacks it, and works the run after it has it).
		fresh := action.State != "" && time.Since(action.CheckedAt) < s.cfg.RecheckEvery
		if fresh && action.State == CapUnsupported && s.cfg.SkipMissingSources {
			out.Status = SourceSkipped
			return nil
		}
	}
	var err error
	if res.Kind == KindIncremental {
		err = s.drainIncremental(ctx, res)
	} else {
		err = s.drainAll(ctx, res)
	}
	if src == mps.SourceMedia {
		return err
	}
	// Only the source's first request (no status drained yet, its first
	// page, unfiltered) says the endpoint lacks the action; a refusal
	// later is the drain's failure.
	var pe *pageError
	missing := err != nil && mps.ActionMissing(err) && len(res.Drained) == 0 && errors.As(err, &pe) && pe.page == 1 && !pe.ranged
	switch {
	case missing:
		s.learn(ctx, action, CapUnsupported, err, res)
		if s.cfg.SkipMissingSources {
			out.Status = SourceSkipped
			return nil
		}
		return fmt.Errorf("the API does not serve %s: remove %q from sync.sources, or leave it empty for every source the API serves: %w",
			src.ListAction, src.Name, err)
	case err == nil && (action.State != CapSupported || time.Since(action.CheckedAt) >= s.cfg.RecheckEvery):
		s.learn(ctx, action, CapSupported, nil, res)
	}
	return err
}
