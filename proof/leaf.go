// Package proof is the archive's proof log seen from outside the
// database: leaves and their RFC 6962 hashes, the Merkle tree and its
// proofs (transparency-dev/merkle), checkpoints as signed notes
// (golang.org/x/mod/sumdb/note, C2SP tlog-checkpoint), and the checks
// `mps-archiver verify` runs: the tree against every checkpoint, and the
// archive's tables against the log. It knows nothing of pgx: the
// database is behind the small Store interface.
package proof

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
)

// Kind is which sort of fact a leaf records; each is a table of the
// archive (migration 19 builds its leaves).
type Kind string

// The kinds of fact, with the table each is checked against.
const (
	KindTask         Kind = "task"          // tasks: a task as written (first seen, moved, gone)
	KindStatusChange Kind = "status_change" // task_status_changes
	KindOutcome      Kind = "outcome"       // task_details with its task_subtask_results
	KindRun          Kind = "run"           // sync_runs, once finished
	KindGap          Kind = "gap"           // coverage_gaps
	KindUsage        Kind = "usage"         // usage_daily: a billed figure as written
	KindUsageRun     Kind = "usage_run"     // usage_runs, once finished
	KindExport       Kind = "export"        // archive_exports: a month exported, its manifest's SHA-256
)

// Kinds lists every kind, in the order verify checks them.
var Kinds = []Kind{KindTask, KindStatusChange, KindOutcome, KindRun, KindGap, KindUsage, KindUsageRun, KindExport}

// LeafHash is the RFC 6962 hash of a leaf: SHA-256(0x00 || data).
func LeafHash(data []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(data) }

// Fields is a leaf's or a row's JSON object, numbers kept as written.
type Fields map[string]any

// ParseFields reads a JSON object.
func ParseFields(data []byte) (Fields, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var f Fields
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if f == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return f, nil
}

// Leaf is one entry of the log as the database holds it: kind, key and
// hash are columns beside the data, and are checked against it (a
// task's data names its row by hash: row_sha256).
type Leaf struct {
	Index uint64
	Kind  Kind
	Key   string
	Hash  []byte
	Data  []byte
}

// Describe reads what a leaf's data says it is: its kind and its key,
// derived as the writers derive them (migration 19), and its fields.
func Describe(data []byte) (Kind, string, Fields, error) {
	kind, key, err := describeFast(data)
	if err != nil {
		return kind, key, nil, err
	}
	f, err := ParseFields(data)
	if err != nil {
		return kind, key, nil, fmt.Errorf("data is not a JSON object: %w", err)
	}
	return kind, key, f, nil
}

// leafHead is what a leaf's key is made of.
type leafHead struct {
	Fact          string          `json:"fact"`
	TaskID        *string         `json:"task_id"`
	CreateTime    *string         `json:"create_time"`
	ID            json.RawMessage `json:"id"`
	Day           *string         `json:"day"`
	Region        *string         `json:"region"`
	Type          *string         `json:"type"`
	Specification *string         `json:"specification"`
}

// describeFast is Describe without the fields: what the tree's pass
// checks of every leaf.
func describeFast(data []byte) (Kind, string, error) {
	var h leafHead
	if err := json.Unmarshal(data, &h); err != nil {
		return "", "", fmt.Errorf("data is not a JSON object: %w", err)
	}
	kind := Kind(h.Fact)
	need := func(name string, v *string) (string, error) {
		if v == nil {
			return "", fmt.Errorf("a %s leaf without %s", kind, name)
		}
		return *v, nil
	}
	switch kind {
	case KindTask, KindOutcome:
		id, err := need("task_id", h.TaskID)
		if err != nil {
			return kind, "", err
		}
		created := ""
		if h.CreateTime != nil {
			t, err := parseTime(*h.CreateTime)
			if err != nil {
				return kind, "", fmt.Errorf("create_time %q is not a timestamp", *h.CreateTime)
			}
			created = strconv.FormatInt(t.UnixMicro(), 10)
		}
		return kind, id + "@" + created, nil
	case KindStatusChange, KindRun, KindGap, KindUsageRun, KindExport:
		n := strings.Trim(string(h.ID), `"`)
		if _, err := strconv.ParseInt(n, 10, 64); err != nil {
			return kind, "", fmt.Errorf("a %s leaf without a numeric id", kind)
		}
		if kind != KindStatusChange {
			return kind, n, nil
		}
		id, err := need("task_id", h.TaskID)
		return kind, id + "#" + n, err
	case KindUsage:
		names := []string{"day", "region", "type", "specification"}
		parts := make([]string, 4)
		for i, v := range []*string{h.Day, h.Region, h.Type, h.Specification} {
			p, err := need(names[i], v)
			if err != nil {
				return kind, "", err
			}
			parts[i] = p
		}
		return kind, strings.Join(parts, "|"), nil
	}
	return kind, "", fmt.Errorf("unknown fact %q", kind)
}

// TaskOf is the TaskId a task's, outcome's or status change's key names.
func TaskOf(kind Kind, key string) string {
	sep := "@"
	if kind == KindStatusChange {
		sep = "#"
	}
	if i := strings.LastIndex(key, sep); i >= 0 {
		return key[:i]
	}
	return key
}

// Diff lists the fields a row does not have as its leaf says, sorted:
// every field of the leaf (but "fact") must be in the row with an equal
// value. A column a later migration added is not in older leaves, and is
// not checked; one a tamperer removed or changed is.
func Diff(leaf, row Fields) []string {
	var out []string
	for name, want := range leaf {
		if name == "fact" {
			continue
		}
		got, ok := row[name]
		if !ok {
			out = append(out, fmt.Sprintf("%s missing (the log has %s)", name, show(want)))
			continue
		}
		if !equal(want, got) {
			out = append(out, fmt.Sprintf("%s is %s, the log has %s", name, show(got), show(want)))
		}
	}
	sort.Strings(out)
	return out
}

// equal compares two JSON values; timestamps written in different time
// zones (a session's TimeZone) are the same instant, and numbers equal in
// value are equal however written.
func equal(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		tx, ex := parseTime(x)
		ty, ey := parseTime(y)
		return ex == nil && ey == nil && tx.Equal(ty)
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		rx, okx := new(big.Rat).SetString(string(x))
		ry, oky := new(big.Rat).SetString(string(y))
		return okx && oky && rx.Cmp(ry) == 0
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !equal(v, w) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// parseTime reads PostgreSQL's JSON timestamps (ISO 8601 with an offset,
// which may be of hours only).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z07"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp")
}

func show(v any) string {
	if v == nil {
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}
