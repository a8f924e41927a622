package simulator

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// DescribeUsageData as the simulator serves it (docs: UsageAndMedia.md):
// the usage of the tasks it holds, billed on the Beijing day each
// finished, and before the first of them a deterministic history, so that
// a backfill of 365 days has something to find. Each task was processed
// in one region, drawn from its id, and each output it reports is billed
// as MPS bills it: a transcode by its duration under
// {Standard|TESHD-10|Edit}.{codec}.{tier of the short edge}; snapshots by
// image; GIFs by seconds without specifications; AI by the input's
// duration. Adaptive streaming is billed too, by a duration its detail
// does not report: what an archive of the details cannot account for.

// UsageFigure is one figure the API reports: a region's day, type and
// specification ("" for a type that reports only its summary).
type UsageFigure struct {
	Region string
	mps.UsageRow
}

// usageDefaults are what the API answers for when the request leaves
// Types or ProcessRegions out.
var (
	usageDefaultTypes   = []string{"Transcode"}
	usageDefaultRegions = []string{"ap-guangzhou"}
)

// region is where the task was processed.
func (t *Task) region() string {
	switch mediaHash(t.ID, "region") % 10 {
	case 0, 1:
		return "ap-shanghai"
	case 2:
		return "ap-singapore"
	}
	return "ap-guangzhou"
}

// usageTier is the billing tier of a short edge.
func usageTier(w, h int) string {
	short := min(w, h)
	switch {
	case short <= 480:
		return "SD"
	case short <= 720:
		return "HD"
	case short <= 1080:
		return "FHD"
	case short <= 1440:
		return "2K"
	case short <= 2160:
		return "4K"
	}
	return "8K"
}

// usageCodec is the specification's codec of an output's video codec.
func usageCodec(c string) string {
	switch strings.ToLower(c) {
	case "h265", "hevc":
		return "H265"
	case "av1":
		return "AV1"
	}
	return "H264"
}

// TESHDTemplate reports whether a transcoding template is a TESHD one (the
// simulator's templates 100020, 100040, …): what only
// DescribeTranscodeTemplates would tell.
func TESHDTemplate(template int64) bool { return template%20 == 0 }

type usageKey struct {
	day         time.Time
	region, typ string
	spec        string
}

type usageSum struct {
	count int64
	usage float64
}

// usageEntry is one billed figure of a task.
type usageEntry struct {
	key   usageKey
	count int64
	usage float64
}

// usage is what the task was billed, once it finished by now (computed
// once: a finished task's bill never changes).
func (t *Task) usage(now int64, errs []DetailError) []usageEntry {
	if t.Raw != nil || t.DetailRaw != nil || t.StatusAt(now) != mps.StatusFinish || t.Finish == 0 {
		return nil
	}
	if u := t.billed.Load(); u != nil {
		return *u
	}
	var entries []usageEntry
	add := func(k usageKey, count int64, usage float64) {
		entries = append(entries, usageEntry{k, count, usage})
	}
	day := mps.UsageDay(time.Unix(0, t.Finish))
	region := t.region()
	bill := func(typ, spec string, count int64, usage float64) {
		add(usageKey{day: day, region: region, typ: typ, spec: spec}, count, usage)
	}
	hidden, _, _, _ := inputMeta(t.ID)
	for _, o := range t.media(now, errs).outputs {
		switch o.Kind {
		case "Transcode", "EditMedia":
			prefix := "Standard"
			if o.Kind == "EditMedia" {
				prefix = "Edit"
			} else if TESHDTemplate(o.Template) {
				prefix = "TESHD-10"
			}
			bill("Transcode", prefix+"."+usageCodec(o.VideoCodec)+"."+usageTier(o.Width, o.Height), 1, o.DurationS)
		case "AdaptiveDynamicStreaming":
			bill("Transcode", "Standard.H264.HD", 1, hidden)
		case "AnimatedGraphics":
			bill("AnimatedGraphics", "", 1, 5)
		case "SnapshotByTimeOffset":
			bill("Snapshot", "SnapshotByTime", 1, 10)
		case "CoverBySnapshot":
			bill("Snapshot", "SnapshotByTime", 1, 1)
		case "SampleSnapshot":
			bill("Snapshot", "SampleSnapshot", 1, 10)
		case "ImageSprites":
			bill("Snapshot", "ImageSprite", 1, 1)
		}
	}
	if t.Failed {
		t.billed.Store(&entries)
		return entries
	}
	for _, st := range t.SubTaskTypes {
		switch mps.SubTaskKind(st) {
		case "AiAnalysis":
			bill("AIAnalysis", "VideoTag", 1, hidden)
		case "AiRecognition":
			bill("AIRecognition", "FaceRecognition", 1, hidden)
		case "AiContentReview":
			bill("AIReview", "", 1, hidden)
		case "AiQualityControl":
			bill("AiQualityControl", "", 1, hidden)
		}
	}
	t.billed.Store(&entries)
	return entries
}

// historyUsage is the billed usage of a day before the simulator's first
// task: a few figures in three regions, none on some days.
func historyUsage(day time.Time, add func(usageKey, int64, float64)) {
	d := day.Format(time.DateOnly)
	for _, region := range []string{"ap-guangzhou", "ap-shanghai", "ap-singapore"} {
		x := mediaHash("history", d, region)
		if x%7 == 0 {
			continue
		}
		k := usageKey{day: day, region: region}
		specs := []string{"Standard.H264.HD", "Standard.H264.FHD", "Standard.H265.4K", "TESHD-10.H265.FHD", "Audio", "Remuxing"}
		for i, spec := range specs {
			if (x>>uint(i))%3 == 0 {
				continue
			}
			k.typ, k.spec = "Transcode", spec
			add(k, int64(1+(x>>uint(8+i))%40), float64(30+(x>>uint(16+i))%20000))
		}
		k.typ, k.spec = "Snapshot", "SampleSnapshot"
		add(k, int64(1+x%9), float64(10*(1+x%9)))
		if x%5 == 0 {
			k.typ, k.spec = "AIReview", ""
			add(k, int64(1+x%3), float64(60+(x>>3)%600))
		}
	}
}

// UsageTruth is every non-zero figure the API reports for the Beijing days
// from..to (dates at UTC midnight) at the clock's now, in every region
// and type.
func (s *Server) UsageTruth(from, to time.Time) []UsageFigure {
	sums := s.usageSums(from, to)
	keys := make([]usageKey, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b usageKey) int {
		return cmpStrings(a.region, b.region, a.typ, b.typ, a.spec, b.spec, a.day.Format(time.DateOnly), b.day.Format(time.DateOnly))
	})
	out := make([]UsageFigure, 0, len(keys))
	for _, k := range keys {
		v := sums[k]
		out = append(out, UsageFigure{Region: k.region, UsageRow: mps.UsageRow{Day: k.day, Type: k.typ, Specification: k.spec,
			Count: v.count, Usage: usageAmount(v.usage)}})
	}
	return out
}

func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

// usageAmount is a sum as the API reports it: whole seconds (or images).
func usageAmount(v float64) string { return strconv.FormatInt(int64(math.Round(v)), 10) }

// usageSums adds up the figures of from..to.
func (s *Server) usageSums(from, to time.Time) map[usageKey]usageSum {
	now := s.clock.Now().UnixNano()
	sums := map[usageKey]usageSum{}
	add := func(k usageKey, count int64, usage float64) {
		if k.day.Before(from) || k.day.After(to) {
			return
		}
		v := sums[k]
		v.count += count
		v.usage += usage
		sums[k] = v
	}
	s.mu.RLock()
	origin := s.usageOrigin
	for _, t := range s.tasks {
		for _, e := range t.usage(now, s.cfg.DetailErrors) {
			add(e.key, e.count, e.usage)
		}
	}
	s.mu.RUnlock()
	today := mps.UsageDay(time.Unix(0, now))
	for d := from; !d.After(to) && d.Before(origin) && !d.After(today); d = d.AddDate(0, 0, 1) {
		historyUsage(d, add)
	}
	return sums
}

// serveUsage answers DescribeUsageData: the days of StartTime..EndTime
// (at most 90 days apart, none older than 365 days) of the types and
// regions asked for, summed over those regions; Transcode in ap-guangzhou
// when they are left out.
func (s *Server) serveUsage(w http.ResponseWriter, r *http.Request, reqID string, body []byte) {
	var m map[string]json.RawMessage
	var req mps.DescribeUsageDataRequestParams
	if json.Unmarshal(body, &m) != nil || json.Unmarshal(body, &req) != nil {
		s.fail(w, reqID, "", "InvalidParameter", "the request body is not a JSON object of the action's parameters")
		return
	}
	for k := range m {
		if k != "StartTime" && k != "EndTime" && k != "Types" && k != "ProcessRegions" {
			s.fail(w, reqID, "", mps.CodeUnknownParameter, fmt.Sprintf("The parameter `%s` is not recognized.", k))
			return
		}
	}
	s.count("usage")
	if s.inject(w, r, reqID, query{status: "usage", action: mps.ActionDescribeUsageData}) {
		return
	}
	if req.StartTime == nil || req.EndTime == nil {
		s.fail(w, reqID, "", "MissingParameter", "StartTime and EndTime are required")
		return
	}
	start, err1 := time.Parse(time.RFC3339, *req.StartTime)
	end, err2 := time.Parse(time.RFC3339, *req.EndTime)
	if err1 != nil || err2 != nil {
		s.fail(w, reqID, "", mps.CodeInvalidParameter, "StartTime and EndTime must be ISO 8601 times")
		return
	}
	if end.Before(start) {
		s.fail(w, reqID, "", mps.CodeInvalidParameter, "EndTime is before StartTime")
		return
	}
	if end.Sub(start) > mps.UsageMaxSpanDays*24*time.Hour {
		s.fail(w, reqID, "", mps.CodeInvalidParameter, "the time span must not exceed 90 days")
		return
	}
	types, regions := req.Types, req.ProcessRegions
	if len(types) == 0 {
		types = usageDefaultTypes
	}
	if len(regions) == 0 {
		regions = usageDefaultRegions
	}
	for _, t := range types {
		if !slices.Contains(mps.UsageTypes, t) {
			s.fail(w, reqID, "", mps.CodeInvalidParameter, fmt.Sprintf("unknown type %q", t))
			return
		}
	}
	now := s.clock.Now()
	oldest := mps.UsageDay(now).AddDate(0, 0, -(mps.UsageRetentionDays - 1))
	from, to := mps.UsageDay(start), mps.UsageDay(end)
	if from.Before(oldest) {
		from = oldest
	}
	s.statsMu.Lock()
	s.usageQueries = append(s.usageQueries, UsageQueryLog{Start: start, End: end, Types: len(req.Types), Regions: slices.Clone(req.ProcessRegions)})
	s.statsMu.Unlock()

	sums := s.usageSums(from, to)
	byType := map[string]map[string]map[time.Time]usageSum{}
	for k, v := range sums {
		if !slices.Contains(regions, k.region) || !slices.Contains(types, k.typ) {
			continue
		}
		if byType[k.typ] == nil {
			byType[k.typ] = map[string]map[time.Time]usageSum{}
		}
		if byType[k.typ][k.spec] == nil {
			byType[k.typ][k.spec] = map[time.Time]usageSum{}
		}
		cur := byType[k.typ][k.spec][k.day]
		cur.count += v.count
		cur.usage += v.usage
		byType[k.typ][k.spec][k.day] = cur
	}
	// Every day of the range, zeros included, as the API's series are.
	series := func(days map[time.Time]usageSum) []mps.UsageItem {
		items := []mps.UsageItem{}
		for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
			v := days[d]
			items = append(items, mps.UsageItem{Time: time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, mps.Beijing).Format(time.RFC3339),
				Count: json.Number(strconv.FormatInt(v.count, 10)), Usage: json.Number(usageAmount(v.usage))})
		}
		return items
	}
	resp := mps.DescribeUsageDataResponseParams{Data: []mps.TaskStatData{}, RequestId: &reqID}
	for _, typ := range types {
		specs := byType[typ]
		summary := map[time.Time]usageSum{}
		names := make([]string, 0, len(specs))
		for spec, days := range specs {
			for d, v := range days {
				cur := summary[d]
				cur.count += v.count
				cur.usage += v.usage
				summary[d] = cur
			}
			if spec != "" {
				names = append(names, spec)
			}
		}
		slices.Sort(names)
		data := mps.TaskStatData{TaskType: typ, Summary: series(summary), Details: []mps.UsageSpecification{}}
		for _, spec := range names {
			data.Details = append(data.Details, mps.UsageSpecification{Specification: spec, Data: series(specs[spec])})
		}
		resp.Data = append(resp.Data, data)
	}
	writeJSON(w, map[string]any{"Response": resp})
}

// UsageQueryLog is one DescribeUsageData request the server answered: its
// range, how many types it named and the regions it named (none: the
// defaults).
type UsageQueryLog struct {
	Start, End time.Time
	Types      int
	Regions    []string
}

// UsageQueries lists the DescribeUsageData requests answered so far.
func (s *Server) UsageQueries() []UsageQueryLog {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return slices.Clone(s.usageQueries)
}
