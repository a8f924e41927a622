package archivetest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
	"github.com/mps-archiver/mps-archiver/usage"
)

// Rig is the simulator behind real HTTP, the real client signing with the
// SDK, and a fresh archive database: what the syncer's and the detail
// fetcher's integration tests share.
type Rig struct {
	Sim    *simulator.Server
	DB     string
	Store  *storage.Store
	Client *mpsclient.Client
}

// NewRig starts sim over HTTP and opens a fresh database. The client is
// unthrottled with fast retries unless mod says otherwise; id and key are
// the credentials the simulator accepts.
func NewRig(t testing.TB, sim *simulator.Server, id, key string, mod func(*mpsclient.Config)) *Rig {
	t.Helper()
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	cfg := mpsclient.Config{
		Endpoint:        hs.URL,
		Credential:      common.NewCredential(id, key),
		RateLimit:       10_000,
		DetailRateLimit: 10_000,
		UsageRateLimit:  10_000,
		Burst:           100,
		RequestTimeout:  5 * time.Second,
		BackoffBase:     time.Millisecond,
		BackoffMax:      10 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	client, err := mpsclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &Rig{Sim: sim, DB: pgtest.NewDB(t), Client: client}
	if r.Store, err = storage.Open(context.Background(), r.DB, storage.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Store.Close)
	return r
}

// MonthEnd is an archive that spans two months: media and image tasks
// (n over the week before, 20% image, 30% failing, both SubTaskTypes
// vocabularies, and arrivals after), synced with their outcomes on the
// last evening of January 2026 and again three days later (so tasks in
// flight then changed status since), and a year of billed usage up to the
// clock's day: what the cold-storage tests export.
func MonthEnd(t testing.TB, id, key string, n int) *Rig {
	t.Helper()
	now := time.Date(2026, 1, 31, 23, 50, 0, 0, time.UTC)
	cfg := simulator.DefaultGenConfig()
	cfg.Tasks, cfg.FailureShare, cfg.ImageShare, cfg.Vocabulary = n, 0.3, 0.2, simulator.VocabularyMixed
	cfg.ArrivalsPerHour, cfg.Horizon = 10, 3*24*time.Hour
	clock := simulator.NewClock(now, 0)
	sim := simulator.New(simulator.Config{Credentials: map[string]string{id: key}, RateLimit: -1, Clock: clock},
		simulator.Generate(cfg, now))
	r := NewRig(t, sim, id, key, nil)
	ctx := context.Background()
	s := syncer.New(r.Client, r.Store, syncer.Config{Sources: mps.Sources, Partitions: 4, Details: syncer.DetailsAll, DetailRetention: 72 * time.Hour}, nil)
	for _, advance := range []time.Duration{0, 3 * 24 * time.Hour} {
		clock.Advance(advance)
		if _, err := s.Run(ctx, "month end"); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		close(done)
		if err := details.New(r.Client, r.Store, details.Config{RetryAfter: time.Millisecond}, nil).Run(ctx, done); err != nil {
			t.Fatal(err)
		}
	}
	u := usage.New(usage.Config{Regions: mps.UsageRegions, Types: mps.UsageTypes, RefreshDays: 7, Now: clock.Now},
		r.Client, r.Store, slog.New(slog.DiscardHandler))
	if _, err := u.Run(ctx, "month end"); err != nil {
		t.Fatal(err)
	}
	return r
}
