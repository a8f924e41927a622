// Package duckdbcheck holds the test that reads the archive's Parquet
// exports with DuckDB, the engine docs/scaling.md points users to, and
// compares every table and column with PostgreSQL. It is a module of its
// own: DuckDB is cgo, and the mps-archiver binary stays free of it.
package duckdbcheck
