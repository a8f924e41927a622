package report_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mps-archiver/mps-archiver/report"
)

// TestSections: --section names every table of the report, in order, and
// one table comes out alone: a plain CSV (its header, then its rows) equal
// to its part of the whole report's CSV, or its JSON.
func TestSections(t *testing.T) {
	t.Parallel()
	r := fixture()
	var all bytes.Buffer
	if err := report.Write(&all, "csv", r); err != nil {
		t.Fatal(err)
	}
	cr := csv.NewReader(&all)
	cr.FieldsPerRecord = -1 // its tables differ in width
	whole, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// The whole report: each table is a header row ("section", …) then its
	// rows, each starting with the table's name.
	parts := map[string][][]string{}
	var order []string
	var header []string
	for _, row := range whole {
		if row[0] == "section" {
			header = row[1:]
			continue
		}
		if _, ok := parts[row[0]]; !ok {
			order = append(order, row[0])
			parts[row[0]] = [][]string{header}
		}
		parts[row[0]] = append(parts[row[0]], row[1:])
	}
	for _, name := range order {
		if !slices.Contains(report.SectionNames, name) {
			t.Errorf("table %q is not in SectionNames", name)
		}
	}
	for _, name := range report.SectionNames {
		var buf bytes.Buffer
		if err := report.WriteSection(&buf, "csv", r, name); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want, ok := parts[name]; ok && !slices.EqualFunc(rows, want, slices.Equal) {
			t.Errorf("%s:\n got  %v\n want %v", name, rows, want)
		}
		buf.Reset()
		if err := report.WriteSection(&buf, "json", r, name); err != nil {
			t.Fatal(err)
		}
		var js struct {
			Name string
			Rows [][]string
		}
		if err := json.Unmarshal(buf.Bytes(), &js); err != nil || js.Name != name || len(js.Rows) != max(len(parts[name])-1, 0) {
			t.Errorf("%s json: %v %s", name, err, buf.String())
		}
	}
	if err := report.WriteSection(&bytes.Buffer{}, "csv", r, "nope"); err == nil || !strings.Contains(err.Error(), "want one of volume") {
		t.Fatalf("unknown section: %v", err)
	}
}
