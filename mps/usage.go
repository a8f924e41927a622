package mps

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"time"
)

// DescribeUsageData is MPS's only usage action: what it bills, per day, task
// type and specification (docs: UsageAndMedia.md).
const ActionDescribeUsageData = "DescribeUsageData"

// Limits of DescribeUsageData.
const (
	// UsageRetentionDays is how many days back the API keeps usage
	// (today included).
	UsageRetentionDays = 365
	// UsageMaxSpanDays is the most days one query may span.
	UsageMaxSpanDays = 90
)

// UsageTypes are every value of DescribeUsageData's Types[]. The API
// answers for Transcode alone when Types is left out, so an archive names
// them all.
var UsageTypes = []string{"Transcode", "Enhance", "AIAnalysis", "AIRecognition", "AIReview", "Snapshot",
	"AnimatedGraphics", "AiQualityControl", "Evaluation", "ImageProcess", "AddBlindWatermark",
	"AddNagraWatermark", "ExtractBlindWatermark", "AIGCVideo", "AIGCImage"}

// UsageRegions are the processing regions an archive asks for by default:
// Tencent Cloud's regions and "aws". The API answers for ap-guangzhou
// alone when ProcessRegions is left out.
var UsageRegions = []string{"ap-guangzhou", "ap-shanghai", "ap-beijing", "ap-nanjing", "ap-chengdu",
	"ap-chongqing", "ap-hongkong", "ap-singapore", "ap-jakarta", "ap-mumbai", "ap-seoul", "ap-bangkok",
	"ap-tokyo", "na-siliconvalley", "na-ashburn", "sa-saopaulo", "eu-frankfurt", "aws"}

// Beijing is the zone of the API's day buckets (UTC+8, no daylight
// saving): a day's Time is its start there, e.g. 2018-12-01T00:00:00+08:00.
var Beijing = time.FixedZone("UTC+8", 8*3600)

// UsageDay is the Beijing day that t falls on, as a date at UTC midnight.
func UsageDay(t time.Time) time.Time {
	y, m, d := t.In(Beijing).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// DescribeUsageDataRequestParams is the JSON body of a DescribeUsageData
// call. StartTime and EndTime are required.
type DescribeUsageDataRequestParams struct {
	StartTime      *string  `json:"StartTime,omitempty"`
	EndTime        *string  `json:"EndTime,omitempty"`
	Types          []string `json:"Types,omitempty"`
	ProcessRegions []string `json:"ProcessRegions,omitempty"`
}

// UsageQuery asks for the Beijing days From..To (inclusive, dates at UTC
// midnight) of one region and the given types.
type UsageQuery struct {
	From, To time.Time
	Types    []string
	Region   string
}

// Params is q as the request body: StartTime the first day's start and
// EndTime the last second of the last day, both in Beijing time.
func (q UsageQuery) Params() DescribeUsageDataRequestParams {
	start := time.Date(q.From.Year(), q.From.Month(), q.From.Day(), 0, 0, 0, 0, Beijing).Format(time.RFC3339)
	end := time.Date(q.To.Year(), q.To.Month(), q.To.Day(), 23, 59, 59, 0, Beijing).Format(time.RFC3339)
	p := DescribeUsageDataRequestParams{StartTime: &start, EndTime: &end, Types: q.Types}
	if q.Region != "" {
		p.ProcessRegions = []string{q.Region}
	}
	return p
}

// UsageItem is one day's figures: Time (the day's start in Beijing time),
// the number of tasks and the usage (seconds, or images for Snapshot and
// ImageProcess).
type UsageItem struct {
	Time  string      `json:"Time"`
	Count json.Number `json:"Count"`
	Usage json.Number `json:"Usage"`
}

// UsageSpecification is one specification's days.
type UsageSpecification struct {
	Specification string      `json:"Specification"`
	Data          []UsageItem `json:"Data"`
}

// TaskStatData is one task type's usage: a daily summary and, where the
// type has them, the days of each specification.
type TaskStatData struct {
	TaskType string               `json:"TaskType"`
	Summary  []UsageItem          `json:"Summary"`
	Details  []UsageSpecification `json:"Details"`
}

// DescribeUsageDataResponseParams is the body inside "Response".
type DescribeUsageDataResponseParams struct {
	Data      []TaskStatData `json:"Data"`
	RequestId *string        `json:"RequestId,omitempty"`
}

// UsageRow is one archived figure: a day, type and specification ("" for a
// type's summary where it reports no specifications).
type UsageRow struct {
	Day           time.Time // the Beijing day, as a date at UTC midnight
	Type          string
	Specification string
	Count         int64
	Usage         string // a decimal, as the API wrote it
}

// ErrMalformedUsage is wrapped by DecodeUsage's errors for a body that is
// not a DescribeUsageData answer.
var ErrMalformedUsage = errors.New("malformed DescribeUsageData response")

// UsageAnswer is a decoded DescribeUsageData answer.
type UsageAnswer struct {
	// Rows are the non-zero figures of the days asked for, one per day,
	// type and specification.
	Rows []UsageRow
	// Types are the task types the answer has a Data item for.
	Types []string
	// Problems name figures that could not be read (left out) and
	// answers that contradict themselves, one line each.
	Problems []string
}

// DecodeUsage reads a DescribeUsageData body. An error answer is an
// *APIError; a body that is not of the answer's shape wraps
// ErrMalformedUsage. Within it, nothing odd fails the whole answer: a
// figure that cannot be read is left out and named in Problems.
//
// A type with specifications gives one row per specification and day; a
// type without gives its summary (Specification ""), and so does the part
// of a day's summary that its specifications do not account for. A day,
// type and specification given twice (twice listed, or two times of one
// Beijing day) are added up. Days outside from..to and figures of zero
// are left out: the caller replaces the days it asked for with what is
// returned.
func DecodeUsage(body []byte, from, to time.Time) (UsageAnswer, error) {
	var ans UsageAnswer
	var env struct {
		Response json.RawMessage `json:"Response"`
	}
	if err := json.Unmarshal(body, &env); err != nil || len(env.Response) == 0 {
		return ans, fmt.Errorf("%w: no Response object", ErrMalformedUsage)
	}
	var e ErrorBody
	if json.Unmarshal(env.Response, &e) == nil && e.Error.Code != "" {
		return ans, &APIError{Action: ActionDescribeUsageData, Code: e.Error.Code, Message: e.Error.Message, RequestID: e.RequestId}
	}
	var r DescribeUsageDataResponseParams
	d := json.NewDecoder(bytes.NewReader(env.Response))
	d.UseNumber()
	if err := d.Decode(&r); err != nil {
		return ans, fmt.Errorf("%w: %s", ErrMalformedUsage, truncate(err.Error(), 120))
	}
	type key struct {
		day       time.Time
		typ, spec string
	}
	sums := map[key]*figure{}
	var order []key
	add := func(k key, f figure) {
		if s, ok := sums[k]; ok {
			s.add(f)
			return
		}
		sums[k] = &f
		order = append(order, k)
	}
	problem := func(format string, args ...any) {
		if len(ans.Problems) < 20 {
			ans.Problems = append(ans.Problems, fmt.Sprintf(format, args...))
		}
	}
	// A type with a figure that cannot be read is not taken as answered:
	// its stored figures of the days asked are not set to zero for want of
	// the unreadable one (the readable ones are stored all the same).
	unreadable := map[string]bool{}
	read := func(typ, spec string, items []UsageItem, each func(time.Time, figure)) {
		for _, it := range items {
			day, f, err := readItem(it)
			if err != nil {
				problem("%s %q: %v: left out", typ, spec, err)
				unreadable[typ] = true
				continue
			}
			if day.Before(from) || day.After(to) {
				continue
			}
			each(day, f)
		}
	}
	for _, t := range r.Data {
		if t.TaskType == "" {
			problem("a Data item has no TaskType: left out")
			continue
		}
		if slices.Contains(ans.Types, t.TaskType) {
			problem("%s has two Data items: their figures are added up", t.TaskType)
		} else {
			ans.Types = append(ans.Types, t.TaskType)
		}
		summary := map[time.Time]*figure{}
		var days []time.Time
		read(t.TaskType, "(summary)", t.Summary, func(day time.Time, f figure) {
			if s, ok := summary[day]; ok {
				s.add(f)
				return
			}
			summary[day] = &f
			days = append(days, day)
		})
		detailed := map[time.Time]*figure{}
		specs := map[time.Time]int64{}
		for _, sp := range t.Details {
			read(t.TaskType, sp.Specification, sp.Data, func(day time.Time, f figure) {
				add(key{day, t.TaskType, sp.Specification}, f)
				specs[day]++
				if s, ok := detailed[day]; ok {
					s.add(f)
				} else {
					c := figure{count: f.count, usage: new(big.Rat).Set(f.usage)}
					detailed[day] = &c
				}
			})
		}
		// What a day's summary has beyond its specifications (all of it,
		// for a type without any) is kept as the type's own figure. Each
		// figure may be rounded on its own (to whole units): a difference
		// of no task and at most half a unit per figure, the summary's
		// included, is rounding.
		for _, day := range days {
			rest := *summary[day]
			if dt, ok := detailed[day]; ok {
				slack := big.NewRat(specs[day]+1, 2)
				over := new(big.Rat).Sub(dt.usage, rest.usage)
				if rest.count < dt.count || over.Cmp(slack) > 0 {
					problem("%s %s: the specifications add up to more than the summary: kept as they are", t.TaskType, day.Format(time.DateOnly))
				}
				rest.sub(*dt)
				if rest.count == 0 && rest.usage.Cmp(slack) <= 0 {
					continue
				}
			}
			if rest.count > 0 || rest.usage.Sign() > 0 {
				add(key{day, t.TaskType, ""}, rest)
			}
		}
	}
	ans.Types = slices.DeleteFunc(ans.Types, func(t string) bool { return unreadable[t] })
	for _, k := range order {
		f := sums[k]
		if f.count == 0 && f.usage.Sign() == 0 {
			continue
		}
		ans.Rows = append(ans.Rows, UsageRow{Day: k.day, Type: k.typ, Specification: k.spec, Count: f.count, Usage: f.amount()})
	}
	return ans, nil
}

// figure is a count and an exact usage.
type figure struct {
	count int64
	usage *big.Rat
}

func (f *figure) add(g figure) {
	f.count += g.count
	f.usage = new(big.Rat).Add(f.usage, g.usage)
}

// sub takes g away, down to zero at most.
func (f *figure) sub(g figure) {
	f.count = max(f.count-g.count, 0)
	f.usage = new(big.Rat).Sub(f.usage, g.usage)
	if f.usage.Sign() < 0 {
		f.usage = new(big.Rat)
	}
}

// amount is the usage as a decimal: exact where it has at most 6
// decimals, which is all the API writes.
func (f *figure) amount() string {
	s := strings.TrimRight(f.usage.FloatString(6), "0")
	return strings.TrimSuffix(s, ".")
}

// readItem reads one day's figure: Time the day's start (any ISO 8601
// offset: the Beijing day it falls on), Count a whole number (written
// 3 or 3.0), Usage a non-negative decimal.
func readItem(it UsageItem) (time.Time, figure, error) {
	at, err := time.Parse(time.RFC3339, it.Time)
	if err != nil {
		return time.Time{}, figure{}, fmt.Errorf("Time %q is not an ISO 8601 time", it.Time)
	}
	// Shapes checked first: an exponent of a billion would cost big.Rat
	// that many digits.
	if it.Count != "" && !countShape.MatchString(string(it.Count)) {
		return time.Time{}, figure{}, fmt.Errorf("%s: Count %q is not a count", it.Time, it.Count)
	}
	if it.Usage != "" && !amountShape.MatchString(string(it.Usage)) {
		return time.Time{}, figure{}, fmt.Errorf("%s: Usage %q is not an amount", it.Time, it.Usage)
	}
	count, ok := new(big.Rat).SetString(string(cmp.Or(it.Count, "0")))
	if !ok || !count.IsInt() || count.Sign() < 0 || !count.Num().IsInt64() {
		return time.Time{}, figure{}, fmt.Errorf("%s: Count %q is not a count", it.Time, it.Count)
	}
	usage, ok := new(big.Rat).SetString(string(cmp.Or(it.Usage, "0")))
	if !ok || usage.Sign() < 0 {
		return time.Time{}, figure{}, fmt.Errorf("%s: Usage %q is not an amount", it.Time, it.Usage)
	}
	return UsageDay(at), figure{count: count.Num().Int64(), usage: usage}, nil
}

// The shapes a count and an amount may take: digits, a fraction, a small
// exponent.
var (
	countShape  = regexp.MustCompile(`^[0-9]{1,18}(\.0*)?$`)
	amountShape = regexp.MustCompile(`^[0-9]{1,30}(\.[0-9]{0,12})?([eE][+-]?[0-9]{1,2})?$`)
)
