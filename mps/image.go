package mps

// What is particular to image tasks (DescribeImageTasks and
// DescribeImageTaskDetail, since 2026-07): their records carry the user's
// Input, and their detail holds its results in ImageProcessTaskResultSet,
// beside the processing configuration (ImageTask), rather than in a
// container of its type.

import (
	"bytes"
	"fmt"
)

// ImageSubTaskKind is the kind of an image task's results, as
// task_subtask_results and sub_task_types name it.
const ImageSubTaskKind = "ImageProcess"

// imageResultSet is the image detail's member holding one result per output.
const imageResultSet = "ImageProcessTaskResultSet"

// AdoptPage makes a page of src's list archivable as the media list's are:
// a record without a TaskType is typed as the source's, and where the list
// carries user input (the image list's Input, which can be a signed URL or
// JSON with storage keys) each record is redacted as a detail is.
func AdoptPage(src Source, p *Page) {
	src = src.Of()
	for i := range p.Tasks {
		t := &p.Tasks[i]
		if t.TaskType == "" && src.TaskType != "" {
			t.TaskType = src.TaskType
		}
		// Media records carry no input, unless DescribeTasks lists image
		// tasks with theirs: checked by a scan, not a decode, per record.
		if src.TaskType == "" && !bytes.Contains(t.Raw, []byte(`"Input`)) {
			continue
		}
		if raw, n := Redact(t.Raw); n > 0 {
			t.Raw = raw
		}
	}
}

// decideImageOutcome applies the failure rule to an image detail: a task
// failed if any of its results failed (by the sub-task rule); it is
// undecided while it or a result is unsettled, or when a finished task
// shows no results at all.
func decideImageOutcome(r map[string]any) Outcome {
	var o Outcome
	if st := str(r["Status"]); st == string(StatusWaiting) || st == string(StatusProcessing) {
		o.Unsettled = true
		o.Ambiguities = append(o.Ambiguities, fmt.Sprintf("the task is still %s", st))
	}
	switch v := r[imageResultSet].(type) {
	case []any:
		for _, it := range v {
			im, _ := it.(map[string]any)
			o.subtask(ImageSubTaskKind, resultIn(im))
		}
	case map[string]any:
		o.subtask(ImageSubTaskKind, v)
	}
	if len(o.Subtasks) == 0 && !o.Unsettled {
		o.UnknownShape = true
		o.Ambiguities = append(o.Ambiguities, "no "+imageResultSet+" in the detail")
	}
	o.settle()
	return o
}
