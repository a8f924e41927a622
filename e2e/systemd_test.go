package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSystemdUnits verifies the shipped units with systemd-analyze (paths
// pointed at this build) and checks their hardening.
func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("no systemd-analyze: install the Debian package `systemd` to verify deploy/systemd")
	}
	dir := t.TempDir()
	env := filepath.Join(dir, "mps-archiver.env")
	must(t, os.WriteFile(env, []byte("DATABASE_URL=postgres://x@localhost/db\n"), 0o600))
	units := []string{"mps-archiver.service", "mps-archiver-sync.service", "mps-archiver-sync.timer"}
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join("../deploy/systemd", u))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.NewReplacer("/usr/local/bin/mps-archiver", binary, "/etc/mps-archiver/mps-archiver.env", env).Replace(string(b))
		p := filepath.Join(dir, u)
		must(t, os.WriteFile(p, []byte(text), 0o644))
		paths = append(paths, p)
		if strings.HasSuffix(u, ".service") {
			for _, want := range []string{
				"DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes",
				"CapabilityBoundingSet=\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
				"ExecStartPre=/usr/local/bin/mps-archiver migrate up", "LoadCredential=", "EnvironmentFile=/etc/mps-archiver/mps-archiver.env",
			} {
				if !strings.Contains(string(b), want) {
					t.Errorf("%s lacks %q", u, strings.TrimSpace(want))
				}
			}
		}
	}
	if out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, _ := exec.Command(analyze, "security", "--offline=yes", paths[0]).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("systemd-analyze security:\n%s", out)
	}
	if v, _ := strconv.ParseFloat(m[1], 64); v > 2.0 {
		t.Fatalf("exposure level %v, want at most 2.0:\n%s", v, out)
	}
	t.Logf("systemd-analyze security: exposure %s", m[1])
	b, _ := os.ReadFile("../deploy/systemd/mps-archiver.service")
	if !strings.Contains(string(b), "Restart=on-failure") {
		t.Error("the service does not restart on failure")
	}
}
