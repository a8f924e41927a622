package syncer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// imageActionRequests counts the requests for DescribeImageTasks.
func imageActionRequests(sim *simulator.Server) int64 {
	return sim.Stats().RequestsByAction[mps.ActionDescribeImageTasks]
}

// source is how the run drained the source called name.
func source(res syncer.Result, name string) syncer.SourceOutcome {
	for _, o := range res.Sources {
		if o.Source == name {
			return o
		}
	}
	return syncer.SourceOutcome{}
}

// sourcesConfig drains every source, as the product's default does.
func sourcesConfig() syncer.Config {
	return syncer.Config{Sources: mps.Sources, SkipMissingSources: true, Partitions: 4, FullEvery: 24 * time.Hour,
		RecheckEvery: time.Hour}
}

// TestImageSourceEveryVariant drains media and image tasks against a server
// of each reading of the list (the image list's published example is the
// echoed token), a full run and then incremental ones while tasks move:
// the archive equals the truth for both sources every time, a task both
// lists show is one row, and each source's drain is in the ledger.
func TestImageSourceEveryVariant(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, v := range []simulator.Variant{
		{},
		{EchoLastToken: true},
		{ExclusiveTokens: true},
		{ExclusiveTokens: true, EchoLastToken: true},
		{RejectMovedTokens: true},
		{ExclusiveBounds: true},
		{DefaultStart72h: true},
		{Filters: simulator.FiltersFinishTime},
		{Filters: simulator.FiltersIgnored},
		{Filters: simulator.FiltersUnsupported},
		{ImageTasksInTaskList: true},
		{ImageTasksInTaskList: true, ExclusiveTokens: true},
	} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			clock := simulator.NewClock(now, 0)
			tasks := generated(1200, now, func(c *simulator.GenConfig) {
				c.ImageShare, c.ArrivalsPerHour, c.Horizon = 0.4, 200, 2*time.Hour
			})
			sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1,
				Clock: clock, Variant: v}, tasks)
			r := newRig(t, sim, nil)
			s := syncer.New(r.client, r.st, sourcesConfig(), nil)
			images := 0
			for _, tt := range sim.Truth() {
				if tt.Source == mps.SourceImage.Name {
					images++
				}
			}
			if images < 100 {
				t.Fatalf("only %d image tasks in the truth: the test tests nothing", images)
			}
			for i, step := range []time.Duration{0, 10 * time.Minute, 40 * time.Minute} {
				clock.Advance(step)
				res, err := s.Run(context.Background(), "sources")
				if err != nil {
					t.Fatalf("run %d: %v", i+1, err)
				}
				if len(res.Sources) != 2 || source(res, "image").Status != syncer.SourceSucceeded || source(res, "media").Status != syncer.SourceSucceeded {
					t.Fatalf("run %d sources %+v", i+1, res.Sources)
				}
				if i == 0 && source(res, "image").Kind != syncer.KindFull {
					t.Errorf("the image source's first drain was %s", source(res, "image").Kind)
				}
				if incremental := v.Filters != simulator.FiltersIgnored && v.Filters != simulator.FiltersUnsupported; i > 0 && incremental && res.Kind != syncer.KindIncremental {
					t.Errorf("run %d was %s (%s)", i+1, res.Kind, res.Why)
				}
				// Tasks that left the API's window since stay archived.
				archivetest.AssertMatchesTruthSince(t, r.dbURL, sim.Truth(), clock.Now().Add(-simulator.Retention))
			}
			if n := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM sync_run_sources WHERE status = 'succeeded'`); n != 6 {
				t.Errorf("%d source outcomes recorded, want 6", n)
			}
			if n := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM tasks WHERE source = 'image' AND task_type <> 'ImageTask'`); n != 0 {
				t.Errorf("%d image tasks typed otherwise", n)
			}
		})
	}
}

// TestEndpointWithoutImageTasks: an endpoint older than DescribeImageTasks
// (InvalidAction) costs one request when first met and one per recheck
// period after, not one per run; the media source is archived all along;
// once the endpoint serves the action, its tasks come in. A source named
// in the configuration that the endpoint lacks fails the run, the media
// tasks still committed.
func TestEndpointWithoutImageTasks(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	clock := simulator.NewClock(now, 0)
	tasks := generated(800, now, func(c *simulator.GenConfig) { c.ImageShare = 0.3 })
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1,
		Clock: clock, Variant: simulator.Variant{ImageTasks: simulator.ImageTasksUnsupported}}, tasks)
	r := newRig(t, sim, nil)
	s := syncer.New(r.client, r.st, sourcesConfig(), nil)
	for i := range 5 {
		res, err := s.Run(context.Background(), "old endpoint")
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		if got := source(res, "image").Status; got != syncer.SourceSkipped {
			t.Fatalf("run %d: image source %s", i+1, got)
		}
	}
	if n := imageActionRequests(sim); n != 1 {
		t.Fatalf("5 runs asked the endpoint for DescribeImageTasks %d times, want once", n)
	}
	if got := pgtest.Scalar[string](t, r.dbURL, `SELECT state FROM api_capabilities WHERE name = 'image:action'`); got != syncer.CapUnsupported {
		t.Fatalf("remembered %q", got)
	}
	media := 0
	for _, tt := range sim.Truth() {
		if tt.Source != mps.SourceImage.Name {
			media++
		}
	}
	if n := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM tasks`); n != int64(media) {
		t.Fatalf("%d tasks archived, want the %d media tasks", n, media)
	}

	// Named in the configuration: the run fails, saying so (asked each
	// run: it works as soon as the endpoint does); the media source's pages
	// are committed all the same.
	named := sourcesConfig()
	named.SkipMissingSources = false
	res, err := syncer.New(r.client, r.st, named, nil).Run(context.Background(), "named")
	if err == nil || !strings.Contains(err.Error(), "does not serve DescribeImageTasks") {
		t.Fatalf("a named source the endpoint lacks: %v", err)
	}
	if source(res, "media").Status != syncer.SourceSucceeded || source(res, "image").Status != syncer.SourceFailed {
		t.Fatalf("sources %+v", res.Sources)
	}
	if n := imageActionRequests(sim); n != 2 {
		t.Fatalf("%d DescribeImageTasks requests, want 2", n)
	}

	// A day later (past RecheckEvery) the endpoint has the action: it is
	// asked once again, and the image tasks are archived.
	sim.SetVariant(simulator.Variant{})
	pgtest.Exec(t, r.dbURL, `UPDATE api_capabilities SET checked_at = checked_at - interval '2 hours' WHERE name = 'image:action'`)
	if _, err := s.Run(context.Background(), "upgraded endpoint"); err != nil {
		t.Fatal(err)
	}
	r.assertMatchesTruth(t)
	if got := pgtest.Scalar[string](t, r.dbURL, `SELECT state FROM api_capabilities WHERE name = 'image:action'`); got != syncer.CapSupported {
		t.Fatalf("remembered %q after the upgrade", got)
	}
}

// TestOneSourceFailingKeepsTheOther: the image list fails for good (an
// InternalError past the client's retries) while the media list works: the run fails, naming the image source, its media
// pages committed; the ledger says which source failed.
func TestOneSourceFailingKeepsTheOther(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	tasks := generated(600, now, func(c *simulator.GenConfig) { c.ImageShare = 0.3 })
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1,
		Clock: simulator.NewClock(now, 0)}, tasks)
	r := newRig(t, sim, nil)
	cfg := sourcesConfig()
	bad := &failingImageLister{Lister: r.client}
	res, err := syncer.New(bad, r.st, cfg, nil).Run(context.Background(), "image fails")
	if err == nil || !strings.Contains(err.Error(), mps.ActionDescribeImageTasks) {
		t.Fatalf("run error %v", err)
	}
	if source(res, "media").Status != syncer.SourceSucceeded || source(res, "image").Status != syncer.SourceFailed {
		t.Fatalf("sources %+v", res.Sources)
	}
	row := pgtest.Query(t, r.dbURL, `SELECT r.status, s.status, s.error FROM sync_runs r JOIN sync_run_sources s ON s.run_id = r.id
 WHERE r.id = $1 AND s.source = 'image'`, res.RunID)[0]
	if row[0] != "failed" || row[1] != "failed" || !strings.Contains(row[2].(string), "InternalError") {
		t.Fatalf("ledger %v", row)
	}
	media := 0
	for _, tt := range sim.Truth() {
		if tt.Source != mps.SourceImage.Name {
			media++
		}
	}
	if n := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM tasks WHERE source = 'media'`); n != int64(media) {
		t.Fatalf("%d media tasks committed by the failed run, want %d", n, media)
	}
	// The next run, the image list back, archives everything.
	if _, err := syncer.New(r.client, r.st, cfg, nil).Run(context.Background(), "image back"); err != nil {
		t.Fatal(err)
	}
	r.assertMatchesTruth(t)
}

// failingImageLister fails every DescribeImageTasks page with a server error.
type failingImageLister struct{ syncer.Lister }

func (f *failingImageLister) ListTasks(ctx context.Context, q mps.Query) (*mps.Page, error) {
	if q.Source.Of() == mps.SourceImage {
		return nil, &mps.APIError{Action: mps.ActionDescribeImageTasks, Code: mps.CodeInternalError, Message: "internal error"}
	}
	return f.Lister.ListTasks(ctx, q)
}
