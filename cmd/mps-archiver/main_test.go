package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
)

// TestCommandLines runs command lines in-process through Main and checks
// the exit status and the first line of stderr (or stdout). Usage errors,
// the command line asking for something the command cannot do, exit 2
// before anything is connected to; failures while doing the work exit 1.
func TestCommandLines(t *testing.T) {
	t.Parallel()
	creds := map[string]string{"TENCENTCLOUD_SECRET_ID": "AKIDcli", "TENCENTCLOUD_SECRET_KEY": "cli-secret-key-7f3e"}
	// Nothing listens on port 1: connecting fails at once.
	unreachable := map[string]string{"DATABASE_URL": "postgres://archiver:Pa55-cLi-W0rd@127.0.0.1:1/archive?connect_timeout=2",
		"TENCENTCLOUD_SECRET_ID": "AKIDcli", "TENCENTCLOUD_SECRET_KEY": "cli-secret-key-7f3e", "MPS_ENDPOINT": "http://127.0.0.1:1"}
	// Database passwords in every form libpq accepts: no fragment of three
	// bytes or more of them may be printed, and the database is still
	// named by what the driver parsed.
	dbPasswords := []string{"Pa55-cLi-W0rd", "Qz7-Vw9-Kx4", "Jh5-Rt2-Wm8", "Ls4 Nb6 Gp1", `Qz7'Vw9\Kx4`, `Qz7\'Vw9\\Kx4`, "Zq@9xK/w7Lm"}
	dsn := func(s string) map[string]string {
		return map[string]string{"DATABASE_URL": s, "TENCENTCLOUD_SECRET_ID": "AKIDcli", "TENCENTCLOUD_SECRET_KEY": "cli-secret-key-7f3e", "MPS_ENDPOINT": "http://127.0.0.1:1"}
	}
	const named = "mps-archiver sync: connect to host=127.0.0.1 port=1 user=archiver dbname=archive: database unavailable"
	for _, tc := range []struct {
		args   []string
		env    map[string]string
		code   int
		stdout string // a line of stdout that must be there
		stderr string // what the first line of stderr must hold ("" = empty)
	}{
		{args: nil, code: 2, stdout: "Usage: mps-archiver <command> [flags]"},
		{args: []string{"help"}, code: 0, stdout: "Commands:"},
		{args: []string{"--version"}, code: 0, stdout: "mps-archiver "},
		{args: []string{"version"}, code: 0, stdout: "mps-archiver "},
		{args: []string{"frob"}, code: 2, stderr: `mps-archiver: unknown command "frob"`},
		{args: []string{"sync", "-h"}, code: 0, stderr: "Usage: mps-archiver sync"},
		{args: []string{"sync", "--bogus"}, code: 2, stderr: "flag provided but not defined: -bogus"},
		{args: []string{"sync", "now"}, code: 2, stderr: `mps-archiver sync: unexpected argument "now" (see ` + "`mps-archiver sync -h`)"},
		{args: []string{"serve", "extra"}, code: 2, stderr: `unexpected argument "extra"`},
		{args: []string{"version", "extra"}, code: 2, stderr: `unexpected argument "extra"`},
		{args: []string{"sync"}, code: 1, stderr: "mps-archiver sync: invalid configuration: database_url: not set"},
		{args: []string{"sync"}, env: unreachable, code: 1, stderr: named},
		{args: []string{"sync"}, env: dsn("postgres://archiver:Qz7-Vw9-Kx4@127.0.0.1:1/archive?password=Jh5-Rt2-Wm8&connect_timeout=2"), code: 1, stderr: named},
		{args: []string{"sync"}, env: dsn("postgres://archiver@127.0.0.1:1/archive?sslpassword=Ls4%20Nb6%20Gp1&connect_timeout=2"), code: 1, stderr: named},
		{args: []string{"sync"}, env: dsn("host=127.0.0.1 port=1 user=archiver dbname=archive password = Qz7-Vw9-Kx4 connect_timeout=2"), code: 1, stderr: named},
		{args: []string{"sync"}, env: dsn("host=127.0.0.1 port=1 user=archiver dbname=archive password='Ls4 Nb6 Gp1' connect_timeout=2"), code: 1, stderr: named},
		{args: []string{"sync"}, env: dsn(`host=127.0.0.1 port=1 user=archiver dbname=archive password='Qz7\'Vw9\\Kx4' connect_timeout=2`), code: 1, stderr: named},
		{args: []string{"sync"}, env: dsn("host=127.0.0.1 port=1 user=archiver dbname=archive sslpassword = 'Ls4 Nb6 Gp1' connect_timeout=2"), code: 1, stderr: named},
		{args: []string{"sync"}, env: dsn("host=127.0.0.1 port=99999 user=archiver password = Qz7-Vw9-Kx4"), code: 1,
			stderr: "mps-archiver sync: database_url: cannot parse the connection string: invalid port"},
		{args: []string{"sync"}, env: dsn("host=127.0.0.1 user=archiver password=Qz7 Vw9-Kx4 dbname=archive"), code: 1,
			stderr: `database_url: cannot parse the connection string: failed to parse as keyword/value (missing "=" after (…) in connection info string)`},
		{args: []string{"sync"}, env: map[string]string{"DATABASE_URL": "postgres://a@127.0.0.1:1/b", "MPS_DETAILS_MODE": "some"}, code: 1,
			stderr: `details.mode (MPS_DETAILS_MODE): "some" is not all, failed or none`},
		{args: []string{"simulate", "--detail-errors", "30010"}, env: creds, code: 1, stderr: `--detail-errors "30010": want CODE:ErrCodeExt pairs`},
		{args: []string{"sync"}, env: map[string]string{"DATABASE_URL": "postgres://a@127.0.0.1:1/b", "MPS_RATE_LIMIT": "500"}, code: 1,
			stderr: "mps.rate_limit (MPS_RATE_LIMIT): 500 is above the API's 100 requests per second"},
		{args: []string{"sync"}, env: map[string]string{"DATABASE_URL": "postgres://a@127.0.0.1:1/b", "MPS_DETAILS_RATE_LIMIT": "101"}, code: 1,
			stderr: "details.rate_limit (MPS_DETAILS_RATE_LIMIT): 101 is above the API's 100"},
		{args: []string{"sync"}, env: map[string]string{"DATABASE_URL": "postgres://a@127.0.0.1:1/b", "MPS_ENDPOINT": "https://mps.tencentcloudapi.com/v3"}, code: 1,
			stderr: "must be scheme://host[:port] only (the API answers at the root; no path)"},
		{args: []string{"sync"}, env: map[string]string{"TENCENTCLOUD_SECRET_KEY": "a", "TENCENTCLOUD_SECRET_KEY_FILE": "/run/secrets/key"}, code: 1,
			stderr: "TENCENTCLOUD_SECRET_KEY and TENCENTCLOUD_SECRET_KEY_FILE are both set: set one of them"},
		{args: []string{"serve", "--schedule", "*/61 * * * *"}, env: map[string]string{"DATABASE_URL": "postgres://a@127.0.0.1:1/b"}, code: 2,
			stderr: "the minute field's step /61 is not below its range of 60 values"},
		{args: []string{"help"}, code: 0, stdout: "Exit statuses: 0 success, 1 failure, 2 usage error, 3 sync skipped"},
		{args: []string{"sync"}, env: map[string]string{"DATABASE_URL": "postgres://archiver:Zq@9xK/w7Lm@127.0.0.1:1/db", "TENCENTCLOUD_SECRET_ID": "AKIDcli",
			"TENCENTCLOUD_SECRET_KEY": "cli-secret-key-7f3e"}, code: 1,
			stderr: `database_url: the user or password holds an unescaped "@" or "/"; percent-encode them`},
		{args: []string{"migrate"}, code: 2, stderr: "Usage: mps-archiver migrate"},
		{args: []string{"migrate", "frob"}, code: 2, stderr: `mps-archiver migrate: unknown action "frob" (want up, down, version or force)`},
		{args: []string{"migrate", "down", "1", "junk"}, code: 2, stderr: `unexpected argument "junk"`},
		{args: []string{"migrate", "down", "x"}, code: 2, stderr: `mps-archiver migrate: down: "x" is not a positive number of steps or "all"`},
		{args: []string{"migrate", "up", "3"}, code: 2, stderr: `mps-archiver migrate: up takes no argument (got "3")`},
		{args: []string{"migrate", "force"}, code: 2, stderr: "mps-archiver migrate: force needs exactly one VERSION"},
		{args: []string{"migrate", "force", "x"}, code: 2, stderr: `mps-archiver migrate: force: "x" is not a version number`},
		{args: []string{"migrate", "force", "99"}, code: 2, stderr: `99 is not one of them`},
		{args: []string{"migrate", "version"}, code: 1, stderr: "database_url: not set"},
		{args: []string{"serve", "--schedule", "every 5 minutes"}, code: 2, stderr: "mps-archiver serve: --schedule: "},
		{args: []string{"details"}, code: 2, stderr: "mps-archiver details: want `mps-archiver details requeue`"},
		{args: []string{"details", "purge"}, code: 2, stderr: "mps-archiver details: want `mps-archiver details requeue`"},
		{args: []string{"details", "-h"}, code: 0, stderr: "Usage: mps-archiver details [flags] requeue"},
		{args: []string{"simulate", "--fault-actions", "DescribeEverything"}, env: creds, code: 1, stderr: `--fault-actions: "DescribeEverything" is not DescribeTasks, DescribeTaskDetail, DescribeImageTasks or DescribeImageTaskDetail`},
		{args: []string{"report", "--section", "everything"}, code: 2, stderr: `mps-archiver report: --section "everything": want one of volume, durations,`},
		{args: []string{"report", "--by", "year"}, code: 2, stderr: `mps-archiver report: --by "year": want day, week or month`},
		{args: []string{"report", "--format", "yaml"}, code: 2, stderr: `--format "yaml": want table, csv, json, markdown`},
		{args: []string{"report", "--since", "yesterday"}, code: 2, stderr: `--since "yesterday": want YYYY-MM-DD or an RFC 3339 time`},
		{args: []string{"report", "--since", "2026-02-01", "--until", "2026-01-01"}, code: 2, stderr: "is not after --since"},
		{args: []string{"report", "--stuck-after", "-1h"}, code: 2, stderr: "--stuck-after -1h0m0s must be positive"},
		{args: []string{"simulate"}, code: 1, stderr: "the simulator accepts the credentials in TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY"},
		{args: []string{"simulate", "--vocabulary", "klingon"}, env: creds, code: 1, stderr: `--vocabulary "klingon": want action, kinds or mixed`},
		{args: []string{"simulate", "--filters", "sometimes"}, env: creds, code: 1, stderr: `--filters "sometimes"`},
		{args: []string{"bench", "--tasks", "10"}, code: 1, stderr: "--tasks and --latency-tasks must be at least 1000"},
	} {
		t.Run(strings.Join(append([]string{"mps-archiver"}, tc.args...), " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return tc.env[k] }}
			code := Main(context.Background(), env, tc.args)
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if tc.stderr == "" && first != "" || !strings.Contains(first, tc.stderr) {
				t.Errorf("first line of stderr:\n %s\nwant it to hold\n %s", first, tc.stderr)
			}
			if tc.stdout != "" && !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, stdout.String())
			}
			for _, secret := range []string{"cli-secret-key-7f3e", "Zq", "9xK", "w7Lm"} {
				if strings.Contains(stdout.String()+stderr.String(), secret) {
					t.Errorf("output leaks %q", secret)
				}
			}
			if f := archivetest.LeakedFragment(stdout.String()+stderr.String(), dbPasswords...); f != "" {
				t.Errorf("output leaks %q of a database password", f)
			}
		})
	}
}
