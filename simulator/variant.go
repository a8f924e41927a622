package simulator

import (
	"fmt"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Variant picks, for each DescribeTasks behaviour that Tencent's own pages
// disagree about or leave open, one of the documented or plausible readings.
// The paging and filter readings hold for DescribeImageTasks as well.
// The zero Variant is the Chinese reference page's reading: inclusive tokens,
// an empty token at the end, moved tokens keep their place, and time filters
// on CreateTime with inclusive bounds; image tasks are served by their own
// actions and listed by DescribeImageTasks alone.
type Variant struct {
	// Filters says how the optional filters StartTime, EndTime and
	// SubTaskHasFailed are treated: FiltersCreateTime (default),
	// FiltersFinishTime, FiltersIgnored (accepted, no effect) or
	// FiltersUnsupported (the seed page's API: the common error
	// UnknownParameter).
	Filters string `json:"filters,omitempty"`
	// ExclusiveBounds makes both time bounds exclusive.
	ExclusiveBounds bool `json:"exclusive_bounds,omitempty"`
	// DefaultStart72h fills a missing StartTime with "72 hours ago" when the
	// request sends EndTime, as the video-moderation DescribeTasks documents
	// its own default.
	DefaultStart72h bool `json:"default_start_72h,omitempty"`
	// ExclusiveTokens starts the page after a token *after* the token's
	// record (the international site's example 2), so that record is never
	// listed.
	ExclusiveTokens bool `json:"exclusive_tokens,omitempty"`
	// EchoLastToken ends a list with a short page whose token is the
	// request's own token instead of "" (the DescribeImageTasks example).
	EchoLastToken bool `json:"echo_last_token,omitempty"`
	// RejectMovedTokens answers a token whose task has moved to another
	// status with InvalidParameterValue, one of the action's documented codes.
	RejectMovedTokens bool `json:"reject_moved_tokens,omitempty"`
	// ImageTasks says whether the endpoint has the image actions
	// DescribeImageTasks and DescribeImageTaskDetail: ImageTasksServed
	// (default) or ImageTasksUnsupported (an endpoint older than them: both
	// answer InvalidAction, as any unknown action does).
	ImageTasks string `json:"image_tasks,omitempty"`
	// ImageTasksInTaskList makes DescribeTasks list image tasks too (with
	// TaskType ImageTask and no SubTaskTypes), and DescribeTaskDetail
	// describe them (in DescribeImageTaskDetail's shape): the API reference
	// does not say whether it does.
	ImageTasksInTaskList bool `json:"image_tasks_in_task_list,omitempty"`
}

// The Filters readings.
const (
	FiltersCreateTime  = "create_time"
	FiltersFinishTime  = "finish_time"
	FiltersIgnored     = "ignored"
	FiltersUnsupported = "unsupported"
)

// The ImageTasks readings.
const (
	ImageTasksServed      = "served"
	ImageTasksUnsupported = "unsupported"
)

// DefaultStartWindow is the StartTime a DefaultStart72h server assumes.
const DefaultStartWindow = 72 * time.Hour

// Validate names a bad Filters or ImageTasks value.
func (v Variant) Validate() error {
	switch v.Filters {
	case "", FiltersCreateTime, FiltersFinishTime, FiltersIgnored, FiltersUnsupported:
	default:
		return fmt.Errorf("filters %q: want %s, %s, %s or %s", v.Filters, FiltersCreateTime, FiltersFinishTime, FiltersIgnored, FiltersUnsupported)
	}
	switch v.ImageTasks {
	case "", ImageTasksServed, ImageTasksUnsupported:
	default:
		return fmt.Errorf("image_tasks %q: want %s or %s", v.ImageTasks, ImageTasksServed, ImageTasksUnsupported)
	}
	return nil
}

// serves reports whether the endpoint has action at all: unknown actions,
// and the image actions of an endpoint older than them, are InvalidAction.
func (v Variant) serves(action string) bool {
	switch action {
	case mps.ActionDescribeTasks, mps.ActionDescribeTaskDetail, mps.ActionDescribeUsageData:
		return true
	case mps.ActionDescribeImageTasks, mps.ActionDescribeImageTaskDetail:
		return v.ImageTasks != ImageTasksUnsupported
	}
	return false
}

// String lists the readings that differ from the zero Variant.
func (v Variant) String() string {
	var parts []string
	if v.Filters != "" && v.Filters != FiltersCreateTime {
		parts = append(parts, "filters="+v.Filters)
	}
	if v.ImageTasks != "" && v.ImageTasks != ImageTasksServed {
		parts = append(parts, "image_tasks="+v.ImageTasks)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{v.ExclusiveBounds, "exclusive_bounds"}, {v.DefaultStart72h, "default_start_72h"}, {v.ExclusiveTokens, "exclusive_tokens"},
		{v.EchoLastToken, "echo_last_token"}, {v.RejectMovedTokens, "reject_moved_tokens"},
		{v.ImageTasksInTaskList, "image_tasks_in_task_list"}} {
		if f.on {
			parts = append(parts, f.name)
		}
	}
	if len(parts) == 0 {
		return "reference"
	}
	return strings.Join(parts, ",")
}

// filterField is the task time a range filters on, or "" for none.
func (v Variant) filterField() string {
	switch v.Filters {
	case "", FiltersCreateTime:
		return FiltersCreateTime
	case FiltersFinishTime:
		return FiltersFinishTime
	}
	return ""
}

// inRange reports whether ns lies in [start, end] (exclusive bounds when
// asked); a zero bound is open.
func (v Variant) inRange(ns, start, end int64) bool {
	if ns == 0 {
		return false
	}
	if v.ExclusiveBounds {
		return (start == 0 || ns > start) && (end == 0 || ns < end)
	}
	return (start == 0 || ns >= start) && (end == 0 || ns <= end)
}
