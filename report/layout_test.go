package report_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/report"
	"github.com/mps-archiver/mps-archiver/storage"
)

// newArchive is a report as a new archive gives it at the 30-day default:
// five days of data at the end of the range, ten error codes of every
// length (the longest MPS documents), counts small enough that quarter
// steps would be fractional.
func newArchive() *storage.Report {
	until := time.Date(2026, 12, 1, 23, 54, 0, 0, time.UTC)
	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	r := &storage.Report{
		Params: storage.ReportParams{StuckAfter: time.Hour},
		Since:  since, Until: until, By: "day",
		ByStatus:  map[string]int64{"FINISH": 230, "PROCESSING": 35, "WAITING": 8},
		Generated: until.Add(time.Minute),
		Unfinished: []storage.UnfinishedRow{
			{Status: "WAITING", Tasks: 8, OldestS: f(200), MedianS: f(30)},
			{Status: "PROCESSING", Tasks: 35, Stuck: 3, OldestS: f(9000), MedianS: f(300)},
		},
		Details: storage.DetailBacklogRow{Queued: 12},
	}
	for i, d := range []int{27, 26, 29, 30, 31} {
		day := time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC)
		r.Volume = append(r.Volume,
			storage.VolumeRow{Period: day, TaskType: "WorkflowTask", Status: "FINISH", Tasks: int64(10 + i)},
			storage.VolumeRow{Period: day, TaskType: "LiveStreamProcessTask", Status: "FINISH", Tasks: int64(3 + i)},
			storage.VolumeRow{Period: day, TaskType: "ScheduleTask", Status: "FINISH", Tasks: 2})
		r.Durations = append(r.Durations, storage.DurationRow{Period: day, TaskType: "*", Tasks: 20, QueueP50: f(0.4), QueueP90: f(1.2), ProcessP50: f(2.5), ProcessP90: f(4.8)})
		r.Outcomes = append(r.Outcomes, storage.OutcomeRow{Period: day, TaskType: "WorkflowTask", Finished: 20, Succeeded: int64(18 - i), Failed: int64(2 + i)})
	}
	r.Total = 273
	for i, c := range []string{"30010", "InvalidInput.DefinitionNotExist", "InternalError", "FailedOperation.InvalidMpsUserMediaTranscodeTemplate",
		"ResourceNotFound.CosBucketNameInvalid", "40000", "SourceFileError", "InvalidParameterValue.VideoCodec", "70000", "AuthFailure.SignatureExpire"} {
		r.ErrorCodes = append(r.ErrorCodes, storage.ErrorCodeRow{Code: c, Tasks: int64(23 - 2*i)})
	}
	for i := range 5 {
		r.SyncDays = append(r.SyncDays, storage.SyncDayRow{Day: time.Date(2026, 11, 27+i, 0, 0, 0, 0, time.UTC), Runs: int64(4 + i), Succeeded: int64(4 + i)})
	}
	return r
}

func TestNewArchiveHTMLGolden(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := report.WriteHTML(&b, newArchive()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	// The time axes start at the first day with data (11-27), keeping a
	// week: six empty days, not twenty-six.
	if !strings.Contains(page, "charts start at 2026-11-25") {
		t.Error("the time axis does not start at the first week with data")
	}
	chart := page[strings.Index(page, `id="chart-volume"`):]
	chart = chart[:strings.Index(chart, "</svg>")]
	if n := strings.Count(chart, `class="tick">11-`) + strings.Count(chart, `class="tick">12-`); n != 7 {
		t.Errorf("the volume chart labels %d days, want 7 (11-25 … 12-01)", n)
	}
	// Count axes tick whole numbers.
	for _, id := range []string{"chart-volume", "chart-error-codes", "chart-unfinished", "chart-sync"} {
		chart := page[strings.Index(page, `id="`+id+`"`):]
		chart = chart[:strings.Index(chart, "</div>")]
		for _, m := range regexp.MustCompile(`class="tick">([0-9.]+)<`).FindAllStringSubmatch(chart, -1) {
			if strings.Contains(m[1], ".") {
				t.Errorf("%s has a fractional count tick %s", id, m[1])
			}
		}
	}
	// Text columns are left-aligned, numbers right.
	if !strings.Contains(page, `<td>InvalidInput.DefinitionNotExist</td><td class="num">21</td>`) {
		t.Error("the error-code table does not align text left and numbers right")
	}
	golden(t, "new-archive.html", b.Bytes())
}

// chromium finds Debian's chromium; its absence is a failure that says
// what to install (.ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium: install the Debian package `chromium` (apt-get install chromium) to check the HTML report's layout")
	return ""
}

// TestHTMLLayout renders the report in Chromium at a desktop's and a
// phone's width, with testdata/layoutcheck.js added, and fails on any chart
// text that overlaps another, is cut off or is under 8 px high, and on
// anything wider than the viewport.
func TestHTMLLayout(t *testing.T) {
	t.Parallel()
	bin := chromium(t)
	check, err := os.ReadFile(filepath.Join("testdata", "layoutcheck.js"))
	if err != nil {
		t.Fatal(err)
	}
	// One Chromium at a time: each takes a core for a few seconds.
	for name, r := range map[string]*storage.Report{"fixture": fixture(), "new-archive": newArchive()} {
		for _, width := range []int{1280, 390} {
			t.Run(fmt.Sprint(name, "/", width), func(t *testing.T) {
				var b bytes.Buffer
				if err := report.WriteHTML(&b, r); err != nil {
					t.Fatal(err)
				}
				page := strings.Replace(b.String(), "</body>", "<script>"+string(check)+"</script></body>", 1)
				frame := `<!DOCTYPE html><html><body style="margin:0"><iframe style="border:0;width:` + strconv.Itoa(width) +
					`px;height:8000px" srcdoc="` + html.EscapeString(page) + `"></iframe></body></html>`
				file := filepath.Join(t.TempDir(), "frame.html")
				if err := os.WriteFile(file, []byte(frame), 0o644); err != nil {
					t.Fatal(err)
				}
				dom := headless(t, bin, fmt.Sprintf("--window-size=%d,2000", max(width, 500)), "--dump-dom", "file://"+file)
				m := regexp.MustCompile(`(?s)<pre id="layout-check">(.*?)</pre>`).FindSubmatch(dom)
				if m == nil {
					t.Fatalf("the layout check did not run:\n%.2000s", dom)
				}
				var res struct {
					Width    int
					Texts    int
					Problems []string
				}
				if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &res); err != nil {
					t.Fatal(err)
				}
				if res.Texts < 20 {
					t.Errorf("only %d chart texts measured: the charts did not render", res.Texts)
				}
				for _, p := range res.Problems {
					t.Errorf("at %d px: %s", res.Width, p)
				}
			})
		}
	}
}

func headless(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}
	cmd := exec.Command(bin, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
		}
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("chromium %v hung", args)
	}
	return out.Bytes()
}
