package e2e

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mps-archiver/mps-archiver/simulator"
)

// grafanaMacros expands what Grafana's PostgreSQL data source substitutes
// before a query reaches the database, for the time range [from, to].
func grafanaMacros(sql string, from, to time.Time, vars map[string]string) string {
	timeFilter := regexp.MustCompile(`\$__timeFilter\(([^()]*)\)`)
	sql = timeFilter.ReplaceAllString(sql, "($1 BETWEEN '"+from.Format(time.RFC3339)+"' AND '"+to.Format(time.RFC3339)+"')")
	for k, v := range vars {
		sql = strings.ReplaceAll(sql, "$"+k, v)
	}
	return sql
}

// TestGrafanaArchiveQueries runs every query of the archive dashboard
// (deploy/grafana/mps-task-archive.json) as Grafana would, over the last 30
// days, as a member of the read-only role, against an archive with tasks
// in every state, outcomes and runs: each returns rows, and time series
// have the time column Grafana plots.
func TestGrafanaArchiveQueries(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../deploy/grafana/mps-task-archive.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Templating struct {
			List []struct {
				Name, Type string
				Query      any
			}
		}
		Panels []struct {
			Title, Type string
			Targets     []struct {
				RawSQL string `json:"rawSql"`
				Format string
			}
		}
	}
	must(t, json.Unmarshal(b, &d))

	r := leastPrivilegeDB(t)
	now := time.Now().UTC()
	// Long processing, so that some tasks are still PROCESSING after an
	// hour; failures and both vocabularies for the outcome panels.
	a := newAPI(t, generate(600, now, func(c *simulator.GenConfig) {
		c.ProcessMean, c.FailureShare, c.Vocabulary = 3*time.Hour, 0.3, simulator.VocabularyMixed
	}), simulator.NewClock(now, 0), simulator.Faults{})
	if res := run(t, baseEnv(a, r.owner), "migrate", "up"); res.code != 0 {
		t.Fatal(res.stderr)
	}
	env := baseEnv(a, r.app)
	env["MPS_DETAILS_MODE"], env["MPS_DETAILS_RATE_LIMIT"] = "all", "1000"
	// The usage panel needs usage: the sync reads it (as the app role).
	env["MPS_USAGE_MODE"], env["MPS_USAGE_RATE_LIMIT"] = "on", "100"
	if res := run(t, env, "sync"); res.code != 0 {
		t.Fatal(res.stderr)
	}

	conn, err := pgx.Connect(context.Background(), r.reader)
	must(t, err)
	defer conn.Close(context.Background())
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		rows, err := conn.Query(context.Background(), v.Query.(string))
		must(t, err)
		values, err := pgx.CollectRows(rows, pgx.RowTo[string])
		must(t, err)
		if len(values) == 0 {
			t.Fatalf("variable %s: no values", v.Name)
		}
		vars[v.Name] = "'" + strings.Join(values, "','") + "'" // the All option, as Grafana quotes it
	}
	queries := 0
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			if q.RawSQL == "" {
				continue
			}
			queries++
			sql := grafanaMacros(q.RawSQL, now.Add(-30*24*time.Hour), now.Add(time.Minute), vars)
			rows, err := conn.Query(context.Background(), sql)
			if err != nil {
				t.Errorf("%q: %v\n%s", p.Title, err, sql)
				continue
			}
			fields := rows.FieldDescriptions()
			n := 0
			for rows.Next() {
				n++
			}
			if err := rows.Err(); err != nil {
				t.Errorf("%q: %v", p.Title, err)
			}
			if n == 0 {
				t.Errorf("%q returns no rows:\n%s", p.Title, sql)
			}
			if q.Format == "time_series" && (len(fields) < 2 || fields[0].Name != "time" || fields[0].DataTypeOID != 1184) {
				t.Errorf("%q: a time series whose first column is not a timestamptz named time: %v", p.Title, fields)
			}
			t.Logf("%-40q %4d rows", p.Title, n)
		}
	}
	if queries < 12 {
		t.Errorf("only %d queries", queries)
	}
}
