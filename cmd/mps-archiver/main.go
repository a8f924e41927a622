// Command mps-archiver keeps Tencent Cloud MPS task history beyond the API's
// 7-day window by draining DescribeTasks into PostgreSQL.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	// Time-zone data in the binary: CRON_TZ schedules work on scratch and
	// distroless images, which have no /usr/share/zoneinfo.
	_ "time/tzdata"
)

func main() {
	tuneGC()
	// The first signal asks for a graceful stop (a running sync may finish
	// within the grace period); the second stops work at once but still
	// lets the run record its outcome (a few seconds at most); a third, or
	// that bound passing, exits without waiting.
	ctx, cancel := context.WithCancelCause(context.Background())
	abort, abortNow := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		cancel(fmt.Errorf("received %s", sig))
		sig = <-sigs
		name := unix.SignalName(sig.(syscall.Signal))
		fmt.Fprintf(os.Stderr, "mps-archiver: second %s: stopping now and recording the run's outcome (another signal exits at once)\n", name)
		abortNow(fmt.Errorf("second %s: stopped at once", name))
		select {
		case sig = <-sigs:
			fmt.Fprintf(os.Stderr, "mps-archiver: %s again, exiting without recording the run's outcome\n", sig)
		case <-time.After(abortWait):
			fmt.Fprintf(os.Stderr, "mps-archiver: the run's outcome was not recorded within %s; exiting\n", abortWait)
		}
		os.Exit(130)
	}()
	env := &Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Stdin: os.Stdin, Abort: abort}
	// A terminal, not merely a character device (/dev/null is one too).
	if _, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS); err == nil {
		env.Terminal = true
	}
	if _, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS); err == nil {
		env.StderrTerminal = true
	}
	os.Exit(Main(ctx, env, os.Args[1:]))
}

// tuneGC trades memory the archiver has to spare for CPU it has not: a sync
// allocates a few hundred KB per page and keeps almost none of it, and on a
// 2-core machine shared with PostgreSQL the default collector's pace cost 14%
// of a cold sync's throughput (measured with `mps-archiver bench`). The soft
// limit keeps the heap well under the 64 MiB RSS budget whatever the pace.
// GOGC and GOMEMLIMIT in the environment still win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(48 << 20)
	}
}

// Env is what a command may touch of the outside world, so tests can run
// commands in-process.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Stdin answers a confirmation prompt, asked only when Terminal (a
	// person is there to answer).
	Stdin    io.Reader
	Terminal bool
	// StderrTerminal: standard error is a terminal, where progress may be
	// a line that updates in place.
	StderrTerminal bool
	// Abort is cancelled on a second signal: work stops at once, outcomes
	// are still recorded. Nil: never.
	Abort context.Context
}

// abortWait bounds how long a second signal waits for the run's outcome to
// be written (the syncer allows that write 10 s).
const abortWait = 12 * time.Second

// abortContext is the context of work that only a second signal stops.
func (e *Env) abortContext() context.Context {
	if e.Abort == nil {
		return context.Background()
	}
	return e.Abort
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

func commands() []command {
	return []command{
		{"sync", "drain every status once into the archive", runSync},
		{"serve", "run syncs on a cron schedule, with /healthz, /readyz and /metrics", runServe},
		{"migrate", "manage the archive schema: up, down, version, force", runMigrate},
		{"status", "the archive's health on one screen; exit 4 when something needs attention", runStatus},
		{"report", "summarise the archive", runReport},
		{"usage", "read billed usage (DescribeUsageData) now; serve and sync read it on usage.schedule", runUsage},
		{"details", "the detail queue: requeue what was given up while MPS still has it", runDetails},
		{"rollups", "check the daily rollups against the raw rows, or rebuild them", runRollups},
		{"verify", "check the archive against its proof log and signed checkpoints, or a bundle offline", runVerify},
		{"prove", "write a proof bundle of one task's facts, checkable offline", runProve},
		{"export", "write a proof bundle of a time range's facts, checkable offline; or a closed month as Parquet (--month)", runExport},
		{"import", "bring a month detached to cold storage back from its export", runImport},
		{"keys", "make a checkpoint signing key, or print the configured one's public key", runKeys},
		{"simulate", "run the local MPS API simulator (DescribeTasks, DescribeTaskDetail, DescribeUsageData)", runSimulate},
		{"demo", "throwaway PostgreSQL + simulator + scheduler, end to end", runDemo},
		{"bench", "measure sync throughput, memory and write amplification on this machine", runBench},
		{"version", "print the version", runVersion},
	}
}

// exitError carries a specific exit status; logged means the command's
// log has said it already, and it is not printed again.
type exitError struct {
	code   int
	err    error
	logged bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Exit statuses, part of the public contract.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
	exitLocked = 3 // sync, usage: another process holds the run lock
)

var errUsage = errors.New("usage")

// docsURL is where a binary-only user finds the README and the docs.
const docsURL = "https://github.com/mps-archiver/mps-archiver#readme"

// Main runs the command line and returns the exit status.
func Main(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		if err == nil {
			return exitOK
		}
		if errors.Is(err, errUsage) {
			return exitUsage
		}
		var ee *exitError
		if !errors.As(err, &ee) || !ee.logged {
			fmt.Fprintf(env.Stderr, "mps-archiver %s: %s\n", c.name, oneLine(err.Error()))
		}
		if ee != nil {
			return ee.code
		}
		return exitFailed
	}
	fmt.Fprintf(env.Stderr, "mps-archiver: unknown command %q (run `mps-archiver help`)\n", args[0])
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "mps-archiver archives Tencent Cloud MPS tasks (DescribeTasks) into PostgreSQL.")
	fmt.Fprintln(w, "\nUsage: mps-archiver <command> [flags]   (each command takes -h)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEnvironment: DATABASE_URL, TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY, MPS_ENDPOINT,")
	fmt.Fprintln(w, "MPS_RATE_LIMIT, MPS_DETAILS_MODE, MPS_DETAILS_RATE_LIMIT, MPS_ARCHIVER_PUSHGATEWAY(_INSTANCE),")
	fmt.Fprintln(w, "MPS_ARCHIVER_SIGNING_KEY_FILE, MPS_ARCHIVER_CHECKPOINT_DIR, MPS_ARCHIVER_VERIFIER_KEYS,")
	fmt.Fprintln(w, "MPS_ARCHIVER_CONFIG, TENCENTCLOUD_REGION, LOG_LEVEL, LOG_FORMAT")
	fmt.Fprintln(w, "(secrets also as *_FILE). `mps-archiver COMMAND -h` describes a command's flags;")
	fmt.Fprintln(w, "the documentation is at "+docsURL+".")
	fmt.Fprintln(w, "\nExit statuses: 0 success, 1 failure, 2 usage error, 3 sync skipped (another process holds the run lock),")
	fmt.Fprintln(w, "4 status found something that needs attention.")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
