package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/mps-archiver/mps-archiver/migrations"
)

// Migrator applies the embedded migrations. golang-migrate serialises
// concurrent migrators with a session advisory lock, so several replicas may
// call Up at once; run it over a direct connection, not through a
// transaction-pooling PgBouncer, which breaks session locks.
type Migrator struct {
	m    *migrate.Migrate
	pool *pgxpool.Pool // the store's, for what a confirmation says
	// Progress, when set, receives the notices a migration raises as it
	// goes ("rollups: built 2025-03 (4 of 24 months)").
	Progress func(msg string)
}

// NewMigrator opens a migrator on the store's pool.
func (s *Store) NewMigrator(ctx context.Context) (*Migrator, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	// A connection of its own, not one of the pool's: golang-migrate keeps
	// the connection it took when it fails to start (for instance without
	// CREATE privilege), and a pool would then wait for it forever on Close.
	mg := &Migrator{pool: s.pool}
	cfg := s.pool.Config().ConnConfig.Copy()
	// A long migration says how far it is with RAISE NOTICE (the rollup
	// backfill, a month at a time): pass each one on as it arrives.
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if mg.Progress != nil {
			mg.Progress(n.Message)
		}
	}
	db := stdlib.OpenDB(*cfg)
	drv, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open migration driver: %w", interpretError(err))
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		_ = drv.Close()
		return nil, fmt.Errorf("open migrator: %w", err)
	}
	mg.m = m
	return mg, nil
}

// RowCounts counts the rows of the tables that exist among names (a
// table absent is left out): what a down migration would delete.
func (mg *Migrator) RowCounts(ctx context.Context, names []string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, n := range names {
		var exists bool
		if err := mg.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, n).Scan(&exists); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", n, interpretError(err))
		}
		if !exists {
			continue
		}
		var c int64
		if err := mg.pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{n}.Sanitize()).Scan(&c); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", n, interpretError(err))
		}
		out[n] = c
	}
	return out, nil
}

// Close releases the migrator's connection.
func (mg *Migrator) Close() error {
	srcErr, dbErr := mg.m.Close()
	return errors.Join(srcErr, dbErr)
}

// Up applies every pending migration; no change is not an error.
func (mg *Migrator) Up() error {
	if err := mg.m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Down reverts steps migrations (all of them when steps <= 0).
func (mg *Migrator) Down(steps int) error {
	var err error
	if steps <= 0 {
		err = mg.m.Down()
	} else {
		err = mg.m.Steps(-steps)
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// To migrates up or down to version.
func (mg *Migrator) To(version uint) error {
	if err := mg.m.Migrate(version); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

// Force sets the version and clears the dirty flag without running anything.
func (mg *Migrator) Force(version int) error {
	if err := mg.m.Force(version); err != nil {
		return fmt.Errorf("migrate force %d: %w", version, err)
	}
	return nil
}

// Version reports the schema version; ok is false before any migration.
func (mg *Migrator) Version() (version uint, dirty bool, ok bool, err error) {
	v, d, err := mg.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, false, nil
	}
	if err != nil {
		return 0, false, false, fmt.Errorf("read schema version: %w", err)
	}
	return v, d, true, nil
}

// Migrate opens the database at dsn and hands fn a Migrator on a
// connection of its own.
func Migrate(ctx context.Context, dsn string, fn func(*Migrator) error) error {
	st, err := Open(ctx, dsn, Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	mg, err := st.NewMigrator(ctx)
	if err != nil {
		return err
	}
	defer mg.Close()
	return fn(mg)
}

// MigrateUp applies every pending migration to the database at dsn: for
// databases the archiver creates itself (the demo's, the benchmark's, the
// tests' template).
func MigrateUp(ctx context.Context, dsn string) error {
	return Migrate(ctx, dsn, (*Migrator).Up)
}
