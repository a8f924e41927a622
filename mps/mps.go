// Package mps holds the wire types of the MPS DescribeTasks action (API
// 2019-06-12) and the lenient decoding the archiver applies to what the API
// returns. Both the API client and the simulator build on these types, so that
// the two can never disagree about the shape of a request or a page.
package mps

import (
	"fmt"
	"strings"
	"time"
)

// Wire constants of the action, as the API page gives them.
const (
	Service             = "mps"
	Version             = "2019-06-12"
	ActionDescribeTasks = "DescribeTasks"
	// ActionDescribeTaskDetail returns how one task ended; it keeps a task
	// for 7 days at best (3 on the international site).
	ActionDescribeTaskDetail = "DescribeTaskDetail"

	// DefaultEndpoint is the public API endpoint; mps.intl.tencentcloudapi.com
	// serves the international site.
	DefaultEndpoint = "https://mps.tencentcloudapi.com"

	// MaxLimit is the largest page size the API accepts; DefaultLimit is what
	// it uses when Limit is absent.
	MaxLimit     = 100
	DefaultLimit = 10

	// ZeroTime is how the API writes a time that has not happened yet.
	ZeroTime = "0000-00-00T00:00:00Z"

	// Window is how far back DescribeTasks lists tasks (168 hours since
	// 2022-09), and the longest DescribeTaskDetail keeps a task's detail.
	Window = 168 * time.Hour
)

// Status is the filter a task is listed under. The API has no status field on
// a task: a task's status is the list it came from.
type Status string

// The three statuses, in the only order a task moves through them.
const (
	StatusWaiting    Status = "WAITING"
	StatusProcessing Status = "PROCESSING"
	StatusFinish     Status = "FINISH"
)

// Statuses lists every status in lifecycle order. A drain that follows this
// order sees a task that moves forward during the run again in the list it
// moved to, because that list is drained later.
var Statuses = []Status{StatusWaiting, StatusProcessing, StatusFinish}

// Rank orders statuses along the lifecycle; 0 means unknown.
func (s Status) Rank() int {
	switch s {
	case StatusWaiting:
		return 1
	case StatusProcessing:
		return 2
	case StatusFinish:
		return 3
	}
	return 0
}

// ParseStatus accepts a status name in any case.
func ParseStatus(s string) (Status, error) {
	st := Status(strings.ToUpper(strings.TrimSpace(s)))
	if st.Rank() == 0 {
		return "", fmt.Errorf("unknown task status %q (want WAITING, PROCESSING or FINISH)", s)
	}
	return st, nil
}

// Query is one page request: a status list, the ScrollToken to start at
// ("" for the first page) and an optional time range. A range is sent with
// both bounds or not at all: a server fills a missing bound with a default
// of its own (another MPS-family API documents "the last 3 days").
type Query struct {
	// Source is the list asked (zero: SourceMedia, DescribeTasks).
	Source      Source
	Status      Status
	ScrollToken string
	Start, End  time.Time
	// SubTaskHasFailed, when set, lists only tasks with (true) or without
	// (false) a failed sub-task.
	SubTaskHasFailed *bool
}

// Ranged reports whether q carries a time range.
func (q Query) Ranged() bool { return !q.Start.IsZero() || !q.End.IsZero() }

// DescribeTasksRequestParams is the JSON body of a DescribeTasks call.
// Optional fields are pointers so that an unset field is left out of the
// signed body, as the official SDK does.
type DescribeTasksRequestParams struct {
	Status           *string `json:"Status,omitempty"`
	Limit            *uint64 `json:"Limit,omitempty"`
	ScrollToken      *string `json:"ScrollToken,omitempty"`
	StartTime        *string `json:"StartTime,omitempty"`
	EndTime          *string `json:"EndTime,omitempty"`
	SubTaskHasFailed *bool   `json:"SubTaskHasFailed,omitempty"`
}

// TaskSimpleInfo is one task as the API lists it. Field order follows the
// API page's examples.
type TaskSimpleInfo struct {
	TaskId           string   `json:"TaskId"`
	TaskType         string   `json:"TaskType"`
	SubTaskTypes     []string `json:"SubTaskTypes"`
	CreateTime       string   `json:"CreateTime"`
	BeginProcessTime string   `json:"BeginProcessTime"`
	FinishTime       string   `json:"FinishTime"`
}

// ImageTaskInfo is one task as DescribeImageTasks lists it: unlike
// TaskSimpleInfo it has no TaskType and carries its Status, its Input (a
// string) and whether a sub-task failed.
type ImageTaskInfo struct {
	TaskId           string `json:"TaskId"`
	Status           string `json:"Status"`
	Input            string `json:"Input"`
	CreateTime       string `json:"CreateTime"`
	BeginProcessTime string `json:"BeginProcessTime"`
	FinishTime       string `json:"FinishTime"`
	SubTaskHasFailed bool   `json:"SubTaskHasFailed"`
}

// DescribeTasksResponseParams is the body inside "Response" of a successful
// call, in the field order of the API page's examples.
type DescribeTasksResponseParams struct {
	TotalCount  *int64           `json:"TotalCount,omitempty"`
	TaskSet     []TaskSimpleInfo `json:"TaskSet"`
	ScrollToken *string          `json:"ScrollToken,omitempty"`
	RequestId   *string          `json:"RequestId,omitempty"`
}

// ErrorBody is the "Response" of a failed call.
type ErrorBody struct {
	Error struct {
		Code    string `json:"Code"`
		Message string `json:"Message"`
	} `json:"Error"`
	RequestId string `json:"RequestId"`
}
