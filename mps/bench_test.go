package mps

import (
	"encoding/json"
	"fmt"
	"testing"
)

// pageBody is a 100-task page shaped like the API's.
func pageBody() []byte {
	var set []TaskSimpleInfo
	for i := 0; i < 100; i++ {
		set = append(set, TaskSimpleInfo{
			TaskId: fmt.Sprintf("1250000000-WorkflowTask-%032x", i), TaskType: "WorkflowTask",
			SubTaskTypes: []string{"action-trans", "action-snapshotByTimeOffset"},
			CreateTime:   "2026-11-27T13:57:15Z", BeginProcessTime: "2026-11-27T13:58:15Z", FinishTime: "2026-11-27T14:07:15Z",
		})
	}
	token, total, id := "next", int64(1000), "req"
	b, _ := json.Marshal(map[string]any{"Response": DescribeTasksResponseParams{TotalCount: &total, TaskSet: set, ScrollToken: &token, RequestId: &id}})
	return b
}

func BenchmarkDecodePage(b *testing.B) {
	body := pageBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := DecodePage(body)
		if err != nil || len(p.Tasks) != 100 {
			b.Fatal(err)
		}
	}
}
