package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/simulator"
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
	migrateEnv := filepath.Join(dir, "migrate.env")
	must(t, os.WriteFile(migrateEnv, []byte("DATABASE_URL=postgres://y@localhost/db\n"), 0o600))
	units := []string{"mps-archiver.service", "mps-archiver-sync.service", "mps-archiver-sync.timer", "mps-archiver-migrate.service"}
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join("../deploy/systemd", u))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.NewReplacer("/usr/local/bin/mps-archiver", binary, "/etc/mps-archiver/mps-archiver.env", env,
			"/etc/mps-archiver/migrate.env", migrateEnv).Replace(string(b))
		p := filepath.Join(dir, u)
		must(t, os.WriteFile(p, []byte(text), 0o644))
		paths = append(paths, p)
		if strings.HasSuffix(u, ".service") {
			for _, want := range []string{
				"DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes",
				"CapabilityBoundingSet=\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
			} {
				if !strings.Contains(string(b), want) {
					t.Errorf("%s lacks %q", u, strings.TrimSpace(want))
				}
			}
			// The app role cannot migrate (least-privilege.sql): only the
			// migrate unit, with the owner's environment, does.
			if u != "mps-archiver-migrate.service" && strings.Contains(string(b), "mps-archiver migrate") {
				t.Errorf("%s migrates with the app role's environment", u)
			}
		}
	}
	if out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, p := range paths {
		if !strings.HasSuffix(p, ".service") {
			continue
		}
		out, _ := exec.Command(analyze, "security", "--offline=yes", p).CombinedOutput()
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("systemd-analyze security %s:\n%s", filepath.Base(p), out)
		}
		if v, _ := strconv.ParseFloat(m[1], 64); v > 2.0 {
			t.Errorf("%s: exposure level %v, want at most 2.0:\n%s", filepath.Base(p), v, out)
		}
		t.Logf("systemd-analyze security %s: exposure %s", filepath.Base(p), m[1])
	}
	b, _ := os.ReadFile("../deploy/systemd/mps-archiver.service")
	if !strings.Contains(string(b), "Restart=on-failure") {
		t.Error("the service does not restart on failure")
	}
}

// unitFile is a shipped unit as systemd reads it: the options of [Unit] and
// [Service], in order.
type unitFile struct {
	name string
	opts []*unit.UnitOption
}

func readUnit(t *testing.T, name string) unitFile {
	t.Helper()
	f, err := os.Open(filepath.Join("../deploy/systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return unitFile{name: name, opts: opts}
}

func (u unitFile) values(section, name string) []string {
	var out []string
	for _, o := range u.opts {
		if o.Section == section && o.Name == name {
			out = append(out, o.Value)
		}
	}
	return out
}

// installed is /etc/mps-archiver as the units' comments tell an operator to
// fill it, in a temporary directory.
type installed struct {
	etc, bin string
	uid      int // the service's user (DynamicUser) when the test runs as root
}

// sandboxPath maps a path the units name onto the temporary installation.
func (in installed) sandboxPath(p string) string {
	switch {
	case p == "/usr/local/bin/mps-archiver":
		return in.bin
	case strings.HasPrefix(p, "/etc/mps-archiver/"):
		return filepath.Join(in.etc, strings.TrimPrefix(p, "/etc/mps-archiver/"))
	}
	return p
}

// openDir is a temporary directory that any user may enter (t.TempDir's
// parent is 0700).
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "e2e-open-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	return dir
}

// readEnvFile reads a systemd EnvironmentFile: KEY=VALUE lines, comments
// starting with # or ;, values optionally quoted.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("EnvironmentFile: %v", err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not KEY=VALUE: %q", path, line)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[strings.TrimSpace(k)] = v
	}
	return env
}

// command is what systemd would execute for the unit's ExecStart: the
// environment from EnvironmentFile= then Environment=, credentials from
// LoadCredential= in $CREDENTIALS_DIRECTORY (%d), the user of DynamicUser=.
func (in installed) command(t *testing.T, u unitFile, override map[string]string) *exec.Cmd {
	t.Helper()
	if pre := u.values("Service", "ExecStartPre"); len(pre) > 0 {
		t.Fatalf("%s: ExecStartPre %q runs with the service's credentials", u.name, pre)
	}
	// Like /run/credentials/UNIT: a directory of the service's own under
	// one anyone may enter.
	creds := filepath.Join(openDir(t), strings.TrimSuffix(u.name, ".service"))
	must(t, os.Mkdir(creds, 0o500|0o200))
	for _, lc := range u.values("Service", "LoadCredential") {
		id, src, ok := strings.Cut(lc, ":")
		if !ok {
			t.Fatalf("%s: LoadCredential=%s has no path", u.name, lc)
		}
		copyFile(t, in.sandboxPath(src), filepath.Join(creds, id), 0o400)
	}
	env := map[string]string{
		"PATH":                  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
		"CREDENTIALS_DIRECTORY": creds,
	}
	for _, ef := range u.values("Service", "EnvironmentFile") {
		for k, v := range readEnvFile(t, in.sandboxPath(ef)) {
			env[k] = v
		}
	}
	for _, e := range u.values("Service", "Environment") {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			t.Fatalf("%s: Environment=%s", u.name, e)
		}
		env[k] = strings.ReplaceAll(v, "%d", creds)
		if strings.Contains(env[k], "%") {
			t.Fatalf("%s: specifier this test does not know in Environment=%s", u.name, e)
		}
	}
	for k, v := range override {
		env[k] = v
	}
	execStart := u.values("Service", "ExecStart")
	if len(execStart) != 1 {
		t.Fatalf("%s: %d ExecStart lines", u.name, len(execStart))
	}
	argv := strings.Fields(execStart[0])
	if strings.ContainsAny(argv[0][:1], "-@+!:|") {
		t.Fatalf("%s: ExecStart prefix this test does not know: %q", u.name, execStart[0])
	}
	cmd := exec.Command(in.sandboxPath(argv[0]), argv[1:]...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = "/"
	if in.uid != 0 {
		// What DynamicUser= gives: an unprivileged user of its own, owner of
		// its credentials.
		must(t, os.Chown(creds, in.uid, in.uid))
		entries, _ := os.ReadDir(creds)
		for _, e := range entries {
			must(t, os.Chown(filepath.Join(creds, e.Name()), in.uid, in.uid))
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(in.uid), Gid: uint32(in.uid)}}
	}
	return cmd
}

// start runs the unit the way `systemctl start` does: the units it requires
// first (each a oneshot that must succeed), then its own ExecStart.
func (in installed) start(t *testing.T, name string, override map[string]string) (*proc, unitFile) {
	t.Helper()
	u := readUnit(t, name)
	for _, req := range u.values("Unit", "Requires") {
		for _, r := range strings.Fields(req) {
			ru := readUnit(t, r)
			if got := ru.values("Service", "Type"); len(got) != 1 || got[0] != "oneshot" {
				t.Fatalf("%s requires %s, which is not a oneshot", name, r)
			}
			if !slices.Contains(strings.Fields(strings.Join(u.values("Unit", "After"), " ")), r) {
				t.Errorf("%s requires %s but does not start after it", name, r)
			}
			p := startCmd(t, in.command(t, ru, nil))
			if code := p.wait(t, 2*time.Minute); code != 0 {
				t.Fatalf("%s (required by %s) failed with exit %d:\n%s", r, name, code, p.stderr.String())
			}
			t.Logf("%s: %s", r, strings.TrimSpace(p.stdout.String()))
		}
	}
	return startCmd(t, in.command(t, u, override)), u
}

// TestSystemdUnitsRunAsWritten installs the units' files as their comments
// say, on a database prepared by deploy/postgres/least-privilege.sql, and
// runs each unit's command lines as systemd would (environment files,
// credentials, required units first, as an unprivileged user when the test
// is root): the timer's sync and the daemon start, migrate as the owner and
// archive as the app role.
func TestSystemdUnitsRunAsWritten(t *testing.T) {
	t.Parallel()
	r := leastPrivilegeDB(t)
	now := time.Now().UTC()
	a := newAPI(t, outcomePopulation(300, now), simulator.NewClock(now, 0), simulator.Faults{})

	in := installed{etc: t.TempDir(), bin: binary}
	if os.Getuid() == 0 {
		// The service user must reach the binary: a copy in a directory
		// anyone may enter, as /usr/local/bin is.
		in.uid = 61735
		in.bin = filepath.Join(openDir(t), "mps-archiver")
		copyFile(t, binary, in.bin, 0o755)
	}
	// The operator's edits: real values for the placeholders, nothing else.
	edit := func(example, installedName string, set map[string]string) {
		vals := readEnvFile(t, filepath.Join("../deploy/systemd", example))
		var b strings.Builder
		for k, v := range vals {
			if nv, ok := set[k]; ok {
				v = nv
			} else if strings.Contains(v, "CHANGE-ME") {
				t.Fatalf("%s: placeholder %s=%s that the test does not fill", example, k, v)
			}
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
		must(t, os.WriteFile(filepath.Join(in.etc, installedName), []byte(b.String()), 0o600))
	}
	edit("mps-archiver.env.example", "mps-archiver.env", map[string]string{
		"DATABASE_URL": r.app, "TENCENTCLOUD_SECRET_ID": secretID, "MPS_ENDPOINT": a.url,
	})
	edit("migrate.env.example", "migrate.env", map[string]string{"DATABASE_URL": r.owner})
	must(t, os.WriteFile(filepath.Join(in.etc, "tencentcloud-secret-key"), []byte(secretKey+"\n"), 0o600))

	// The timer's unit on a fresh database: migrations as the owner, then
	// one sync as the app role, outcomes included (the example's default).
	p, u := in.start(t, "mps-archiver-sync.service", nil)
	code := p.wait(t, 3*time.Minute)
	if ok := slices.Contains(append([]string{"0"}, u.values("Service", "SuccessExitStatus")...), strconv.Itoa(code)); !ok || code != 0 {
		t.Fatalf("mps-archiver-sync.service: exit %d:\n%s", code, p.stderr.String())
	}
	archivetest.AssertMatchesTruth(t, r.app, a.sim.Truth())
	if n := scalar(t, r.app, `SELECT count(*) FROM task_details`); n == 0 {
		t.Error("the sync unit captured no outcome")
	}

	// The daemon: migrations again (nothing to do), then serve until its
	// KillSignal. The listen address is the one thing changed, so that
	// parallel tests do not collide on 9464.
	p, u = in.start(t, "mps-archiver.service", map[string]string{"MPS_ARCHIVER_LISTEN": "127.0.0.1:0"})
	addr := p.httpAddr(t)
	eventually(t, time.Minute, "a run of the daemon", func() bool {
		return scalar(t, r.app, `SELECT count(*) FROM sync_runs WHERE trigger = 'startup' AND status = 'succeeded'`) == 1 || p.exited()
	})
	if code, _ := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
	sig := map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT}[u.values("Service", "KillSignal")[0]]
	p.signal(sig)
	stop, err := time.ParseDuration(strings.ToLower(u.values("Service", "TimeoutStopSec")[0]) + "s")
	if err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, stop); code != 0 {
		t.Fatalf("mps-archiver.service: exit %d after %v:\n%s", code, sig, p.stderr.String())
	}
	if n := scalar(t, r.app, `SELECT count(*) FROM sync_runs WHERE status <> 'succeeded'`); n != 0 {
		t.Errorf("%d runs did not succeed", n)
	}
}
