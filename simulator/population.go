package simulator

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Task is one simulated task. Its status is not stored: it follows from the
// clock, so a population whose begin and finish times lie ahead of the clock
// moves WAITING → PROCESSING → FINISH by itself as the clock runs.
type Task struct {
	ID           string
	Type         string
	SubTaskTypes []string
	// Image marks an image-processing task: DescribeImageTasks lists it and
	// DescribeImageTaskDetail describes it; DescribeTasks does not, unless
	// the Variant says so (ImageTasksInTaskList).
	Image bool
	// Unix nanoseconds; 0 means never (a task that never begins stays WAITING).
	Create, Begin, Finish int64
	Failed                bool
	// Raw, when set, is served verbatim instead of the typed fields, under
	// Fixed status; it is how scenarios inject hostile records.
	Raw   json.RawMessage
	Fixed mps.Status
	// DetailRaw, when set, is served verbatim as the task's
	// DescribeTaskDetail Response: how scenarios inject hostile details.
	DetailRaw json.RawMessage

	final      atomic.Pointer[[]byte]       // rendering once nothing can change
	finalImage atomic.Pointer[[]byte]       // the same, as DescribeImageTasks lists it
	billed     atomic.Pointer[[]usageEntry] // usage once finished
}

// render is the task's JSON record at now, as DescribeTasks lists it (or,
// with image, as DescribeImageTasks does). A finished task's record never
// changes again and is rendered once.
func (t *Task) render(now int64, image bool) []byte {
	if t.Raw != nil {
		return t.Raw
	}
	cache := &t.final
	if image {
		cache = &t.finalImage
	}
	if b := cache.Load(); b != nil {
		return *b
	}
	var b []byte
	if image {
		b, _ = json.Marshal(t.ImageInfo(now))
	} else {
		b, _ = json.Marshal(t.Info(now))
	}
	if t.Finish != 0 && t.Finish <= now && t.Begin <= now {
		cache.Store(&b)
	}
	return b
}

// StatusAt is the task's status at the instant now (Unix ns).
func (t *Task) StatusAt(now int64) mps.Status {
	switch {
	case t.Fixed != "":
		return t.Fixed
	case t.Begin == 0 || now < t.Begin:
		return mps.StatusWaiting
	case t.Finish == 0 || now < t.Finish:
		return mps.StatusProcessing
	}
	return mps.StatusFinish
}

// Info renders the task as DescribeTasks would list it at now: times that
// lie in the future are ZeroTime. An image task has no SubTaskTypes: [].
func (t *Task) Info(now int64) mps.TaskSimpleInfo {
	subs := t.SubTaskTypes
	if t.Image && subs == nil {
		subs = []string{}
	}
	return mps.TaskSimpleInfo{
		TaskId:           t.ID,
		TaskType:         t.Type,
		SubTaskTypes:     subs,
		CreateTime:       listTime(t.Create, now),
		BeginProcessTime: listTime(t.Begin, now),
		FinishTime:       listTime(t.Finish, now),
	}
}

// ImageInfo renders the task as DescribeImageTasks would list it at now:
// its status, its input as a string, and whether it failed once FINISH.
func (t *Task) ImageInfo(now int64) mps.ImageTaskInfo {
	status := t.StatusAt(now)
	return mps.ImageTaskInfo{
		TaskId:           t.ID,
		Status:           string(status),
		Input:            t.imageInput(),
		CreateTime:       listTime(t.Create, now),
		BeginProcessTime: listTime(t.Begin, now),
		FinishTime:       listTime(t.Finish, now),
		SubTaskHasFailed: t.Failed && status == mps.StatusFinish,
	}
}

// listTime renders the instant ns as a list does at now: ZeroTime for
// never or the future.
func listTime(ns, now int64) string {
	if ns == 0 || ns > now {
		return mps.ZeroTime
	}
	return mps.FormatTime(time.Unix(0, ns))
}

// GenConfig drives the deterministic generator.
type GenConfig struct {
	Seed int64
	// Tasks created uniformly over [now-Window, now).
	Tasks  int
	Window time.Duration
	// ArrivalsPerHour (simulated hours) keep arriving after now, up to
	// Horizon: the live mode.
	ArrivalsPerHour float64
	Horizon         time.Duration
	// Mean queue (create → begin) and processing (begin → finish) durations,
	// exponentially distributed.
	QueueMean   time.Duration
	ProcessMean time.Duration
	// FailureShare of tasks have a failed subtask.
	FailureShare float64
	// AppID prefixes generated TaskIds as MPS does.
	AppID int64
	// Vocabulary of SubTaskTypes: VocabularyAction ("action-trans", the seed
	// page's; default), VocabularyKinds ("Transcode", the current CLI
	// example's) or VocabularyMixed (each task draws one).
	Vocabulary string
	// ImageShare of tasks are image-processing tasks (0: none, and the
	// random stream of a seed is the one it has always been).
	ImageShare float64
}

// The SubTaskTypes vocabularies.
const (
	VocabularyAction = "action"
	VocabularyKinds  = "kinds"
	VocabularyMixed  = "mixed"
)

// subTaskTypes renders subs in the vocabulary voc.
func subTaskTypes(subs []string, voc string, r *rand.Rand) []string {
	if voc == VocabularyMixed {
		voc = VocabularyAction
		if r.IntN(2) == 1 {
			voc = VocabularyKinds
		}
	}
	if voc != VocabularyKinds {
		return subs
	}
	out := make([]string, len(subs))
	for i, s := range subs {
		out[i] = mps.SubTaskKind(s)
	}
	return out
}

// DefaultGenConfig is a week of a small account.
func DefaultGenConfig() GenConfig {
	return GenConfig{
		Seed:         1,
		Tasks:        1000,
		Window:       7 * 24 * time.Hour,
		QueueMean:    2 * time.Minute,
		ProcessMean:  8 * time.Minute,
		FailureShare: 0.05,
		AppID:        1250000000,
	}
}

var taskTypes = []struct {
	name   string
	weight float64
	subs   [][]string
}{
	{"WorkflowTask", 0.70, [][]string{{"action-trans"}, {"action-trans", "action-snapshotByTimeOffset"}, {"action-trans", "action-adaptive-substream"}, {"action-AIRecognition"}}},
	{"EditMediaTask", 0.15, [][]string{{"action-editmedia"}}},
	{"LiveProcessTask", 0.10, [][]string{{"action-AIRecognition"}, {"action-AIAnalysis"}}},
	{"ScheduleTask", 0.05, [][]string{{"action-trans", "action-AIAnalysis"}, {"action-image-sprite"}}},
}

// Generate makes a population for cfg around the instant now.
func Generate(cfg GenConfig, now time.Time) []*Task {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6d7073))
	mk := taskMaker(cfg, r)
	out := make([]*Task, 0, cfg.Tasks)
	for range cfg.Tasks {
		out = append(out, mk(now.Add(-time.Duration(r.Int64N(int64(max(cfg.Window, time.Second)))))))
	}
	if cfg.ArrivalsPerHour > 0 && cfg.Horizon > 0 {
		gap := time.Duration(float64(time.Hour) / cfg.ArrivalsPerHour)
		for at := now.Add(expDuration(r, gap)); at.Before(now.Add(cfg.Horizon)); at = at.Add(expDuration(r, gap)) {
			out = append(out, mk(at))
		}
	}
	return out
}

// taskMaker returns the generator of one task created at a given time,
// drawing from r.
func taskMaker(cfg GenConfig, r *rand.Rand) func(time.Time) *Task {
	if cfg.AppID == 0 {
		cfg.AppID = 1250000000
	}
	return func(create time.Time) *Task {
		w := r.Float64()
		tt := taskTypes[len(taskTypes)-1]
		for _, c := range taskTypes {
			if w < c.weight {
				tt = c
				break
			}
			w -= c.weight
		}
		begin := create.Add(expDuration(r, cfg.QueueMean))
		finish := begin.Add(expDuration(r, cfg.ProcessMean))
		subs := tt.subs[r.IntN(len(tt.subs))]
		if cfg.Vocabulary != "" && cfg.Vocabulary != VocabularyAction {
			subs = subTaskTypes(subs, cfg.Vocabulary, r)
		}
		// The draws in the order they have always been made: a seed's
		// media tasks do not change.
		hi, lo := r.Uint64(), r.Uint64()
		failed := r.Float64() < cfg.FailureShare
		t := &Task{
			ID:           fmt.Sprintf("%d-%s-%016x%016x", cfg.AppID, tt.name, hi, lo),
			Type:         tt.name,
			SubTaskTypes: subs,
			Create:       create.UnixNano(),
			Begin:        begin.UnixNano(),
			Finish:       finish.UnixNano(),
			Failed:       failed,
		}
		if cfg.ImageShare > 0 && r.Float64() < cfg.ImageShare {
			t.ID = fmt.Sprintf("%d-%s-%016x%016x", cfg.AppID, mps.TaskTypeImage, hi, lo)
			t.Type, t.SubTaskTypes, t.Image = mps.TaskTypeImage, nil, true
		}
		return t
	}
}

// Arrivals is the live mode without an end: tasks arriving after a start
// at cfg.ArrivalsPerHour, generated as the clock reaches them, for as long
// as the simulator runs. Deterministic for a seed.
type Arrivals struct {
	mk   func(time.Time) *Task
	r    *rand.Rand
	gap  time.Duration
	next time.Time
}

// NewArrivals starts arrivals after from.
func NewArrivals(cfg GenConfig, from time.Time) *Arrivals {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0xa441))
	a := &Arrivals{mk: taskMaker(cfg, r), r: r, gap: time.Duration(float64(time.Hour) / max(cfg.ArrivalsPerHour, 1e-9))}
	a.next = from.Add(expDuration(r, a.gap))
	return a
}

// Until returns the tasks created from where the last call ended up to t.
func (a *Arrivals) Until(t time.Time) []*Task {
	var out []*Task
	for ; a.next.Before(t); a.next = a.next.Add(expDuration(a.r, a.gap)) {
		out = append(out, a.mk(a.next))
	}
	return out
}

func expDuration(r *rand.Rand, mean time.Duration) time.Duration {
	if mean <= 0 {
		return 0
	}
	return time.Duration(math.Min(r.ExpFloat64(), 20) * float64(mean))
}

// Scenario pins exact tasks for tests. Times are RFC 3339 or a Go duration
// relative to the simulator's start instant ("-2h", "+90s"); a missing Begin
// or Finish means never.
type Scenario struct {
	// Now sets the simulator clock's start instant (RFC 3339).
	Now string `json:"Now,omitempty"`
	// Variant picks the API's reading of the open behaviours.
	Variant *Variant       `json:"Variant,omitempty"`
	Tasks   []ScenarioTask `json:"Tasks"`
}

// ScenarioTask is one pinned task, or with Raw a record served verbatim.
type ScenarioTask struct {
	TaskId       string          `json:"TaskId"`
	TaskType     string          `json:"TaskType"`
	SubTaskTypes []string        `json:"SubTaskTypes"`
	Create       string          `json:"Create"`
	Begin        string          `json:"Begin,omitempty"`
	Finish       string          `json:"Finish,omitempty"`
	Failed       bool            `json:"Failed,omitempty"`
	Raw          json.RawMessage `json:"Raw,omitempty"`
	Status       string          `json:"Status,omitempty"`
	// Detail is served verbatim as the task's DescribeTaskDetail Response
	// (DescribeImageTaskDetail's for an image task).
	Detail json.RawMessage `json:"Detail,omitempty"`
	// Image pins an image-processing task (TaskType defaults to
	// ImageTask): DescribeImageTasks lists it, Raw or not.
	Image bool `json:"Image,omitempty"`
}

// LoadScenario reads a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	var sc Scenario
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("scenario %s: %v", path, err)
	}
	return &sc, nil
}

// Start returns the clock instant the scenario asks for, or fallback.
func (sc *Scenario) Start(fallback time.Time) (time.Time, error) {
	if sc.Now == "" {
		return fallback, nil
	}
	t, err := time.Parse(time.RFC3339, sc.Now)
	if err != nil {
		return time.Time{}, fmt.Errorf("scenario Now %q: %v", sc.Now, err)
	}
	return t, nil
}

// Build turns the scenario into tasks around the instant start.
func (sc *Scenario) Build(start time.Time) ([]*Task, error) {
	out := make([]*Task, 0, len(sc.Tasks))
	for i, st := range sc.Tasks {
		t := &Task{ID: st.TaskId, Type: st.TaskType, SubTaskTypes: st.SubTaskTypes, Failed: st.Failed, Raw: st.Raw, DetailRaw: st.Detail, Image: st.Image}
		if t.Image && t.Type == "" {
			t.Type = mps.TaskTypeImage
		}
		var err error
		if t.Create, err = scenarioTime(st.Create, start); err != nil {
			return nil, fmt.Errorf("scenario task %d Create: %w", i, err)
		}
		if t.Create == 0 {
			t.Create = start.UnixNano()
		}
		if t.Begin, err = scenarioTime(st.Begin, start); err != nil {
			return nil, fmt.Errorf("scenario task %d Begin: %w", i, err)
		}
		if t.Finish, err = scenarioTime(st.Finish, start); err != nil {
			return nil, fmt.Errorf("scenario task %d Finish: %w", i, err)
		}
		if st.Raw != nil {
			if t.Fixed, err = mps.ParseStatus(st.Status); err != nil {
				return nil, fmt.Errorf("scenario task %d: a Raw record needs a Status: %w", i, err)
			}
			if t.ID == "" {
				t.ID = fmt.Sprintf("raw-%d", i)
			}
		} else if t.ID == "" {
			return nil, fmt.Errorf("scenario task %d has no TaskId", i)
		}
		out = append(out, t)
	}
	return out, nil
}

func scenarioTime(s string, start time.Time) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return start.Add(d).UnixNano(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither RFC 3339 nor a duration", s)
	}
	return t.UnixNano(), nil
}
