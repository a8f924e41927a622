package mps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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

// DecodeUsage reads a DescribeUsageData body into rows. An error answer is
// an *APIError. A type with specifications gives one row per
// specification and day; a type without gives its summary (Specification
// ""). Days outside from..to and rows of zero count and usage are left
// out: the caller replaces the whole range with what is returned.
func DecodeUsage(body []byte, from, to time.Time) ([]UsageRow, error) {
	var env struct {
		Response json.RawMessage `json:"Response"`
	}
	if err := json.Unmarshal(body, &env); err != nil || len(env.Response) == 0 {
		return nil, fmt.Errorf("%w: no Response object", ErrMalformedUsage)
	}
	var e ErrorBody
	if json.Unmarshal(env.Response, &e) == nil && e.Error.Code != "" {
		return nil, &APIError{Action: ActionDescribeUsageData, Code: e.Error.Code, Message: e.Error.Message, RequestID: e.RequestId}
	}
	var r DescribeUsageDataResponseParams
	d := json.NewDecoder(bytes.NewReader(env.Response))
	d.UseNumber()
	if err := d.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformedUsage, truncate(err.Error(), 120))
	}
	var rows []UsageRow
	add := func(typ, spec string, items []UsageItem) error {
		for _, it := range items {
			row, keep, err := usageRow(typ, spec, it, from, to)
			if err != nil {
				return err
			}
			if keep {
				rows = append(rows, row)
			}
		}
		return nil
	}
	for _, t := range r.Data {
		if t.TaskType == "" {
			return nil, fmt.Errorf("%w: a Data item has no TaskType", ErrMalformedUsage)
		}
		if len(t.Details) == 0 {
			if err := add(t.TaskType, "", t.Summary); err != nil {
				return nil, err
			}
			continue
		}
		for _, s := range t.Details {
			if s.Specification == "" {
				return nil, fmt.Errorf("%w: a %s specification has no name", ErrMalformedUsage, t.TaskType)
			}
			if err := add(t.TaskType, s.Specification, s.Data); err != nil {
				return nil, err
			}
		}
	}
	return rows, nil
}

func usageRow(typ, spec string, it UsageItem, from, to time.Time) (UsageRow, bool, error) {
	at, err := time.Parse(time.RFC3339, it.Time)
	if err != nil {
		return UsageRow{}, false, fmt.Errorf("%w: %s %s: Time %q is not an ISO 8601 time", ErrMalformedUsage, typ, spec, it.Time)
	}
	day := UsageDay(at)
	count, err := strconv.ParseInt(string(cmpOr(it.Count, "0")), 10, 64)
	if err != nil || count < 0 {
		return UsageRow{}, false, fmt.Errorf("%w: %s %s %s: Count %q is not a count", ErrMalformedUsage, typ, spec, it.Time, it.Count)
	}
	usage := string(cmpOr(it.Usage, "0"))
	if f, err := strconv.ParseFloat(usage, 64); err != nil || f < 0 {
		return UsageRow{}, false, fmt.Errorf("%w: %s %s %s: Usage %q is not an amount", ErrMalformedUsage, typ, spec, it.Time, it.Usage)
	} else if f == 0 && count == 0 {
		return UsageRow{}, false, nil
	}
	if day.Before(from) || day.After(to) {
		return UsageRow{}, false, nil
	}
	return UsageRow{Day: day, Type: typ, Specification: spec, Count: count, Usage: usage}, true, nil
}

func cmpOr(n json.Number, def json.Number) json.Number {
	if n == "" {
		return def
	}
	return n
}
