package mps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
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

// parsers are reused: decoding is the largest CPU cost of a sync after the
// database, and fastjson parses a page in one pass where encoding/json needs
// four (validate and decode the envelope, then each record).
var parsers fastjson.ParserPool

// DecodePage reads a DescribeTasks body. An error answer is an *APIError; a
// body that is not JSON or not of the page's shape is an error wrapping
// ErrMalformed; a record that is odd on its own never fails the page: it is
// skipped (no TaskId) or kept with warnings (unreadable fields).
func DecodePage(body []byte) (*Page, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	root, err := p.ParseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, truncate(err.Error(), 120))
	}
	r := root.Get("Response")
	if r == nil || r.Type() != fastjson.TypeObject {
		return nil, fmt.Errorf("%w: no Response object", ErrMalformed)
	}
	requestID := stringOf(r.Get("RequestId"))
	if e := r.Get("Error"); e != nil && e.Type() == fastjson.TypeObject {
		if code := stringOf(e.Get("Code")); code != "" {
			return nil, &APIError{Code: code, Message: stringOf(e.Get("Message")), RequestID: requestID}
		}
	}
	page := &Page{RequestID: requestID}
	switch tok := r.Get("ScrollToken"); {
	case tok == nil || tok.Type() == fastjson.TypeNull:
	case tok.Type() == fastjson.TypeString:
		page.ScrollToken = stringOf(tok)
	default:
		return nil, fmt.Errorf("%w: ScrollToken is not a string", ErrMalformed)
	}
	if tc := r.Get("TotalCount"); tc != nil && tc.Type() == fastjson.TypeNumber {
		if n, err := tc.Int64(); err == nil {
			page.TotalCount = &n
		}
	}
	set := r.Get("TaskSet")
	if set == nil || set.Type() == fastjson.TypeNull {
		return page, nil
	}
	records, err := set.Array()
	if err != nil {
		return nil, fmt.Errorf("%w: TaskSet is not an array", ErrMalformed)
	}
	page.Tasks = make([]Task, 0, len(records))
	for _, rec := range records {
		t, ok := decodeRecord(rec)
		if !ok {
			page.Skipped++
			continue
		}
		page.Tasks = append(page.Tasks, t)
	}
	return page, nil
}

// DecodeTask reads one TaskSimpleInfo record leniently. ok is false when the
// record has no usable TaskId (or is not an object) and cannot be archived.
func DecodeTask(rec []byte) (Task, bool) {
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(rec)
	if err != nil {
		return Task{}, false
	}
	return decodeRecord(v)
}

func decodeRecord(rec *fastjson.Value) (t Task, ok bool) {
	if rec.Type() != fastjson.TypeObject {
		return Task{}, false
	}
	idv := rec.Get("TaskId")
	if idv == nil || idv.Type() != fastjson.TypeString {
		return Task{}, false
	}
	t.TaskID = strings.TrimSpace(cleanText(stringOf(idv)))
	if t.TaskID == "" {
		return Task{}, false
	}
	t.Raw = cleanRawJSON(rec.MarshalTo(nil))
	switch v := rec.Get("TaskType"); {
	case v == nil || v.Type() == fastjson.TypeNull:
	case v.Type() == fastjson.TypeString:
		t.TaskType = cleanText(stringOf(v))
	default:
		t.Warnings = append(t.Warnings, "TaskType is not a string")
	}
	t.SubTaskTypes = []string{}
	switch v := rec.Get("SubTaskTypes"); {
	case v == nil || v.Type() == fastjson.TypeNull:
	case v.Type() == fastjson.TypeArray:
		elems, _ := v.Array()
		t.SubTaskTypes = make([]string, 0, len(elems))
		bad := false
		for _, e := range elems {
			if e.Type() != fastjson.TypeString {
				bad = true
				continue
			}
			t.SubTaskTypes = append(t.SubTaskTypes, cleanText(stringOf(e)))
		}
		if bad {
			t.Warnings = append(t.Warnings, "SubTaskTypes is not an array of strings")
		}
	default:
		t.Warnings = append(t.Warnings, "SubTaskTypes is not an array of strings")
	}
	t.CreateTime = decodeTime(rec.Get("CreateTime"), "CreateTime", &t.Warnings)
	t.BeginProcessTime = decodeTime(rec.Get("BeginProcessTime"), "BeginProcessTime", &t.Warnings)
	t.FinishTime = decodeTime(rec.Get("FinishTime"), "FinishTime", &t.Warnings)
	return t, true
}

func decodeTime(v *fastjson.Value, field string, warnings *[]string) time.Time {
	if v == nil || v.Type() == fastjson.TypeNull {
		return time.Time{}
	}
	if v.Type() != fastjson.TypeString {
		*warnings = append(*warnings, field+" is not a string")
		return time.Time{}
	}
	t, err := ParseTime(stringOf(v))
	if err != nil {
		*warnings = append(*warnings, err.Error())
	}
	return t
}

// stringOf is v's string value, or "" when v is not a string.
func stringOf(v *fastjson.Value) string {
	if v == nil {
		return ""
	}
	b, err := v.StringBytes()
	if err != nil {
		return ""
	}
	return string(b)
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

// cleanText makes s storable as PostgreSQL text, which rejects NUL.
func cleanText(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

// cleanRawJSON makes a record storable as jsonb, which rejects the \u0000
// escape, invalid UTF-8, raw control characters and bad escapes (fastjson,
// which re-serialises the record, is lenient about the last two). Clean
// input, the normal case, is returned as is after one cheap scan.
func cleanRawJSON(rec []byte) []byte {
	if utf8.Valid(rec) && !bytes.Contains(rec, []byte(`\u0000`)) && !hasControl(rec) &&
		(bytes.IndexByte(rec, '\\') < 0 || json.Valid(rec)) {
		return rec
	}
	var v any
	if err := json.Unmarshal(rec, &v); err != nil {
		// Not even encoding/json can read it: keep the text, as a string.
		out, _ := json.Marshal(map[string]string{"unparseable_record": strings.ToValidUTF8(string(rec), "\uFFFD")})
		return bytes.ReplaceAll(out, []byte(`\u0000`), []byte(`\ufffd`))
	}
	out, _ := json.Marshal(v) // coerces invalid UTF-8 to U+FFFD
	return bytes.ReplaceAll(out, []byte(`\u0000`), []byte(`\ufffd`))
}

// hasControl reports a byte below 0x20: in a record fastjson re-serialised
// (no whitespace between tokens) it can only be a raw control character
// inside a string, which JSON forbids.
func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
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
