package details

import (
	"encoding/json"

	"github.com/mps-archiver/mps-archiver/mps"
)

// truncatedDetail stands in for a detail above the size limit: what it was,
// how large, and the fields the outcome rests on.
func truncatedDetail(d *mps.TaskDetail, o mps.Outcome, size int) []byte {
	b, _ := json.Marshal(map[string]any{
		"ArchiverTruncated": true,
		"OriginalBytes":     size,
		"TaskType":          d.TaskType,
		"Status":            string(d.Status),
		"Outcome":           o.Result,
		"ErrCode":           o.ErrCode,
		"ErrCodeExt":        o.ErrCodeExt,
		"Message":           o.Message,
		"SubTasks":          len(o.Subtasks),
	})
	return b
}
