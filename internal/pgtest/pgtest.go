// Package pgtest gives tests a real PostgreSQL: TEST_DATABASE_URL when set,
// else one throwaway server per test binary (package pgtemp). Each test that
// asks gets its own database, cloned from a migrated template in a few
// milliseconds, so tests can run in parallel without seeing each other.
//
// It is test support, and the one place outside storage that uses pgx
// directly: it creates and drops databases.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mps-archiver/mps-archiver/internal/pgtemp"
	"github.com/mps-archiver/mps-archiver/storage"
)

var (
	adminURL string
	server   *pgtemp.Server
	counter  atomic.Int64
	tmplOnce sync.Once
	tmplErr  error
	prefix   = fmt.Sprintf("t%d_", os.Getpid())
)

const template = "mps_archiver_template"

// Main runs a package's tests around one server. Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit, for a TestMain that has its own cleanup
// to do after the tests (os.Exit would skip its deferred calls).
func Run(m *testing.M) int { return run(m) }

func run(m *testing.M) int {
	adminURL = os.Getenv("TEST_DATABASE_URL")
	if adminURL == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var err error
		server, err = pgtemp.Start(ctx, pgtemp.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: cannot start a throwaway PostgreSQL:", err)
			return 1
		}
		defer server.Stop(true)
		adminURL = server.URL("postgres")
	}
	return m.Run()
}

// Server is the throwaway server, or nil when TEST_DATABASE_URL is used.
func Server() *pgtemp.Server { return server }

// AdminURL connects to the maintenance database.
func AdminURL() string { return adminURL }

// NewDB creates a fresh, migrated database for t and returns its URL.
func NewDB(t testing.TB) string {
	t.Helper()
	tmplOnce.Do(func() { tmplErr = makeTemplate() })
	if tmplErr != nil {
		t.Fatalf("pgtest: migrated template: %v", tmplErr)
	}
	return newDB(t, template)
}

// Clone creates a copy of the database at u (which nobody may be
// connected to), dropped when the test ends, and returns its URL.
func Clone(t testing.TB, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return newDB(t, strings.TrimPrefix(pu.Path, "/"))
}

// NewEmptyDB creates a fresh database with no schema.
func NewEmptyDB(t testing.TB) string {
	t.Helper()
	return newDB(t, "template0")
}

func newDB(t testing.TB, from string) string {
	if adminURL == "" {
		t.Fatal("pgtest: no database; call pgtest.Main from TestMain")
	}
	name := fmt.Sprintf("%s%d", prefix, counter.Add(1))
	if err := admin(fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, from)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		_ = admin(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return WithDatabase(adminURL, name)
}

// WithDatabase swaps the database name in a URL.
func WithDatabase(u, name string) string {
	pu, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	pu.Path = "/" + name
	return pu.String()
}

func makeTemplate() error {
	_ = admin("DROP DATABASE IF EXISTS " + template + " WITH (FORCE)")
	if err := admin("CREATE DATABASE " + template); err != nil {
		return err
	}
	return storage.MigrateUp(context.Background(), WithDatabase(adminURL, template))
}

// Exec runs sql against the database at u.
func Exec(t testing.TB, u, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// Query returns every row of sql as a slice of values.
func Query(t testing.TB, u, sql string, args ...any) [][]any {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatalf("pgtest: %s: %v", sql, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
	return out
}

// Scalar returns the single value of sql.
func Scalar[T any](t testing.TB, u, sql string, args ...any) T {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	var v T
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
	return v
}

func admin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Conn opens a connection that lives until the test ends, for tests that
// hold locks or sessions.
func Conn(t testing.TB, u string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
