package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeSimulatorExample runs the README's simulator block as written:
// the simulator in the background, then a sync against it, which must
// succeed with the simulator's tasks archived. Only DATABASE_URL=... and the
// binary's name are filled in.
func TestReadmeSimulatorExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\n(TENCENTCLOUD_SECRET_ID=AKIDlocal[^`]*?mps-archiver simulate[^`]*?mps-archiver sync)\n```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("no simulator example in README.md")
	}
	db := migrated(t)
	script := strings.NewReplacer("DATABASE_URL=...", "DATABASE_URL='"+db+"'", "mps-archiver ", binary+" ").Replace(string(m[1]))
	// The background simulator ends with the script, whatever happens.
	cmd := exec.Command("bash", "-c", "set -m\n"+script+"\ncode=$?\nkill %1\nexit $code")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the README example did not finish:\n%s", out)
	}
	if err != nil {
		t.Fatalf("the README example failed: %v\n%s", err, out)
	}
	if n := scalar(t, db, `SELECT count(*) FROM tasks`); n < 20000 {
		t.Fatalf("%d tasks archived:\n%s", n, out)
	}
	if n := scalar(t, db, `SELECT count(*) FROM tasks WHERE create_time > now()`); n != 0 {
		t.Fatalf("%d tasks from the future", n)
	}
}
