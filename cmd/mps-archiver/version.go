package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/mps-archiver/mps-archiver/migrations"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// release is the version this code leads to: the newest heading of
// CHANGELOG.md (a test keeps the two equal). A build that is not stamped
// says it is a development build of it.
const release = "v0.5.0"

// pseudoVersion matches the version Go stamps into a build of a checkout
// (v0.0.0-20261201232937-dda4ec20d151, or vX.Y.Z-0.… after a tag): not a
// release, so the release it leads to and the commit are reported instead.
var pseudoVersion = regexp.MustCompile(`^v\d+\.\d+\.\d+-(?:[0-9A-Za-z.]+\.)?\d{14}-[0-9a-f]{12}(?:\+.*)?$`)

// buildVersion is the stamped version, else the module's (go install
// …@v1.2.3), else the release this checkout leads to and the VCS revision
// go build records ("v0.5.0-dev+1a2b3c4d5e6f", "-dirty" with uncommitted
// changes).
func buildVersion() string {
	if version != "dev" {
		return version
	}
	dev := release + "-dev"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return dev
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" && !pseudoVersion.MatchString(v) {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		return dev + "+" + rev + dirty
	}
	return dev
}

func runVersion(_ context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "version", "[--check]")
	check := fs.Bool("check", false, "also check what the runtime needs: time-zone data and TLS root certificates")
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	fmt.Fprintf(env.Stdout, "mps-archiver %s (schema %d, %s)\n", buildVersion(), migrations.Latest(), runtime.Version())
	if !*check {
		return nil
	}
	// A minimal container image is where these go missing: the check says
	// so before a sync fails with an opaque TLS or time-zone error.
	if _, err := time.LoadLocation("Asia/Shanghai"); err != nil {
		return fmt.Errorf("time-zone data: %v", err)
	}
	fmt.Fprintln(env.Stdout, "time-zone data: ok")
	pool, err := x509.SystemCertPool()
	if err != nil {
		return fmt.Errorf("TLS root certificates: %v", err)
	}
	n := len(pool.Subjects()) // deprecated for other uses; a count is fine
	if n == 0 {
		return errors.New("TLS root certificates: none found (install ca-certificates, or set SSL_CERT_FILE)")
	}
	fmt.Fprintf(env.Stdout, "TLS root certificates: %d\n", n)
	fmt.Fprintf(env.Stdout, "user: uid %d, gid %d\n", os.Getuid(), os.Getgid())
	return nil
}
