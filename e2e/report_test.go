package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/simulator"
)

// chromium finds Debian's chromium; its absence is a failure that says
// what to install (.ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium: install the Debian package `chromium` (apt-get install chromium) to render the HTML report")
	return ""
}

func headless(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}
	cmd := exec.Command(bin, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
		}
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("chromium %v hung", args)
	}
	return out.Bytes()
}

func TestReportFormatsAndHTML(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(2500, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	if r := run(t, env, "sync"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	since := now.AddDate(0, 0, -8).Format(time.DateOnly)

	r := run(t, env, "report", "--since", since, "--format", "json")
	var rep struct {
		Total    int64            `json:"total_tasks"`
		ByStatus map[string]int64 `json:"tasks_by_status"`
		Volume   []struct{ Tasks int64 }
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil || rep.Total != int64(len(a.sim.Truth())) || len(rep.Volume) == 0 {
		t.Fatalf("json: %d %s %s", r.code, r.stdout[:min(300, len(r.stdout))], r.stderr)
	}
	r = run(t, env, "report", "--since", since, "--format", "csv", "--by", "week", "--type", "WorkflowTask")
	cr := csv.NewReader(strings.NewReader(r.stdout))
	cr.FieldsPerRecord = -1 // each section has its own columns
	rows, err := cr.ReadAll()
	if r.code != 0 || err != nil || len(rows) < 5 {
		t.Fatalf("csv: %d %v %s", r.code, err, r.stderr)
	}
	for _, row := range rows {
		if row[0] == "volume" && row[2] != "WorkflowTask" {
			t.Fatalf("--type not applied: %v", row)
		}
	}
	r = run(t, env, "report", "--since", since, "--format", "markdown")
	if r.code != 0 || !strings.Contains(r.stdout, "| day | task_type | status | tasks |") {
		t.Fatalf("markdown: %s", r.stdout)
	}
	r = run(t, env, "report", "--since", since)
	if r.code != 0 || !strings.Contains(r.stdout, "Queue wait and processing time") || !strings.Contains(r.stdout, "Coverage gaps") {
		t.Fatalf("table: %s", r.stdout)
	}
	for _, bad := range [][]string{{"--since", "2026-02-30"}, {"--since", "2026-05-01", "--until", "2026-04-01"}, {"--by", "year"}, {"--format", "xml"}} {
		if r := run(t, env, append([]string{"report"}, bad...)...); r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("report %v: exit %d, %q", bad, r.code, r.stderr)
		}
	}

	// The HTML report, rendered by Chromium.
	html := filepath.Join(t.TempDir(), "report.html")
	if r := run(t, env, "report", "--since", since, "--html", html); r.code != 0 {
		t.Fatal(r.stderr)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).Match(page) || bytes.Contains(page, []byte("<script")) {
		t.Fatal("the HTML report fetches from the network or runs script")
	}
	bin := chromium(t)
	dom := string(headless(t, bin, "--dump-dom", "file://"+html))
	for _, id := range []string{"chart-volume", "chart-durations", "chart-unfinished", "chart-sync"} {
		i := strings.Index(dom, `id="`+id+`"`)
		if i < 0 {
			t.Fatalf("%s missing from the rendered page", id)
		}
		chart := dom[i:]
		chart = chart[:strings.Index(chart, "</svg>")]
		marks := strings.Count(chart, `class="bar"`) + strings.Count(chart, `class="line"`)
		if marks == 0 {
			t.Errorf("%s is empty", id)
		}
	}
	shot := filepath.Join(t.TempDir(), "report.png")
	headless(t, bin, "--window-size=900,1600", "--screenshot="+shot, "file://"+html)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	colors := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[r>>12<<8|g>>12<<4|bl>>12] = true
		}
	}
	if len(colors) < 8 {
		t.Fatalf("the screenshot has %d colours: the charts did not render", len(colors))
	}
	t.Logf("rendered report: %d distinct colours in the screenshot", len(colors))
}
