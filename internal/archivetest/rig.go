package archivetest

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
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
