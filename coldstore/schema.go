// Package coldstore writes a closed month of the archive as Parquet files
// (one a table) with a manifest, to a directory or an S3-compatible bucket,
// and reads them back: to check an export against the database before
// the month's partitions go, and to bring a month back. The files are
// what DuckDB, Trino, Spark or ClickHouse query (docs/scaling.md); their
// schema is this file's, documented in docs/schema.md, and changes only
// by adding columns.
package coldstore

import "time"

// Every column is the database's, under its name, with its type mapped:
// text → STRING, integer → INT32, bigint → INT64, double precision →
// DOUBLE, boolean → BOOLEAN, timestamptz → TIMESTAMP(MICROS, UTC),
// text[] → LIST<STRING>, jsonb → STRING (JSON) as jsonb prints it, numeric
// → STRING (exact). A nullable column is OPTIONAL.

// Task is a row of tasks.
type Task struct {
	TaskID           string     `db:"task_id" parquet:"task_id"`
	TaskType         string     `db:"task_type" parquet:"task_type"`
	SubTaskTypes     []string   `db:"sub_task_types" parquet:"sub_task_types,list"`
	Status           string     `db:"status" parquet:"status"`
	CreateTime       *time.Time `db:"create_time" parquet:"create_time,optional,timestamp(microsecond)"`
	BeginProcessTime *time.Time `db:"begin_process_time" parquet:"begin_process_time,optional,timestamp(microsecond)"`
	FinishTime       *time.Time `db:"finish_time" parquet:"finish_time,optional,timestamp(microsecond)"`
	Raw              string     `db:"raw" parquet:"raw,json"`
	FirstStatus      string     `db:"first_status" parquet:"first_status"`
	FirstSeenAt      time.Time  `db:"first_seen_at" parquet:"first_seen_at,timestamp(microsecond)"`
	LastChangedAt    time.Time  `db:"last_changed_at" parquet:"last_changed_at,timestamp(microsecond)"`
	FirstSeenRunID   *int64     `db:"first_seen_run_id" parquet:"first_seen_run_id,optional"`
	LastChangedRunID *int64     `db:"last_changed_run_id" parquet:"last_changed_run_id,optional"`
	GoneAt           *time.Time `db:"gone_at" parquet:"gone_at,optional,timestamp(microsecond)"`
	Source           string     `db:"source" parquet:"source"`
}

// StatusChange is a row of task_status_changes.
type StatusChange struct {
	ID         int64      `db:"id" parquet:"id"`
	TaskID     string     `db:"task_id" parquet:"task_id"`
	RunID      *int64     `db:"run_id" parquet:"run_id,optional"`
	FromStatus string     `db:"from_status" parquet:"from_status"`
	ToStatus   string     `db:"to_status" parquet:"to_status"`
	ObservedAt time.Time  `db:"observed_at" parquet:"observed_at,timestamp(microsecond)"`
	CreateTime *time.Time `db:"create_time" parquet:"create_time,optional,timestamp(microsecond)"`
}

// Outcome is a row of task_details.
type Outcome struct {
	TaskID       string     `db:"task_id" parquet:"task_id"`
	FetchedAt    time.Time  `db:"fetched_at" parquet:"fetched_at,timestamp(microsecond)"`
	Outcome      string     `db:"outcome" parquet:"outcome"`
	ErrCode      *string    `db:"err_code" parquet:"err_code,optional"`
	ErrCodeExt   *string    `db:"err_code_ext" parquet:"err_code_ext,optional"`
	Message      *string    `db:"message" parquet:"message,optional"`
	Ambiguities  []string   `db:"ambiguities" parquet:"ambiguities,list"`
	Raw          *string    `db:"raw" parquet:"raw,optional"` // JSON text (parquet-go writes no optional JSON)
	RawTruncated bool       `db:"raw_truncated" parquet:"raw_truncated"`
	RawBytes     int32      `db:"raw_bytes" parquet:"raw_bytes"`
	CreateTime   *time.Time `db:"create_time" parquet:"create_time,optional,timestamp(microsecond)"`
}

// SubtaskResult is a row of task_subtask_results.
type SubtaskResult struct {
	TaskID     string     `db:"task_id" parquet:"task_id"`
	Ordinal    int32      `db:"ordinal" parquet:"ordinal"`
	Kind       string     `db:"kind" parquet:"kind"`
	Status     string     `db:"status" parquet:"status"`
	ErrCode    *string    `db:"err_code" parquet:"err_code,optional"`
	ErrCodeExt *string    `db:"err_code_ext" parquet:"err_code_ext,optional"`
	Message    *string    `db:"message" parquet:"message,optional"`
	Definition *string    `db:"definition" parquet:"definition,optional"`
	OutputPath *string    `db:"output_path" parquet:"output_path,optional"`
	CreateTime *time.Time `db:"create_time" parquet:"create_time,optional,timestamp(microsecond)"`
}

// Output is a row of task_outputs (a captured outcome's media facts).
type Output struct {
	TaskID      string     `db:"task_id" parquet:"task_id"`
	CreateTime  *time.Time `db:"create_time" parquet:"create_time,optional,timestamp(microsecond)"`
	Ordinal     int32      `db:"ordinal" parquet:"ordinal"`
	Kind        string     `db:"kind" parquet:"kind"`
	Template    *int64     `db:"template" parquet:"template,optional"`
	Container   *string    `db:"container" parquet:"container,optional"`
	DurationS   *float64   `db:"duration_s" parquet:"duration_s,optional"`
	NoDuration  *string    `db:"no_duration" parquet:"no_duration,optional"`
	Width       *int32     `db:"width" parquet:"width,optional"`
	Height      *int32     `db:"height" parquet:"height,optional"`
	Tier        *string    `db:"tier" parquet:"tier,optional"`
	VideoCodec  *string    `db:"video_codec" parquet:"video_codec,optional"`
	FPS         *float64   `db:"fps" parquet:"fps,optional"`
	Bitrate     *int64     `db:"bitrate" parquet:"bitrate,optional"`
	SizeBytes   *int64     `db:"size_bytes" parquet:"size_bytes,optional"`
	StorageType *string    `db:"storage_type" parquet:"storage_type,optional"`
	Bucket      *string    `db:"bucket" parquet:"bucket,optional"`
	Region      *string    `db:"region" parquet:"region,optional"`
	Path        *string    `db:"path" parquet:"path,optional"`
}

// Input is a row of task_inputs.
type Input struct {
	TaskID     string     `db:"task_id" parquet:"task_id"`
	CreateTime *time.Time `db:"create_time" parquet:"create_time,optional,timestamp(microsecond)"`
	Ordinal    int32      `db:"ordinal" parquet:"ordinal"`
	Type       *string    `db:"type" parquet:"type,optional"`
	Bucket     *string    `db:"bucket" parquet:"bucket,optional"`
	Region     *string    `db:"region" parquet:"region,optional"`
	Object     *string    `db:"object" parquet:"object,optional"`
	URL        *string    `db:"url" parquet:"url,optional"`
	DurationS  *float64   `db:"duration_s" parquet:"duration_s,optional"`
	Width      *int32     `db:"width" parquet:"width,optional"`
	Height     *int32     `db:"height" parquet:"height,optional"`
	SizeBytes  *int64     `db:"size_bytes" parquet:"size_bytes,optional"`
}

// Usage is a row of usage_daily (a billed figure of a day of the month):
// exported with the month, never detached (a few rows a day).
type Usage struct {
	Day           int32     `db:"day" parquet:"day,date"` // days since 1970-01-01 (DATE)
	Region        string    `db:"region" parquet:"region"`
	Type          string    `db:"type" parquet:"type"`
	Specification string    `db:"specification" parquet:"specification"`
	Count         int64     `db:"count" parquet:"count"`
	Usage         string    `db:"usage" parquet:"usage"`
	FirstReadAt   time.Time `db:"first_read_at" parquet:"first_read_at,timestamp(microsecond)"`
	ChangedAt     time.Time `db:"changed_at" parquet:"changed_at,timestamp(microsecond)"`
	Revisions     int32     `db:"revisions" parquet:"revisions"`
}
