// Package pgtemp starts a throwaway PostgreSQL server from the machine's
// server binaries (Debian's postgresql package), for tests and for the demo.
// As root it runs the server as the unprivileged postgres user, because
// initdb and postgres refuse to run as root.
package pgtemp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoServer is returned when no PostgreSQL server binaries are installed.
var ErrNoServer = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package `postgresql` " +
	"(apt-get install postgresql), put its bin directory on PATH or in PG_BIN, or point TEST_DATABASE_URL at a server")

// Server is a running throwaway server.
type Server struct {
	Dir     string // data directory
	Port    int
	binDir  string
	runAs   string // "" or the user the server runs as
	logFile string
	pgOpts  string
}

// Options tunes Start.
type Options struct {
	// Dir is the data directory; "" makes a temporary one.
	Dir string
	// Durable keeps fsync on (the demo); tests turn it off for speed.
	Durable bool
	// TLSCert and TLSKey (PEM), when set, turn TLS on with this server
	// certificate (tests of sslmode=verify-full with a private CA).
	TLSCert, TLSKey []byte
}

// FindBinDir locates initdb: $PG_BIN, then PATH, then
// /usr/lib/postgresql/<newest>/bin.
func FindBinDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
		return "", fmt.Errorf("PG_BIN=%s has no initdb: %w", d, ErrNoServer)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// Follow links: pg_ctl and pg_dump live beside the real initdb.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	return "", ErrNoServer
}

func versionOf(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// Start initialises and starts a server listening on 127.0.0.1 at a free
// port. The caller must Stop it.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{binDir: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root, and there is no `postgres` user to run PostgreSQL as (initdb refuses root): install the Debian package `postgresql`, which creates it")
		}
		s.runAs = u.Username
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mps-archiver-pg-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s.Dir = dir
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	if s.runAs != "" {
		if err := chownTo(dir, s.runAs); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	s.logFile = filepath.Join(dir, "server.log")

	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if out, err := s.run(ctx, "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
			return nil, fmt.Errorf("initdb: %v: %s", err, lastLines(out, 5))
		}
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	pgOpts := []string{
		"-p " + strconv.Itoa(s.Port),
		"-k " + dir,
		"-c listen_addresses=127.0.0.1",
		"-c max_connections=200",
		"-c shared_buffers=128MB",
	}
	if !opts.Durable {
		pgOpts = append(pgOpts, "-c fsync=off", "-c synchronous_commit=off")
	}
	if len(opts.TLSCert) > 0 {
		cert, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
		for f, b := range map[string][]byte{cert: opts.TLSCert, key: opts.TLSKey} {
			if err := os.WriteFile(f, b, 0o600); err != nil {
				return nil, err
			}
			if s.runAs != "" {
				if err := chownTo(f, s.runAs); err != nil {
					return nil, err
				}
			}
		}
		pgOpts = append(pgOpts, "-c ssl=on", "-c ssl_cert_file="+cert, "-c ssl_key_file="+key)
	}
	s.pgOpts = strings.Join(pgOpts, " ")
	if out, err := s.run(ctx, "pg_ctl", "-D", data, "-l", s.logFile, "-w", "-t", "60", "-o", s.pgOpts, "start"); err != nil {
		log, _ := os.ReadFile(s.logFile)
		return nil, fmt.Errorf("pg_ctl start: %v: %s %s", err, lastLines(out, 5), lastLines(log, 10))
	}
	return s, nil
}

// StartCommand is the shell command that starts this server again on its
// data directory, port and socket directory, after Stop(false).
func (s *Server) StartCommand() string {
	cmd := fmt.Sprintf("%s -D %s -l %s -o '%s' start", filepath.Join(s.binDir, "pg_ctl"), filepath.Join(s.Dir, "data"), s.logFile, s.pgOpts)
	if s.runAs != "" {
		cmd = "runuser -u " + s.runAs + " -- " + cmd
	}
	return cmd
}

// URL is a connection URL for database db.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// Stop shuts the server down fast; with remove it also deletes the data
// directory.
func (s *Server) Stop(remove bool) error {
	_, err := s.run(context.Background(), "pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "stop")
	if remove {
		if rmErr := os.RemoveAll(s.Dir); rmErr != nil && err == nil {
			err = rmErr
		}
	}
	return err
}

// Restart stops and starts the server on the same port (fault tests).
func (s *Server) Restart(ctx context.Context, down time.Duration) error {
	data := filepath.Join(s.Dir, "data")
	if out, err := s.run(ctx, "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	time.Sleep(down)
	if out, err := s.run(ctx, "pg_ctl", "-D", data, "-l", s.logFile, "-w", "-t", "60", "-o", s.pgOpts, "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	return nil
}

func (s *Server) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	path := filepath.Join(s.binDir, tool)
	var cmd *exec.Cmd
	if s.runAs != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = s.Dir
	// A process group of its own: Ctrl-C in the terminal must not reach the
	// server before we have read from it and stopped it ourselves.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}

func chownTo(dir, username string) error {
	u, err := user.Lookup(username)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(dir, uid, gid)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte(" | ")))
}
