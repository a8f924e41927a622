package verify

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"sigs.k8s.io/yaml"
)

// overlaysWithRules are where PrometheusRules ship.
var overlaysWithRules = []string{"../base", "../overlays/cronjob"}

// pushgatewaySeries are what a Pushgateway adds to each pushed group.
var pushgatewaySeries = []string{"push_time_seconds", "push_failure_time_seconds"}

func promParser() parser.Parser { return parser.NewParser(parser.Options{}) }

// shippedRules renders each overlay and returns its PrometheusRules' groups
// as a Prometheus rule file, by object name.
func shippedRules(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, dir := range overlaysWithRules {
		for k, o := range render(t, dir) {
			pr, ok := o.(*monitoringv1.PrometheusRule)
			if !ok {
				continue
			}
			j, err := json.Marshal(pr.Spec)
			if err != nil {
				t.Fatal(err)
			}
			y, err := yaml.JSONToYAML(j)
			if err != nil {
				t.Fatal(err)
			}
			out[dir+": "+k] = y
		}
	}
	if len(out) != 2 {
		t.Fatalf("want the base's and the cronjob overlay's PrometheusRule, got %d", len(out))
	}
	return out
}

// TestRulesPassPromtoolChecks applies what `promtool check rules` does: the
// rule file decodes strictly, every expression parses, templates in labels
// and annotations parse, names are valid, no group or alert is duplicated.
func TestRulesPassPromtoolChecks(t *testing.T) {
	for name, file := range shippedRules(t) {
		groups, errs := rulefmt.Parse(file, false, model.UTF8Validation, promParser(), promslog.NewNopLogger())
		for _, err := range errs {
			t.Errorf("%s: %v", name, err)
		}
		if groups == nil {
			continue
		}
		seen := map[string]bool{}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				if seen[r.Alert] {
					t.Errorf("%s: alert %s defined twice", name, r.Alert)
				}
				seen[r.Alert] = true
				if r.Labels["severity"] != "warning" && r.Labels["severity"] != "critical" {
					t.Errorf("%s: %s has severity %q", name, r.Alert, r.Labels["severity"])
				}
				if r.Annotations["summary"] == "" {
					t.Errorf("%s: %s has no summary", name, r.Alert)
				}
				// The first response to every alert is written down, and
				// the alert links to it.
				if r.Annotations["runbook_url"] != runbookURL {
					t.Errorf("%s: %s has runbook_url %q, want %s", name, r.Alert, r.Annotations["runbook_url"], runbookURL)
				}
				if !strings.Contains(operationsAlerts(t), "| `"+r.Alert+"`") {
					t.Errorf("%s: %s has no row in docs/operations.md's Alerts table", name, r.Alert)
				}
			}
		}
	}
}

// runbookURL is where every alert's meaning and first response are.
const runbookURL = "https://github.com/mps-archiver/mps-archiver/blob/main/docs/operations.md#alerts"

// operationsAlerts is the Alerts section of docs/operations.md.
func operationsAlerts(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n## Alerts\n")
	if !ok {
		t.Fatal("docs/operations.md has no Alerts section")
	}
	section, _, _ := strings.Cut(after, "\n## ")
	return section
}

// inventory reads deploy/metrics.txt, which the main module's
// TestMetricsInventory keeps equal to what the binary exports: metric name
// to label names.
func inventory(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("../../metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		var labels []string
		if len(fields) > 2 {
			labels = strings.Split(fields[2], ",")
		}
		out[fields[0]] = labels
		if fields[1] == "histogram" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				out[fields[0]+suffix] = append(slices.Clone(labels), "le")
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("metrics.txt lists only %d metrics", len(out))
	}
	return out
}

// CheckSeries reports every series selector of expr that names a metric
// the binary does not export, or a label that metric does not carry.
func CheckSeries(expr string, known map[string][]string, extra ...string) []error {
	e, err := promParser().ParseExpr(expr)
	if err != nil {
		return []error{err}
	}
	var errs []error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if slices.Contains(extra, vs.Name) {
			return nil
		}
		labels, ok := known[vs.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("no metric %s is exported", vs.Name))
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != model.MetricNameLabel && m.Name != "job" && m.Name != "instance" && !slices.Contains(labels, m.Name) {
				errs = append(errs, fmt.Errorf("%s has no label %s (it has %v)", vs.Name, m.Name, labels))
			}
		}
		return nil
	})
	return errs
}

// TestRuleMetricsExist: every series an alert reads is one the binary
// exports (a renamed metric would make its alert silent forever).
func TestRuleMetricsExist(t *testing.T) {
	known := inventory(t)
	for name, file := range shippedRules(t) {
		groups, errs := rulefmt.Parse(file, false, model.UTF8Validation, promParser(), promslog.NewNopLogger())
		if len(errs) > 0 {
			t.Fatalf("%s: %v", name, errs)
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				for _, err := range CheckSeries(r.Expr, known, pushgatewaySeries...) {
					t.Errorf("%s: %s: %v", name, r.Alert, err)
				}
			}
		}
	}
}

// alertStates evaluates each alert of a rule file every minute over the
// loaded series, honouring `for` for each series as Prometheus does, and
// returns, per alert and minute, the label sets that were firing.
func alertStates(t *testing.T, file []byte, series string, until time.Duration) map[string][]map[string]bool {
	t.Helper()
	groups, errs := rulefmt.Parse(file, false, model.UTF8Validation, promParser(), promslog.NewNopLogger())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	st := promqltest.LoadedStorage(t, series)
	defer st.Close()
	eng := promqltest.NewTestEngine(t, false, 5*time.Minute, 1_000_000)
	out := map[string][]map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			since := map[string]time.Duration{} // when each series became active
			var states []map[string]bool
			for at := time.Duration(0); at <= until; at += time.Minute {
				q, err := eng.NewInstantQuery(context.Background(), st, nil, r.Expr, time.Unix(0, 0).Add(at))
				if err != nil {
					t.Fatalf("%s: %v", r.Alert, err)
				}
				res := q.Exec(context.Background())
				if res.Err != nil {
					t.Fatalf("%s: %v", r.Alert, res.Err)
				}
				v, err := res.Vector()
				if err != nil {
					t.Fatalf("%s: %v", r.Alert, err)
				}
				q.Close()
				active, firingNow := map[string]time.Duration{}, map[string]bool{}
				for _, s := range v {
					k := s.Metric.String()
					start, ok := since[k]
					if !ok {
						start = at
					}
					active[k] = start
					if at-start >= time.Duration(r.For) {
						firingNow[k] = true
					}
				}
				since = active
				states = append(states, firingNow)
			}
			out[r.Alert] = states
		}
	}
	return out
}

// firing returns the alerts of a rule file that fired over the loaded
// series, and when each first did.
func firing(t *testing.T, file []byte, series string, until time.Duration) map[string]time.Duration {
	t.Helper()
	fired := map[string]time.Duration{}
	for alert, states := range alertStates(t, file, series, until) {
		for minute, firingNow := range states {
			if len(firingNow) > 0 {
				fired[alert] = time.Duration(minute) * time.Minute
				break
			}
		}
	}
	return fired
}

func severities(t *testing.T, file []byte) map[string]string {
	t.Helper()
	groups, _ := rulefmt.Parse(file, false, model.UTF8Validation, promParser(), promslog.NewNopLogger())
	out := map[string]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Labels["severity"]
		}
	}
	return out
}

// freshWarnings may fire while a fresh install backfills: outcomes of tasks
// already older than details.retention are lost before it starts (true,
// and worth a warning), not because it is failing.
var freshWarnings = []string{"MPSArchiverDetailsFallingBehind", "MPSArchiverDetailsExpiring"}

// TestAlertsOnAFreshInstall evaluates the shipped alerts over what a fresh
// install exports while its first drain runs for three hours (retention
// headroom counted from its first run, no success yet): nothing critical
// fires. Against it, scenarios that must fire do: a last success 6.5 days
// old, syncs failing, a CronJob that stopped pushing.
func TestAlertsOnAFreshInstall(t *testing.T) {
	files := shippedRules(t)
	serve, cron := files["../base: PrometheusRule/mps-archiver"], files["../overlays/cronjob: PrometheusRule/mps-archiver-sync"]
	if serve == nil || cron == nil {
		t.Fatalf("rule files: %v", slices.Collect(func(yield func(string) bool) {
			for k := range files {
				yield(k)
			}
		}))
	}
	const steps = "x180" // three hours of one-minute samples
	for _, tc := range []struct {
		name   string
		file   []byte
		series string
		want   []string // alerts that must fire; any other critical one fails
	}{
		{"serve, first drain under way", serve, `load 1m
			mps_archiver_retention_headroom_seconds 604800-60` + steps + `
			mps_archiver_retention_deadline_timestamp_seconds 604800+0` + steps + `
			mps_archiver_last_success_timestamp_seconds 0+0` + steps + `
			mps_archiver_last_run_failed 0+0` + steps + `
			mps_archiver_sync_runs_total{result="succeeded"} 0+0` + steps + `
			mps_archiver_sync_runs_total{result="failed"} 0+0` + steps + `
			mps_archiver_coverage_gaps_total 0+0` + steps + `
			mps_archiver_detail_deadline_headroom_seconds -86400+0` + steps + `
			mps_archiver_details_total{outcome="expired"} 0+10` + steps + `
			mps_archiver_detail_gave_up 0+0` + steps + `
			mps_archiver_proof_checkpoint_errors_total 0+0` + steps, nil},
		{"serve, last success 6.5 days old", serve, `load 1m
			mps_archiver_retention_headroom_seconds 43200-60` + steps + `
			mps_archiver_last_run_failed 1+0` + steps + `
			mps_archiver_sync_runs_total{result="failed"} 0+1` + steps + `
			mps_archiver_coverage_gaps_total 0+0` + steps,
			[]string{"MPSArchiverRetentionHeadroomLow", "MPSArchiverRetentionHeadroomCritical", "MPSArchiverSyncFailing"}},
		// The engine's clock starts at 0: a last success "two days and an
		// hour before it" is a negative time.
		{"serve, usage last read over two days ago", serve, `load 1m
			mps_archiver_retention_headroom_seconds 604800-60` + steps + `
			mps_archiver_retention_deadline_timestamp_seconds 604800+0` + steps + `
			mps_archiver_last_success_timestamp_seconds 0+0` + steps + `
			mps_archiver_last_run_failed 0+0` + steps + `
			mps_archiver_sync_runs_total{result="succeeded"} 0+0` + steps + `
			mps_archiver_sync_runs_total{result="failed"} 0+0` + steps + `
			mps_archiver_coverage_gaps_total 0+0` + steps + `
			mps_archiver_usage_last_success_timestamp_seconds -176400+0` + steps + `
			mps_archiver_usage_runs_total{result="failed"} 0+1` + steps,
			[]string{"MPSArchiverUsageStale"}},
		{"cronjob, usage last read over two days ago", cron, `load 1m
			mps_archiver_retention_deadline_timestamp_seconds{job="mps-archiver-sync"} 604800+0` + steps + `
			push_time_seconds{job="mps-archiver-sync"} 0+60` + steps + `
			mps_archiver_last_run_failed{job="mps-archiver-sync"} 0+0` + steps + `
			mps_archiver_coverage_gaps_total{job="mps-archiver-sync"} 0+0` + steps + `
			mps_archiver_usage_last_success_timestamp_seconds{job="mps-archiver-sync"} -176400+0` + steps,
			[]string{"MPSArchiverUsageStale"}},
		{"serve, checkpoints refused run after run", serve, `load 1m
			mps_archiver_retention_headroom_seconds 604800-60` + steps + `
			mps_archiver_retention_deadline_timestamp_seconds 604800+0` + steps + `
			mps_archiver_last_success_timestamp_seconds 0+0` + steps + `
			mps_archiver_last_run_failed 0+0` + steps + `
			mps_archiver_sync_runs_total{result="failed"} 0+0` + steps + `
			mps_archiver_coverage_gaps_total 0+0` + steps + `
			mps_archiver_proof_checkpoint_errors_total 0+0.2` + steps,
			[]string{"MPSArchiverProofCheckpointFailing"}},
		{"cronjob, checkpoints failing", cron, `load 1m
			mps_archiver_retention_deadline_timestamp_seconds{job="mps-archiver-sync"} 604800+0` + steps + `
			push_time_seconds{job="mps-archiver-sync"} 0+60` + steps + `
			mps_archiver_last_run_failed{job="mps-archiver-sync"} 0+0` + steps + `
			mps_archiver_coverage_gaps_total{job="mps-archiver-sync"} 0+0` + steps + `
			mps_archiver_proof_checkpoint_errors_total{job="mps-archiver-sync"} 1+0` + steps,
			[]string{"MPSArchiverProofCheckpointFailing"}},
		{"serve, a cold month stuck for a day", serve, `load 1m
			mps_archiver_retention_deadline_timestamp_seconds 604800+0` + steps + `
			mps_archiver_last_success_timestamp_seconds 0+0` + steps + `
			mps_archiver_last_run_failed 0+0` + steps + `
			mps_archiver_sync_runs_total{result="failed"} 0+0` + steps + `
			mps_archiver_coverage_gaps_total 0+0` + steps + `
			mps_archiver_cold_month_stuck_seconds 80000+60` + steps,
			[]string{"MPSArchiverColdMonthStuck"}},
		{"cronjob, a cold month stuck for a day", cron, `load 1m
			mps_archiver_retention_deadline_timestamp_seconds{job="mps-archiver-sync"} 604800+0` + steps + `
			push_time_seconds{job="mps-archiver-sync"} 0+60` + steps + `
			mps_archiver_last_run_failed{job="mps-archiver-sync"} 0+0` + steps + `
			mps_archiver_coverage_gaps_total{job="mps-archiver-sync"} 0+0` + steps + `
			mps_archiver_cold_month_stuck_seconds{job="mps-archiver-sync"} 90000+0` + steps,
			[]string{"MPSArchiverColdMonthStuck"}},
		{"cronjob, first sync under way", cron, `load 1m
			mps_archiver_retention_deadline_timestamp_seconds{job="mps-archiver-sync"} 604800+0` + steps + `
			push_time_seconds{job="mps-archiver-sync"} 0+60` + steps + `
			mps_archiver_last_run_failed{job="mps-archiver-sync"} 0+0` + steps + `
			mps_archiver_coverage_gaps_total{job="mps-archiver-sync"} 0+0` + steps, nil},
		{"cronjob, stopped pushing 6.5 days after its last success", cron, `load 1m
			mps_archiver_retention_deadline_timestamp_seconds{job="mps-archiver-sync"} 43200+0` + steps + `
			push_time_seconds{job="mps-archiver-sync"} 0+0` + steps + `
			mps_archiver_last_run_failed{job="mps-archiver-sync"} 1+0` + steps,
			[]string{"MPSArchiverSyncNotReporting", "MPSArchiverRetentionHeadroomLow", "MPSArchiverRetentionHeadroomCritical", "MPSArchiverSyncFailing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fired := firing(t, tc.file, tc.series, 3*time.Hour)
			sev := severities(t, tc.file)
			for _, a := range tc.want {
				if _, ok := fired[a]; !ok {
					t.Errorf("%s did not fire (fired: %v)", a, fired)
				}
			}
			for a, at := range fired {
				if slices.Contains(tc.want, a) {
					continue
				}
				if sev[a] == "critical" || !slices.Contains(freshWarnings, a) {
					t.Errorf("%s (%s) fired after %s", a, sev[a], at)
				}
			}
			t.Logf("fired: %v", fired)
		})
	}
}

// TestPushedAlertsHoldAcrossPushes evaluates the cronjob overlay's rules
// over what a Pushgateway serves. Every sync is a new process: one that
// finds a coverage gap and expired details pushes counters of 1 and 4, and
// the next one, five minutes later, pushes 0 for both. The alerts must
// hold while the condition does (24 hours after the archive recorded it),
// across every push, and then end. With two instances pushing to one
// Pushgateway, each is judged on its own group: one that stops pushing is
// reported, with its name, while the other goes on.
func TestPushedAlertsHoldAcrossPushes(t *testing.T) {
	cron := shippedRules(t)["../overlays/cronjob: PrometheusRule/mps-archiver-sync"]
	if cron == nil {
		t.Fatal("no cronjob rules")
	}
	t.Run("a gap and expired details, then quieter syncs", func(t *testing.T) {
		// Nothing for 10 minutes; the sync at minute 10 finds the gap (at
		// 600 s) and details that expired (the last at 590 s); then a sync
		// every 5 minutes, one sample a minute for 25 hours.
		const l = `{job="mps-archiver-sync", instance="cron-a"}`
		series := `load 1m
			push_time_seconds` + l + ` _x10 600+60x1490
			mps_archiver_last_run_failed` + l + ` _x10 0x1490
			mps_archiver_retention_deadline_timestamp_seconds` + l + ` _x10 604800x1490
			mps_archiver_detail_deadline_headroom_seconds` + l + ` _x10 200000x1490
			mps_archiver_coverage_gaps_total` + l + ` _x10 1x4 0x1485
			mps_archiver_details_total{job="mps-archiver-sync", instance="cron-a", outcome="expired"} _x10 4x4 0x1485
			mps_archiver_last_coverage_gap_timestamp_seconds` + l + ` _x10 600x1490
			mps_archiver_last_detail_expired_timestamp_seconds` + l + ` _x10 590x1490`
		states := alertStates(t, cron, series, 25*time.Hour)
		for _, alert := range []string{"MPSArchiverCoverageGap", "MPSArchiverDetailsExpiring"} {
			for _, minute := range []int{10, 14, 15, 20, 180, 1440} {
				if !states[alert][minute][`{instance="cron-a"}`] {
					t.Errorf("%s is not firing at minute %d, %d pushes after the one that found it: %v", alert, minute, (minute-10)/5, states[alert][minute])
				}
			}
			if len(states[alert][1460]) != 0 {
				t.Errorf("%s still fires 24 hours after the event: %v", alert, states[alert][1460])
			}
		}
		for alert, st := range states {
			if alert != "MPSArchiverCoverageGap" && alert != "MPSArchiverDetailsExpiring" && len(st[180]) != 0 {
				t.Errorf("%s fires: %v", alert, st[180])
			}
		}
	})
	t.Run("two instances, one stops", func(t *testing.T) {
		// cron-a succeeds and pushes every minute; cron-b's last run failed
		// and it stops pushing at minute 30.
		series := `load 1m
			push_time_seconds{job="mps-archiver-sync", instance="cron-a"} 0+60x180
			push_time_seconds{job="mps-archiver-sync", instance="cron-b"} 0+60x30 1800x150
			mps_archiver_last_run_failed{job="mps-archiver-sync", instance="cron-a"} 0x180
			mps_archiver_last_run_failed{job="mps-archiver-sync", instance="cron-b"} 0x20 1x160
			mps_archiver_retention_deadline_timestamp_seconds{job="mps-archiver-sync", instance="cron-a"} 604800x180
			mps_archiver_retention_deadline_timestamp_seconds{job="mps-archiver-sync", instance="cron-b"} 604800x180`
		states := alertStates(t, cron, series, 3*time.Hour)
		for alert, minute := range map[string]int{"MPSArchiverSyncNotReporting": 90, "MPSArchiverSyncFailing": 60} {
			if got := states[alert][minute]; len(got) != 1 || !got[`{instance="cron-b"}`] {
				t.Errorf("%s at minute %d: %v, want cron-b alone", alert, minute, got)
			}
			if got := states[alert][180]; len(got) != 1 || !got[`{instance="cron-b"}`] {
				t.Errorf("%s at minute 180: %v, want cron-b alone", alert, got)
			}
		}
	})
}

// grafanaVariables stand for what Grafana substitutes before a query runs.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// TestDashboardQueries: every Prometheus query of the operations dashboard
// (deploy/grafana) parses with the Prometheus parser and reads only series
// the binary exports, with labels they carry.
func TestDashboardQueries(t *testing.T) {
	b, err := os.ReadFile("../../grafana/mps-archiver-operations.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	known := inventory(t)
	queries := 0
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			if q.Expr == "" {
				continue
			}
			queries++
			for _, err := range CheckSeries(grafanaVariables.Replace(q.Expr), known) {
				t.Errorf("%q: %s: %v", p.Title, q.Expr, err)
			}
		}
	}
	if queries < 20 {
		t.Errorf("only %d queries", queries)
	}
}
