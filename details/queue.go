// Package details captures how each FINISH task ended: it works the
// archive's detail queue, reading each task's DescribeTaskDetail while MPS
// still has it, applying the failure rule, redacting secrets, and storing
// the outcome with its sub-tasks. It consumes two small interfaces, the API
// and the queue; it knows nothing of HTTP or pgx.
package details

import (
	"context"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// API reads one task's detail, by its source's detail action.
type API interface {
	TaskDetail(ctx context.Context, src mps.Source, taskID string) (*mps.TaskDetail, error)
}

// Queue is the archive's detail queue. Claims are leases: a claimed job
// that is neither completed nor released becomes claimable again when its
// lease runs out, so a crashed worker loses nothing.
type Queue interface {
	// ClaimDetails leases up to p.Limit claimable jobs, oldest deadline
	// first, counting an attempt on each; jobs leased by others are
	// skipped, never waited for.
	ClaimDetails(ctx context.Context, p ClaimParams) ([]Job, error)
	// CompleteDetail stores a job's outcome and removes it from the queue
	// in one transaction. It reports false when the task already had a
	// final one (an undecided outcome is replaced by a later reading).
	CompleteDetail(ctx context.Context, r Record) (bool, error)
	// ReleaseDetail gives a job back: after a failed attempt (Retry set,
	// the attempt counts), or unstarted (the attempt does not count).
	ReleaseDetail(ctx context.Context, p ReleaseParams) error
	// DetailBacklog summarises the queue.
	DetailBacklog(ctx context.Context) (Backlog, error)
}

// ClaimParams asks for jobs.
type ClaimParams struct {
	Limit int
	Lease time.Duration
}

// Job is one task whose detail is to be read.
type Job struct {
	TaskID   string
	Deadline time.Time // create time + details.retention
	GiveUpAt time.Time // create time + Window
	Attempts int       // including this one
	// LastError is the error of the job's last failed attempt ("": none).
	LastError string
	// Source names the list the task came from (tasks.source): its detail
	// is read by that source's detail action.
	Source string
}

// Record is a captured (or lost) detail.
type Record struct {
	TaskID  string
	Outcome mps.Outcome
	// Expired: the API no longer has the detail; Outcome is ignored.
	Expired bool
	// GaveUpAfter is, for an expired detail that failed to be read while
	// it existed, the last error (recorded with it).
	GaveUpAfter string
	// Raw is the redacted detail (nil when expired).
	Raw       []byte
	Truncated bool
	RawBytes  int
	// Redacted counts the secret-like fields replaced (not stored).
	Redacted int
}

// ReleaseParams gives a job back.
type ReleaseParams struct {
	TaskID string
	// Retry: the attempt failed with Error; try again after NotBefore.
	Retry     bool
	Error     string
	NotBefore time.Time
}

// Backlog summarises the queue.
type Backlog struct {
	Pending        int64     // jobs still to be read
	Failing        int64     // of those, jobs whose last attempt failed
	GaveUp         int64     // details that failed until MPS forgot them, in the last 7 days
	OldestDeadline time.Time // of the pending jobs (zero: none)
}
