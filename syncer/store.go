// The syncer's contract with the archive (Store) and the API (Lister),
// and the values that cross it.

package syncer

import (
	"context"
	"errors"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/mps"
)

// Lister fetches one page of one status of a source's list (q.Source), and
// one task's detail by the source's detail action: the way to read a task
// the list skipped.
type Lister interface {
	ListTasks(ctx context.Context, q mps.Query) (*mps.Page, error)
	TaskDetail(ctx context.Context, src mps.Source, taskID string) (*mps.TaskDetail, error)
}

// Store persists runs and pages. Every method that writes commits before it
// returns: a page that WritePage acknowledged survives a crash.
type Store interface {
	// Lock takes the archive-wide run lock. It returns ErrLocked when another
	// process holds it.
	Lock(ctx context.Context) (Lock, error)
	// StartRun records a new running run and marks runs left running by dead
	// processes as failed.
	StartRun(ctx context.Context, p StartRunParams) (RunStarted, error)
	// WritePage upserts one page in one statement, skipping rows whose content
	// did not change and never moving a task's status backwards. It is called
	// from several goroutines at once.
	WritePage(ctx context.Context, p WritePageParams) (PageResult, error)
	// RecordProgress stores the run's counters so far.
	RecordProgress(ctx context.Context, p Progress) error
	// FinishRun records the outcome. For a successful run it also records a
	// coverage gap when the previous successful run is further back than the
	// API's 7-day window.
	FinishRun(ctx context.Context, p FinishRunParams) (FinishResult, error)
	// Capability reads what the archive has learned about the API's support
	// of a feature (a zero Capability when nothing yet).
	Capability(ctx context.Context, name string) (Capability, error)
	// SetCapability records a finding, shared by every replica.
	SetCapability(ctx context.Context, c Capability) error
	// TaskStatus is a task's status as archived from source ("" when not
	// archived, or archived from another source's list; for media, from
	// any list).
	TaskStatus(ctx context.Context, source, taskID string) (mps.Status, error)
	// EnqueueUndetailed queues for detail capture every FINISH task inside
	// the API's window that has no detail yet.
	EnqueueUndetailed(ctx context.Context, retention time.Duration) (int64, error)
	// RunHistory is what the ledger says of earlier successful runs.
	RunHistory(ctx context.Context) (RunHistory, error)
	// SourceHistory is what the ledger says of a source's earlier drains.
	SourceHistory(ctx context.Context, source string) (SourceHistory, error)
	// InFlightTasks lists up to limit archived tasks of source last seen
	// WAITING or PROCESSING and not known gone, in TaskId order after the
	// TaskId after ("" from the start): a backlog of any size is read a
	// batch at a time.
	InFlightTasks(ctx context.Context, source, after string, limit int) ([]InFlightTask, error)
	// ProbeTask finds an archived FINISH task of source created after since
	// whose FinishTime is at least minSpan after its CreateTime: the probe
	// that tells which task time the API's time filters read.
	ProbeTask(ctx context.Context, source string, since time.Time, minSpan time.Duration) (ProbeTask, bool, error)
	// MarkGone records that unfinished tasks left the API's window.
	MarkGone(ctx context.Context, taskIDs []string) error
	// CompleteDetail stores a task's detail (see package details).
	CompleteDetail(ctx context.Context, r details.Record) (bool, error)
}

// RunHistory is the API's clock at the start of the last successful run
// and of the last successful full run (zero: none), and how long ago they
// started on the archive's own clock; and how many full runs failed since
// the last full success, and whether the newest finished run was one.
type RunHistory struct {
	LastSuccess, LastFull       time.Time
	SinceSuccess, SinceLastFull time.Duration
	FullFailures                int64
	LastRunFailedFull           bool
}

// SourceHistory is the API's clock at the start of the last run that
// drained a source successfully, and of the last that drained it in full
// (zero: none), and how long ago (on the archive's clock) the former
// started.
type SourceHistory struct {
	LastSuccess, LastFull time.Time
	SinceSuccess          time.Duration
}

// ProbeTask is an archived FINISH task with its two times.
type ProbeTask struct {
	TaskID                 string
	CreateTime, FinishTime time.Time
}

// InFlightTask is an archived task last seen unfinished.
type InFlightTask struct {
	TaskID     string
	CreateTime time.Time // zero when unknown
	Raw        []byte    // its archived record
}

// Lock is a held run lock.
type Lock interface {
	// Lost is closed if the lock's connection dies while held.
	Lost() <-chan struct{}
	// Release gives the lock back; it is safe to call more than once.
	Release(ctx context.Context)
}

// ErrLocked means another process is syncing; the run was skipped.
var ErrLocked = errors.New("another sync is running")

// StartRunParams describes a run about to start.
type StartRunParams struct {
	Trigger string // "sync", "schedule", "startup", "demo"
	Host    string
	Kind    string // KindFull or KindIncremental
	Version string // the build running it
	// LowerBound is an incremental run's FINISH lower bound (zero: full).
	LowerBound time.Time
}

// The kinds of run.
const (
	KindFull        = "full"        // every status drained in full
	KindIncremental = "incremental" // in-flight lists, FINISH since the last success, vanished tasks resolved
)

// RunStarted is what StartRun recorded.
type RunStarted struct {
	RunID     int64
	Abandoned int64 // runs of dead processes marked failed
	// PartitionsMade counts the monthly partitions made ahead as the run
	// started; PartitionsError says why making them failed (a lock not
	// granted in time): rows still land safely, in the DEFAULT partition.
	PartitionsMade  int
	PartitionsError string
	// FoldError says why folding old days' duration sketches into monthly
	// ones failed: reports by month read those days one by one meanwhile.
	FoldError string
}

// WritePageParams is one page bound for the archive.
type WritePageParams struct {
	RunID int64
	// Source names the list the page came from ("": media). A task listed
	// by more than one source is one row; the more specific source's record
	// (not media's) is the one kept.
	Source string
	Status mps.Status
	Tasks  []mps.Task
	// EnqueueDetails queues tasks for detail capture: EnqueueFinished the
	// tasks the page shows FINISH for the first time, EnqueueListed every
	// task on it without a detail; "" none.
	EnqueueDetails string
	// DetailRetention is the deadline a queued task is planned by, after
	// its creation.
	DetailRetention time.Duration
}

// The values of WritePageParams.EnqueueDetails.
const (
	EnqueueFinished = "finished"
	EnqueueListed   = "listed"
)

// Progress is a run's counters.
type Progress struct {
	RunID     int64
	Pages     int
	Seen      int64
	Inserted  int64
	Updated   int64
	Unchanged int64
	Skipped   int64
	Warnings  int64
	Events
	// ListRequests and DetailRequests count the run's API calls (each
	// call once, whatever its retries).
	ListRequests   int64
	DetailRequests int64
	// Resolved counts in-flight tasks an incremental run did not see listed
	// and read by DescribeTaskDetail; Gone, those it found had left the
	// API's window unfinished; Unresolved, those whose detail was gone
	// while the list may still hold them (a full run will).
	Resolved, Gone, Unresolved int64
	// DetailErrors counts DescribeTaskDetail reads that failed for one
	// task (an in-flight task to resolve, a skipped token to recover):
	// that task's problem, retried by the next run, never the run's.
	DetailErrors int64
}

// Events counts what a run observed of the API's paging that departs from
// the reference page's reading, and what it did about it.
type Events struct {
	// Restarts: cursors restarted from the top after the API rejected a
	// ScrollToken.
	Restarts int64
	// TokensRecovered: a page after ScrollToken T neither started with nor
	// held T, so T's task was read another way: from the archive when it is
	// FINISH there already (nothing about it can change), else by
	// DescribeTaskDetail.
	TokensRecovered int64
	// TokensLost: such a task that DescribeTaskDetail no longer knew.
	TokensLost int64
	// EchoedTokens: lists that ended with a short page repeating the
	// request's token instead of "".
	EchoedTokens int64
	// OutOfRange: records outside the time range the request asked for (the
	// API ignored the filter).
	OutOfRange int64
}

// Any reports whether anything was counted.
func (e Events) Any() bool { return e != Events{} }

// Capability is a finding about the API, learned from its answers.
type Capability struct {
	Name      string
	State     string // CapSupported, CapUnsupported or CapIgnored
	CheckedAt time.Time
	Detail    string
}

// The states of a capability, and the capabilities the syncer learns.
const (
	CapSupported   = "supported"
	CapUnsupported = "unsupported" // the API rejects the parameter (UnknownParameter)
	CapIgnored     = "ignored"     // the API accepts it and has no regard for it

	// CapTimeRange is StartTime/EndTime on DescribeTasks.
	CapTimeRange = "time_range"
	// CapFailedFilter is SubTaskHasFailed on DescribeTasks.
	CapFailedFilter = "sub_task_has_failed"
	// CapTimeField is which task time StartTime/EndTime filter on:
	// FieldCreateTime or FieldFinishTime (no row: not known yet).
	CapTimeField = "time_field"
	// CapAction is whether the API serves a source's list action at all
	// (CapSupported or CapUnsupported; the media source's is never asked).
	// Every capability of a source other than media is named
	// "<source>:<capability>", e.g. "image:time_range".
	CapAction = "action"

	FieldCreateTime = "create_time"
	FieldFinishTime = "finish_time"
)

// The detail capture modes (details.mode).
const (
	DetailsAll    = "all"    // every task that reaches FINISH
	DetailsFailed = "failed" // the tasks DescribeTasks lists with SubTaskHasFailed=true
	DetailsNone   = "none"
)

// PageResult counts what a page did to the archive.
type PageResult struct {
	Inserted  int64
	Updated   int64
	Unchanged int64
}

// FinishRunParams is a run's outcome.
type FinishRunParams struct {
	Progress
	RunID   int64
	Failed  bool
	Error   string
	Drained []mps.Status
	// APIStartedAt is the API's clock at the run's first answer.
	APIStartedAt time.Time
	// Kind is the kind the run ended as (an incremental run that found the
	// time filters gone drains in full).
	Kind string
	// FinishedAt is when the run ended (zero: when recorded).
	FinishedAt time.Time
	// ClockSkew is the API's clock (its Date) minus this machine's at the
	// run's first answer; HasClockSkew is false when no answer had a Date.
	ClockSkew    time.Duration
	HasClockSkew bool
	// MaxClockSkew is the syncer's (0: the API's clock is trusted): an
	// earlier run's API start is read no later than its local start plus
	// it, so one far-future Date cannot blind the coverage-gap check.
	MaxClockSkew time.Duration
	// Sources is how each source's drain went.
	Sources []SourceOutcome
}

// SourceOutcome is how one source's drain went in a run.
type SourceOutcome struct {
	Source string
	// Status is SourceSucceeded, SourceFailed or SourceSkipped (the API
	// does not serve the source's list).
	Status string
	// Kind is KindFull or KindIncremental.
	Kind    string
	Drained []mps.Status
	Error   string
	// The source's share of the run's counters.
	Seen, Inserted, Updated, ListRequests, DetailRequests int64
}

// The values of SourceOutcome.Status.
const (
	SourceSucceeded = "succeeded"
	SourceFailed    = "failed"
	SourceSkipped   = "skipped"
)

// FinishResult is what recording the outcome found.
type FinishResult struct {
	Gap *Gap
}

// Gap is a period whose tasks the archive may be missing: tasks created in
// (Start, End] left the API's window before any successful run listed them.
type Gap struct {
	PreviousRunID int64
	Start, End    time.Time
}

func (e *Events) add(o Events) {
	e.Restarts += o.Restarts
	e.TokensRecovered += o.TokensRecovered
	e.TokensLost += o.TokensLost
	e.EchoedTokens += o.EchoedTokens
	e.OutOfRange += o.OutOfRange
}
