// Package storage is the archive's PostgreSQL side and the only package that
// imports pgx. Driver errors are translated into this package's sentinels at
// the boundary, so callers can tell "the database is away" from "the schema is
// wrong" without knowing pgx.
package storage

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mps-archiver/mps-archiver/migrations"
)

// Sentinels wrapped by this package's errors.
var (
	// ErrUnavailable: the server could not be reached or went away.
	ErrUnavailable error = &sentinel{msg: "database unavailable", unavailable: true}
	// ErrReadOnly: the server refused a write (read-only transaction, hot
	// standby, disk full).
	ErrReadOnly = errors.New("database refuses writes")
	// ErrTimeout: a statement hit statement_timeout or was cancelled.
	ErrTimeout = errors.New("database statement timed out")
	// ErrSchemaBehind, ErrSchemaDirty and ErrSchemaAhead describe a schema the
	// binary cannot work with.
	ErrSchemaBehind error = &sentinel{msg: "database schema is behind this binary", schema: true}
	ErrSchemaDirty  error = &sentinel{msg: "database schema is dirty after a failed migration", schema: true}
	ErrSchemaAhead  error = &sentinel{msg: "database schema is newer than this binary", schema: true}
)

// sentinel is an error of this package that says what kind it is, so that
// a package that must not import this one (the daemon) can ask by
// behaviour: errors.As(err, &interface{ SchemaMismatch() bool }).
type sentinel struct {
	msg                 string
	unavailable, schema bool
}

func (e *sentinel) Error() string { return e.msg }

// Unavailable reports whether the database could not be reached.
func (e *sentinel) Unavailable() bool { return e.unavailable }

// SchemaMismatch reports whether the schema is not the binary's.
func (e *sentinel) SchemaMismatch() bool { return e.schema }

// Options tunes the pool.
type Options struct {
	// MaxConns caps the pool (default 6: the lock connection, two page
	// writers, progress, a probe and headroom).
	MaxConns int32
	// ApplicationName shows in pg_stat_activity.
	ApplicationName string
}

// Store is a handle on the archive database.
type Store struct {
	pool *pgxpool.Pool
	conn *conninfo
}

// Open connects to the database at dsn. It fails fast with an error that
// names the database by host, port, user and database, and holds no
// fragment of the connection string's passwords.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, ci, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 6
	}
	if opts.ApplicationName == "" {
		opts.ApplicationName = "mps-archiver"
	}
	cfg.MaxConns = opts.MaxConns
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 15 * time.Second
	rp := cfg.ConnConfig.RuntimeParams
	if rp["application_name"] == "" {
		rp["application_name"] = opts.ApplicationName
	}
	// The page upsert's pre-filter joins against tasks; a cached generic plan
	// made while the table was empty turns into a full scan per page.
	rp["plan_cache_mode"] = "force_custom_plan"
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, ci.wrap("connect to", interpretError(err))
	}
	s := &Store{pool: pool, conn: ci}
	if err := interpretError(pool.Ping(ctx)); err != nil {
		pool.Close()
		return nil, ci.wrap("connect to", err)
	}
	return s, nil
}

// Close releases every connection.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the server answers. Its error may come from a new
// connection, and is scrubbed as Open's are.
func (s *Store) Ping(ctx context.Context) error {
	return s.conn.wrap("", interpretError(s.pool.Ping(ctx)))
}

// SchemaVersion reads golang-migrate's version row; version 0 means no
// migration has run.
func (s *Store) SchemaVersion(ctx context.Context) (version uint, dirty bool, err error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", interpretError(err))
	}
	if !exists {
		return 0, false, nil
	}
	var v int64
	err = s.pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&v, &dirty)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", interpretError(err))
	}
	return uint(v), dirty, nil
}

// CheckSchema returns nil when the schema is exactly the binary's version,
// else an error that says what to do.
func (s *Store) CheckSchema(ctx context.Context) error {
	v, dirty, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	want := migrations.Latest()
	switch {
	case dirty:
		return fmt.Errorf("%w: version %d failed half-way; fix what it left, then run `mps-archiver migrate force %d` (or the previous version) and `mps-archiver migrate up`", ErrSchemaDirty, v, v)
	case v < want:
		return fmt.Errorf("%w: database is at version %d, this binary needs %d; run `mps-archiver migrate up`", ErrSchemaBehind, v, want)
	case v > want:
		return fmt.Errorf("%w: database is at version %d, this binary knows up to %d; upgrade mps-archiver", ErrSchemaAhead, v, want)
	}
	return nil
}

// IsSchemaMismatch reports whether err says the schema is not the
// binary's (behind, ahead or dirty), as opposed to the database being away.
func IsSchemaMismatch(err error) bool {
	return errors.Is(err, ErrSchemaBehind) || errors.Is(err, ErrSchemaAhead) || errors.Is(err, ErrSchemaDirty)
}

// interpretError maps pgx and network errors onto this package's sentinels,
// keeping the original text (which pgx never fills with the password).
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "25006" || pgErr.Code == "53100" || pgErr.Code == "42501" && strings.Contains(pgErr.Message, "read-only"):
			return fmt.Errorf("%w: %s (SQLSTATE %s)", ErrReadOnly, pgErr.Message, pgErr.Code)
		case pgErr.Code == "57014":
			return fmt.Errorf("%w: %s", ErrTimeout, pgErr.Message)
		case strings.HasPrefix(pgErr.Code, "08"), pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03":
			return fmt.Errorf("%w: %s (SQLSTATE %s)", ErrUnavailable, pgErr.Message, pgErr.Code)
		}
		return err
	}
	// An untrusted server certificate is a configuration problem, not an
	// outage: say what fixes it.
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("the database server's certificate is signed by a CA this machine does not trust: name the CA's certificate file with sslrootcert=/path/to/ca.crt in DATABASE_URL: %w", err)
	case errors.As(err, &badHost):
		return fmt.Errorf("the database server's certificate is not for the host in DATABASE_URL: connect by a name the certificate holds: %w", err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || pgconn.SafeToRetry(err) || isConnectError(err) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "unexpected EOF") ||
		strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe")
}
