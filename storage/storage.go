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
	"net/url"
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
	ErrUnavailable = errors.New("database unavailable")
	// ErrReadOnly: the server refused a write (read-only transaction, hot
	// standby, disk full).
	ErrReadOnly = errors.New("database refuses writes")
	// ErrTimeout: a statement hit statement_timeout or was cancelled.
	ErrTimeout = errors.New("database statement timed out")
	// ErrSchemaBehind, ErrSchemaDirty and ErrSchemaAhead describe a schema the
	// binary cannot work with.
	ErrSchemaBehind = errors.New("database schema is behind this binary")
	ErrSchemaDirty  = errors.New("database schema is dirty after a failed migration")
	ErrSchemaAhead  = errors.New("database schema is newer than this binary")
)

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
	url  string
}

// Open connects to the database at dsn. It fails fast with an error that
// never contains the password.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if err := checkUserInfo(dsn); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database URL %s: %s", RedactURL(dsn), redactParseError(err))
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
		return nil, fmt.Errorf("connect to %s: %w", RedactURL(dsn), interpretError(err))
	}
	s := &Store{pool: pool, url: dsn}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", RedactURL(dsn), err)
	}
	return s, nil
}

// Close releases every connection.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	return interpretError(s.pool.Ping(ctx))
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

// RedactURL hides the password of a postgres:// URL or a key=value DSN.
// The user information is everything up to the URL's last "@": a password
// with an unescaped "@" or "/" (a common slip) would otherwise show its
// tail as the host and path.
func RedactURL(dsn string) string {
	if scheme, rest, ok := strings.Cut(dsn, "://"); ok && (scheme == "postgres" || scheme == "postgresql") {
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			user, _, hasPassword := strings.Cut(rest[:i], ":")
			if hasPassword || strings.ContainsAny(rest[:i], "/@") {
				if strings.ContainsAny(user, "/@") {
					user = "(hidden)"
				}
				dsn = scheme + "://" + user + ":xxxxx@" + rest[i+1:]
			}
		}
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "postgres://(unparseable URL)"
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "password") {
			fields[i] = k + "=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// redactParseError drops pgx's echo of the input, which can hold a password.
func redactParseError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "cannot parse `"); i >= 0 {
		if j := strings.Index(msg[i+14:], "`:"); j >= 0 {
			return "cannot parse:" + msg[i+14+j+2:]
		}
	}
	return msg
}

// checkUserInfo refuses a postgres:// URL whose password holds an
// unescaped "@" or "/": the driver would take part of the password for the
// host and the database, and print them in its errors.
func checkUserInfo(dsn string) error {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok || scheme != "postgres" && scheme != "postgresql" {
		return nil
	}
	i := strings.LastIndex(rest, "@")
	if i < 0 || !strings.ContainsAny(rest[:i], "@/") {
		return nil
	}
	return fmt.Errorf("database URL %s: the user or password holds an unescaped \"@\" or \"/\"; percent-encode them (@ as %%40, / as %%2F, : as %%3A, # as %%23, ? as %%3F)", RedactURL(dsn))
}
