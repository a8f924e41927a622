package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerfile reads the repository's Dockerfile.
func dockerfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImageBuildAndRuntime runs the Dockerfile's exact build command (there
// is no Docker engine here), then checks what the final image relies on:
// a static binary, a numeric non-root user, an exec-form entrypoint, and
// time zones and TLS roots reachable with no shell and nothing else on disk.
func TestImageBuildAndRuntime(t *testing.T) {
	t.Parallel()
	df := dockerfile(t)
	m := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 .*go build .*)$`).FindStringSubmatch(df)
	if m == nil {
		t.Fatal("no `RUN CGO_ENABLED=0 … go build` line in the Dockerfile")
	}
	out := filepath.Join(t.TempDir(), "mps-archiver")
	cmdline := strings.NewReplacer("${VERSION}", "v0.0.0-imagetest", "/out/mps-archiver", out).Replace(m[1])
	build := exec.Command("sh", "-c", cmdline)
	build.Dir = ".."
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, b)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked: it cannot run on distroless/static")
		}
	}
	f.Close()

	stages := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1)
	final := stages[len(stages)-1][1]
	if !strings.Contains(final, "distroless/static") && final != "scratch" {
		t.Errorf("final stage %s is not distroless/static or scratch", final)
	}
	user := regexp.MustCompile(`(?m)^USER (\d+)(:\d+)?$`).FindStringSubmatch(df)
	if user == nil || user[1] == "0" {
		t.Errorf("no numeric non-root USER in the final stage")
	}
	if !regexp.MustCompile(`(?m)^ENTRYPOINT \["/usr/local/bin/mps-archiver"\]$`).MatchString(df) ||
		!regexp.MustCompile(`(?m)^CMD \["serve"\]$`).MatchString(df) {
		t.Errorf("ENTRYPOINT/CMD are not the exec form of `mps-archiver serve`")
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil || !strings.Contains(string(ignore), ".git") {
		t.Errorf(".dockerignore missing or does not exclude .git")
	}

	if os.Geteuid() != 0 {
		t.Skip("the empty-root run needs root for chroot (CI runs as root)")
	}
	// An empty root like distroless/static's: the binary, the CA bundle and
	// nothing else. No shell, no zoneinfo, run as 65532.
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "etc/ssl/certs"), 0o755))
	copyFile(t, out, filepath.Join(root, "usr/local/bin/mps-archiver"), 0o755)
	must(t, os.Chmod(root, 0o755))
	chroot := func() (string, error) {
		b, err := exec.Command("chroot", "--userspec=65532:65532", root, "/usr/local/bin/mps-archiver", "version", "--check").CombinedOutput()
		return string(b), err
	}
	if outText, err := chroot(); err == nil || !strings.Contains(outText, "TLS root certificates") {
		t.Fatalf("without a CA bundle the check must fail: %v %s", err, outText)
	}
	copyFile(t, "/etc/ssl/certs/ca-certificates.crt", filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), 0o644)
	outText, err := chroot()
	if err != nil || !strings.Contains(outText, "v0.0.0-imagetest") || !strings.Contains(outText, "time-zone data: ok") ||
		!strings.Contains(outText, "user: uid 65532") {
		t.Fatalf("in an empty root: %v\n%s", err, outText)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(to, b, mode))
}
