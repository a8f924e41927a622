package simulator

import (
	"fmt"
	"hash/fnv"
	"math"
	"strings"
)

// The media facts a simulated detail carries (docs: UsageAndMedia.md,
// "Media facts inside DescribeTaskDetail"), drawn from the task's id and
// the result's position, and the same facts typed: what an archive of the
// details should extract (MediaOutputs, MediaInputs).

// MediaOutput is one output a finished task's detail reports.
type MediaOutput struct {
	Ordinal     int
	Kind        string // Transcode, AdaptiveDynamicStreaming, …, EditMedia
	Template    int64  // 0: none
	Container   string
	DurationS   float64 // 0 with NoDuration
	NoDuration  bool    // the detail reports no duration for it
	Width       int
	Height      int
	VideoCodec  string
	FPS         float64
	Bitrate     int64
	Size        int64
	StorageType string
	Bucket      string
	Region      string
	Path        string
}

// MediaInput is one input of a task's detail. URL is without its query
// string (a signed URL's signature is a secret).
type MediaInput struct {
	Ordinal   int
	Type      string
	Bucket    string
	Region    string
	Object    string
	URL       string
	DurationS float64
	Width     int
	Height    int
	Size      int64
}

var mediaResolutions = [][2]int{{640, 360}, {1280, 720}, {1920, 1080}, {2560, 1440}, {3840, 2160}, {7680, 4320}, {1080, 1920}, {720, 1280}}

func mediaHash(parts ...string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strings.Join(parts, "\x00")))
	return h.Sum64()
}

// mediaOutput is the output of result i (of kind) of task id, as facts.
func mediaOutput(id, kind string, i int, template int64, path string) MediaOutput {
	x := mediaHash(id, kind, fmt.Sprint(i))
	o := MediaOutput{Ordinal: i, Kind: kind, Template: template, Path: path,
		StorageType: "COS", Bucket: "archive-1250000000", Region: "ap-guangzhou"}
	if x%4 == 0 {
		o.StorageType, o.Bucket, o.Region = "AWS-S3", "archive-s3", "us-east-1"
	}
	res := mediaResolutions[(x/5)%uint64(len(mediaResolutions))]
	duration := float64(1000+(x/7)%3_600_000) / 1000 // 1 s to an hour, to the millisecond
	bitrate := int64(300_000 + (x/11)%8_000_000)
	switch kind {
	case "Transcode":
		if min(res[0], res[1]) > 2160 {
			// MPS documents no specification above 4K: none is made up.
			res = [2]int{3840, 2160}
		}
		o.Container = []string{"mp4", "hls", "flv"}[(x/13)%3]
		o.DurationS, o.Width, o.Height, o.Bitrate = duration, res[0], res[1], bitrate
		o.Size = int64(duration * float64(bitrate) / 8)
		o.VideoCodec = []string{"h264", "h265", "av1"}[(x/17)%3]
		o.FPS = []float64{25, 29.97, 30, 60}[(x/19)%4]
	case "AnimatedGraphics":
		o.Container = "gif"
		o.NoDuration = true
		o.Width, o.Height, o.Bitrate = res[0]/4, res[1]/4, bitrate/10
		o.Size = int64(math.Round(5 * float64(o.Bitrate) / 8))
	default: // adaptive streaming and images: path and storage only
		o.NoDuration = true
	}
	return o
}

// json renders an output as the detail's Output object.
func (o MediaOutput) json() map[string]any {
	storage := map[string]any{"Type": o.StorageType}
	if o.StorageType == "AWS-S3" {
		storage["S3OutputStorage"] = map[string]any{"S3Bucket": o.Bucket, "S3Region": o.Region,
			"S3SecretId": S3SecretID, "S3SecretKey": S3SecretKey}
	} else {
		storage["CosOutputStorage"] = map[string]any{"Bucket": o.Bucket, "Region": o.Region}
	}
	out := map[string]any{"Path": o.Path}
	// Transcode outputs name their storage OutputStorage; the others Storage.
	if o.Kind == "Transcode" || o.Kind == "EditMedia" {
		out["OutputStorage"] = storage
	} else {
		out["Storage"] = storage
		out["Definition"] = o.Template
	}
	switch o.Kind {
	case "Transcode":
		out["Container"], out["Duration"], out["Width"], out["Height"] = o.Container, o.DurationS, o.Width, o.Height
		out["Bitrate"], out["Size"], out["Md5"] = o.Bitrate, o.Size, fmt.Sprintf("%032x", mediaHash(o.Path))
		out["VideoStreamSet"] = []any{map[string]any{"Width": o.Width, "Height": o.Height, "Codec": o.VideoCodec, "Fps": o.FPS, "Bitrate": o.Bitrate - 64_000}}
		out["AudioStreamSet"] = []any{map[string]any{"Codec": "aac", "SamplingRate": 44100, "Bitrate": 64_000}}
	case "AnimatedGraphics":
		out["Container"], out["Width"], out["Height"], out["Bitrate"], out["Size"] = o.Container, o.Width, o.Height, o.Bitrate, o.Size
		out["StartTimeOffset"], out["EndTimeOffset"] = 0.0, 5.0
	case "EditMedia":
		out["MetaData"] = map[string]any{"Container": o.Container, "Duration": o.DurationS, "Width": o.Width, "Height": o.Height,
			"Bitrate": o.Bitrate, "Size": o.Size,
			"VideoStreamSet": []any{map[string]any{"Width": o.Width, "Height": o.Height, "Codec": o.VideoCodec, "Fps": o.FPS}}}
	}
	return out
}

// editOutput is an EditMediaTask's output, as facts.
func editOutput(id string) MediaOutput {
	o := mediaOutput(id, "Transcode", 0, 0, "/output/"+id+"/edited.mp4")
	o.Kind, o.Container, o.StorageType, o.Bucket, o.Region = "EditMedia", "mp4", "COS", "archive-1250000000", "ap-guangzhou"
	return o
}

// inputMeta is the metadata of a workflow's input (WorkflowTask.MetaData).
func inputMeta(id string) (duration float64, width, height int, size int64) {
	x := mediaHash(id, "input")
	res := mediaResolutions[(x/5)%uint64(len(mediaResolutions))]
	duration = float64(1000+(x/7)%3_600_000) / 1000
	return duration, res[0], res[1], int64(duration * 1_000_000)
}

// MediaOutputs are the outputs the task's detail reports at now: none
// before it finishes, none of a failed result.
func (t *Task) MediaOutputs(now int64, errs []DetailError) []MediaOutput {
	return t.media(now, errs).outputs
}

// MediaInputs are the inputs the task's detail reports at now.
func (t *Task) MediaInputs(now int64, errs []DetailError) []MediaInput {
	return t.media(now, errs).inputs
}

type mediaFacts struct {
	outputs []MediaOutput
	inputs  []MediaInput
}

// media is the facts of the detail the task serves at now (none for a
// scenario's hand-written detail).
func (t *Task) media(now int64, errs []DetailError) mediaFacts {
	if t.DetailRaw != nil || t.Raw != nil {
		return mediaFacts{}
	}
	_, m := t.detail(now, errs)
	return m
}
