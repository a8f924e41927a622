package mps

import (
	"fmt"
	"slices"
	"strings"
)

// A Source is one of MPS's task lists: the action that lists it (the
// shape of DescribeTasks: Status, Limit, ScrollToken, StartTime, EndTime,
// SubTaskHasFailed) and the action that reads how one of its tasks ended.
// The syncer drains every source the same way; the next list MPS adds is a
// Source more.
type Source struct {
	// Name is how sync.sources, tasks.source and the metrics name it.
	Name string
	// ListAction and DetailAction are the API actions.
	ListAction, DetailAction string
	// TaskType is what an archived record of this list is typed as when
	// the list gives no TaskType ("": the list always gives one).
	TaskType string
}

// The sources MPS has.
var (
	// SourceMedia is DescribeTasks: media (workflow, edit, live, schedule)
	// tasks.
	SourceMedia = Source{Name: "media", ListAction: ActionDescribeTasks, DetailAction: ActionDescribeTaskDetail}
	// SourceImage is DescribeImageTasks (since 2026-07): image-processing
	// tasks. Its records carry no TaskType: they are archived as ImageTask.
	SourceImage = Source{Name: "image", ListAction: ActionDescribeImageTasks, DetailAction: ActionDescribeImageTaskDetail, TaskType: TaskTypeImage}
)

// Sources lists every source, in the order a run drains them: the image
// list before the media list, so that a task both list (if DescribeTasks
// lists image tasks) is written once, as the image list has it, before
// the detail fetcher can read it by the media list's detail action.
var Sources = []Source{SourceImage, SourceMedia}

// The image actions, and the TaskType their tasks are archived as.
const (
	ActionDescribeImageTasks      = "DescribeImageTasks"
	ActionDescribeImageTaskDetail = "DescribeImageTaskDetail"
	TaskTypeImage                 = "ImageTask"
)

// Of is s, or SourceMedia for the zero Source (a Query that names none).
func (s Source) Of() Source {
	if s.Name == "" {
		return SourceMedia
	}
	return s
}

// ParseSources reads a list of source names (any case, comma or space
// separated, repeats ignored), in Sources order. "all" or an empty list is
// every source.
func ParseSources(list string) ([]Source, error) {
	fields := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(fields) == 0 {
		return slices.Clone(Sources), nil
	}
	want := map[string]bool{}
	for _, f := range fields {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "all" {
			return slices.Clone(Sources), nil
		}
		if _, ok := SourceNamed(f); !ok {
			return nil, fmt.Errorf("unknown task source %q (want %s, or all)", f, strings.Join(SourceNames(), ", "))
		}
		want[f] = true
	}
	var out []Source
	for _, s := range Sources {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// SourceNamed is the source called name.
func SourceNamed(name string) (Source, bool) {
	for _, s := range Sources {
		if s.Name == name {
			return s, true
		}
	}
	return Source{}, false
}

// SourceNames lists the sources' names.
func SourceNames() []string {
	out := make([]string, len(Sources))
	for i, s := range Sources {
		out[i] = s.Name
	}
	return out
}

// ActionMissing reports whether err is the API saying it does not have an
// action at all (an endpoint older than it): the common errors
// InvalidAction and UnsupportedOperation.
func ActionMissing(err error) bool {
	c := ErrorCode(err)
	return c == CodeInvalidAction || c == CodeUnsupportedOperation
}
