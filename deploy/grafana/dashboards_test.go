package main

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// TestCommittedJSONIsGenerated: the files in deploy/grafana are what the
// generator writes (`go run .` after changing dashboards.go).
func TestCommittedJSONIsGenerated(t *testing.T) {
	files, err := render()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s is not what the generator writes: run `go run .` in deploy/grafana", name)
		}
	}
}

// TestDashboardsImportAnywhere: each file decodes strictly as a dashboard
// (the SDK's schema); every panel's queries name a data source by a
// template variable of the right plugin type, so the import asks for one
// instead of pointing at a UID of ours; every SQL query is bounded by the
// time picker.
func TestDashboardsImportAnywhere(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	cog.NewRuntime().RegisterDataqueryVariant(sqlVariant())
	for name, wantType := range map[string]string{"mps-archiver-operations.json": "prometheus", "mps-task-archive.json": postgresType} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard.Dashboard
		// v0.0.22 returns its error list typed even when it is empty.
		if err := d.UnmarshalJSONStrict(b); err != nil {
			if be := (cog.BuildErrors)(nil); !errors.As(err, &be) || len(be) > 0 {
				t.Fatalf("%s: %v", name, err)
			}
		}
		vars := map[string]string{}
		for _, v := range d.Templating.List {
			if v.Type == "datasource" && v.Query != nil && v.Query.String != nil {
				vars["${"+v.Name+"}"] = *v.Query.String
			}
		}
		var raw struct {
			Panels []struct {
				Title   string           `json:"title"`
				Type    string           `json:"type"`
				Targets []map[string]any `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		panels := 0
		for _, p := range raw.Panels {
			if p.Type == "row" {
				continue
			}
			panels++
			if len(p.Targets) == 0 {
				t.Errorf("%s: %q has no query", name, p.Title)
			}
			for _, q := range p.Targets {
				ds, _ := q["datasource"].(map[string]any)
				uid, _ := ds["uid"].(string)
				if vars[uid] != wantType || ds["type"] != wantType {
					t.Errorf("%s: %q queries data source %v, not a %s variable", name, p.Title, ds, wantType)
				}
				if s, ok := q["rawSql"].(string); ok && !strings.Contains(s, "$__timeFilter(") {
					t.Errorf("%s: %q: the time range does not bound %q", name, p.Title, s)
				}
				if e, ok := q["expr"]; ok && e == "" {
					t.Errorf("%s: %q: empty expression", name, p.Title)
				}
			}
		}
		if panels < 12 {
			t.Errorf("%s: %d panels", name, panels)
		}
	}
}
