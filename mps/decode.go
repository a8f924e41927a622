package mps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Task is one record of a page after lenient decoding: what could be read is
// typed, and the record's own JSON is kept verbatim (after the minimum
// cleaning PostgreSQL's jsonb needs) so that nothing the API said is lost.
type Task struct {
	TaskID           string
	TaskType         string
	SubTaskTypes     []string
	CreateTime       time.Time // zero: not set (or not readable)
	BeginProcessTime time.Time
	FinishTime       time.Time
	Raw              []byte
	// Warnings names each field that was present but unreadable.
	Warnings []string
}

// Page is one decoded DescribeTasks answer.
type Page struct {
	Tasks       []Task
	ScrollToken string
	TotalCount  *int64
	RequestID   string
	// Skipped counts records that could not be archived at all (no TaskId,
	// not an object).
	Skipped int
	// ServerTime is the API's clock when it answered (its Date header), or
	// zero when unknown. The 7-day window is measured on that clock.
	ServerTime time.Time
}

// Warnings counts the field-level problems over the page's tasks.
func (p *Page) Warnings() int {
	n := 0
	for i := range p.Tasks {
		n += len(p.Tasks[i].Warnings)
	}
	return n
}

// ErrMalformed is wrapped by every error DecodePage returns for a body that is
// not a DescribeTasks answer.
var ErrMalformed = errors.New("malformed DescribeTasks response")

type pageEnvelope struct {
	Response *struct {
		TotalCount  json.RawMessage   `json:"TotalCount"`
		TaskSet     []json.RawMessage `json:"TaskSet"`
		ScrollToken json.RawMessage   `json:"ScrollToken"`
		RequestId   json.RawMessage   `json:"RequestId"`
	} `json:"Response"`
}

// DecodePage reads a successful DescribeTasks body. A body that is not JSON
// or not of the page's shape is an error wrapping ErrMalformed; a record that
// is odd on its own never fails the page: it is skipped (no TaskId) or kept
// with warnings (unreadable fields).
func DecodePage(body []byte) (*Page, error) {
	var env pageEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, shortJSONError(err))
	}
	if env.Response == nil {
		return nil, fmt.Errorf("%w: no Response object", ErrMalformed)
	}
	r := env.Response
	p := &Page{Tasks: make([]Task, 0, len(r.TaskSet))}
	var ok bool
	if p.ScrollToken, ok = jsonString(r.ScrollToken); !ok && !isNull(r.ScrollToken) {
		return nil, fmt.Errorf("%w: ScrollToken is not a string", ErrMalformed)
	}
	p.RequestID, _ = jsonString(r.RequestId)
	if len(r.TotalCount) > 0 && !isNull(r.TotalCount) {
		var n int64
		if json.Unmarshal(r.TotalCount, &n) == nil {
			p.TotalCount = &n
		}
	}
	for _, rec := range r.TaskSet {
		t, ok := DecodeTask(rec)
		if !ok {
			p.Skipped++
			continue
		}
		p.Tasks = append(p.Tasks, t)
	}
	return p, nil
}

type rawTask struct {
	TaskId           json.RawMessage
	TaskType         json.RawMessage
	SubTaskTypes     json.RawMessage
	CreateTime       json.RawMessage
	BeginProcessTime json.RawMessage
	FinishTime       json.RawMessage
}

// DecodeTask reads one TaskSimpleInfo leniently. ok is false when the record
// has no usable TaskId (or is not an object) and cannot be archived.
func DecodeTask(rec json.RawMessage) (t Task, ok bool) {
	var r rawTask
	if err := json.Unmarshal(rec, &r); err != nil {
		return Task{}, false
	}
	id, isStr := jsonString(r.TaskId)
	id = strings.TrimSpace(cleanText(id))
	if !isStr || id == "" {
		return Task{}, false
	}
	t.TaskID = id
	t.Raw = cleanRawJSON(rec)
	if typ, isStr := jsonString(r.TaskType); isStr {
		t.TaskType = cleanText(typ)
	} else if !isNull(r.TaskType) {
		t.Warnings = append(t.Warnings, "TaskType is not a string")
	}
	t.SubTaskTypes, ok = decodeStrings(r.SubTaskTypes)
	if !ok {
		t.Warnings = append(t.Warnings, "SubTaskTypes is not an array of strings")
	}
	t.CreateTime = decodeTime(r.CreateTime, "CreateTime", &t.Warnings)
	t.BeginProcessTime = decodeTime(r.BeginProcessTime, "BeginProcessTime", &t.Warnings)
	t.FinishTime = decodeTime(r.FinishTime, "FinishTime", &t.Warnings)
	return t, true
}

func decodeStrings(raw json.RawMessage) ([]string, bool) {
	if isNull(raw) {
		return []string{}, true
	}
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		return []string{}, false
	}
	out := make([]string, 0, len(elems))
	ok := true
	for _, e := range elems {
		s, isStr := jsonString(e)
		if !isStr {
			ok = false
			continue
		}
		out = append(out, cleanText(s))
	}
	return out, ok
}

func decodeTime(raw json.RawMessage, field string, warnings *[]string) time.Time {
	if isNull(raw) {
		return time.Time{}
	}
	s, isStr := jsonString(raw)
	if !isStr {
		*warnings = append(*warnings, field+" is not a string")
		return time.Time{}
	}
	t, err := ParseTime(s)
	if err != nil {
		*warnings = append(*warnings, err.Error())
	}
	return t
}

// ParseTime reads an API time. The API's "not yet" value and the empty string
// give the zero time and no error; any RFC 3339 time, with Z or an offset, is
// returned in UTC. Anything else gives the zero time and an error naming the
// value.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == ZeroTime || strings.HasPrefix(s, "0000-00-00") {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// "2006-01-02 15:04:05" appears in other MPS APIs; the page says UTC.
		if t2, err2 := time.Parse(time.DateTime, s); err2 == nil {
			return t2.UTC(), nil
		}
		return time.Time{}, fmt.Errorf("unparseable time %q", truncate(s, 40))
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("time out of range %q", truncate(s, 40))
	}
	return t.UTC(), nil
}

// FormatTime writes t as the API does; the zero time is ZeroTime.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ZeroTime
	}
	return t.UTC().Format(time.RFC3339)
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

func jsonString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// cleanText makes s storable as PostgreSQL text, which rejects NUL.
func cleanText(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

// cleanRawJSON makes a record storable as jsonb, which rejects the \u0000
// escape and invalid UTF-8. Clean input, the normal case, is returned as is.
func cleanRawJSON(rec []byte) []byte {
	rec = bytes.TrimSpace(rec)
	if utf8.Valid(rec) && !bytes.Contains(rec, []byte(`\u0000`)) {
		return rec
	}
	var v any
	if err := json.Unmarshal(rec, &v); err != nil {
		return rec // unreachable: rec was decoded once already
	}
	out, _ := json.Marshal(v) // coerces invalid UTF-8 to U+FFFD
	return bytes.ReplaceAll(out, []byte(`\u0000`), []byte(`\ufffd`))
}

func shortJSONError(err error) string {
	return truncate(err.Error(), 120)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
