package e2e

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// TestUsageThroughTheBinary: a sync reads usage when usage.schedule has come
// round (the first time: a backfill), not again before it comes round
// again; `usage` reads it now; the log says what each run did and never
// a secret; bad usage settings are one-line errors (exit 1, as every invalid
// configuration).
func TestUsageThroughTheBinary(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(300, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	env["MPS_USAGE_MODE"] = "on"
	env["MPS_USAGE_RATE_LIMIT"] = "100"

	r := run(t, env, "sync")
	if r.code != 0 || !strings.Contains(r.stderr, `"msg":"usage run succeeded"`) {
		t.Fatalf("sync: exit %d:\n%s", r.code, r.stderr)
	}
	if got := scalar(t, db, `SELECT count(*) FROM usage_runs WHERE status = 'succeeded' AND backfill AND trigger = 'sync'`); got != 1 {
		t.Fatalf("%d backfill runs recorded by the sync, want 1", got)
	}
	queries := len(a.sim.UsageQueries())
	if want := len(mps.UsageRegions) * 5; queries != want {
		t.Errorf("the backfill sent %d queries, want %d (5 per region)", queries, want)
	}
	if scalar(t, db, `SELECT count(*) FROM usage_daily`) == 0 {
		t.Fatal("no usage archived")
	}

	// Not due again until the schedule comes round.
	if r := run(t, env, "sync"); r.code != 0 || strings.Contains(r.stderr, "usage run") {
		t.Fatalf("second sync: exit %d, or it read usage again:\n%s", r.code, r.stderr)
	}
	if n := len(a.sim.UsageQueries()); n != queries {
		t.Errorf("the second sync sent %d usage queries", n-queries)
	}

	r = run(t, env, "usage")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Read usage ") {
		t.Fatalf("usage: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if n := len(a.sim.UsageQueries()) - queries; n != len(mps.UsageRegions) {
		t.Errorf("a refresh sent %d queries, want one per region (%d)", n, len(mps.UsageRegions))
	}
	if got := scalar(t, db, `SELECT count(*) FROM usage_runs WHERE status = 'succeeded'`); got != 2 {
		t.Errorf("%d successful usage runs, want 2", got)
	}
	if strings.Contains(r.stderr+r.stdout, secretKey) {
		t.Error("the usage run's output holds the secret key")
	}
	// status says where usage stands.
	r = run(t, env, "status", "--format", "json")
	var st struct {
		Usage *struct {
			LastSuccess *time.Time `json:"last_success"`
			ReadThrough *time.Time `json:"read_through"`
			Pairs       int        `json:"regions_x_types"`
		} `json:"usage"`
		Attention []string `json:"attention"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Usage == nil || st.Usage.LastSuccess == nil || st.Usage.ReadThrough == nil ||
		st.Usage.Pairs != len(mps.UsageRegions)*len(mps.UsageTypes) || !st.Usage.ReadThrough.Equal(mps.UsageDay(time.Now())) {
		t.Errorf("status: %v\n%s", err, r.stdout)
	}
	for _, a := range st.Attention {
		if strings.Contains(a, "usage") {
			t.Errorf("status: %q", a)
		}
	}

	for _, c := range []struct {
		env, value, want string
		code             int
	}{
		{"MPS_USAGE_MODE", "off", "usage.mode is off", 2},
		{"MPS_USAGE_TYPES", "Transcode,Trans;coding", `usage.types (MPS_USAGE_TYPES): "Trans;coding" is not a type name`, 1},
		{"MPS_USAGE_REFRESH_DAYS", "120", "usage.refresh_days (MPS_USAGE_REFRESH_DAYS): 120 is outside 1..90", 1},
		{"MPS_USAGE_SCHEDULE", "every day", "usage.schedule (MPS_USAGE_SCHEDULE)", 1},
	} {
		bad := maps.Clone(env)
		bad[c.env] = c.value
		r := run(t, bad, "usage")
		if r.code != c.code || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%s=%s: exit %d, want %d and one line with %q:\n%s", c.env, c.value, r.code, c.code, c.want, r.stderr)
		}
	}
}

// TestBadUsageSettingsDoNotStopSync: a wrong usage setting is logged and
// no usage is read, but tasks are archived all the same (they would leave
// the API's window).
func TestBadUsageSettingsDoNotStopSync(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(50, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	env["MPS_USAGE_MODE"], env["MPS_USAGE_SCHEDULE"] = "on", "every day"
	r := run(t, env, "sync")
	if r.code != 0 || !strings.Contains(r.stderr, "billed usage is not read: its settings are invalid") || !strings.Contains(r.stderr, "usage.schedule (MPS_USAGE_SCHEDULE)") {
		t.Fatalf("sync: exit %d:\n%s", r.code, r.stderr)
	}
	if scalar(t, db, `SELECT count(*) FROM tasks`) == 0 || len(a.sim.UsageQueries()) != 0 {
		t.Errorf("tasks archived: %d; usage queries: %d", scalar(t, db, `SELECT count(*) FROM tasks`), len(a.sim.UsageQueries()))
	}
}

// TestUsageFailureIsLoud: when DescribeUsageData fails (a CAM policy
// without it), `usage` exits 1 naming the code, a sync still exits 0 (its
// tasks are drained and committed), and `status` asks for attention.
func TestUsageFailureIsLoud(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(50, now, nil), simulator.NewClock(now, 0),
		simulator.Faults{ErrorRate: 1, ErrorCodes: []string{"UnauthorizedOperation"}, Actions: []string{mps.ActionDescribeUsageData}})
	db := migrated(t)
	env := baseEnv(a, db)
	env["MPS_USAGE_MODE"], env["MPS_USAGE_RATE_LIMIT"] = "on", "100"
	if r := run(t, env, "sync"); r.code != 0 || !strings.Contains(r.stderr, `"msg":"usage run failed"`) || !strings.Contains(r.stderr, "UnauthorizedOperation") {
		t.Fatalf("sync: exit %d:\n%s", r.code, r.stderr)
	}
	if r := run(t, env, "usage"); r.code != 1 || !strings.Contains(r.stderr, "UnauthorizedOperation") {
		t.Fatalf("usage: exit %d:\n%s", r.code, r.stderr)
	}
	r := run(t, env, "status")
	if r.code != 4 || !strings.Contains(r.stdout, "billed usage has not been read since the install: the last usage run failed") {
		t.Fatalf("status: exit %d:\n%s", r.code, r.stdout)
	}
	if got := scalar(t, db, `SELECT count(*) FROM usage_runs WHERE status = 'failed' AND error LIKE '%UnauthorizedOperation%'`); got != 2 {
		t.Errorf("%d failed usage runs recorded, want 2", got)
	}
}
