package simulator

import (
	"fmt"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Image-processing tasks (docs: UsageAndMedia.md, "Image tasks"): what
// DescribeImageTasks lists of them and what DescribeImageTaskDetail says,
// drawn from the task's id like a media task's detail. Their inputs carry
// the same planted secrets as the media tasks' (Secrets lists them all):
// in a signed URL, or in an S3 input's keys, which the list's Input string
// shows as JSON.

// The styles of an image task's input.
const (
	imageInputCOS    = iota // a COS object; the list shows it as a cos:// path
	imageInputS3URL         // a presigned S3 URL
	imageInputCOSURL        // a COS-signed URL
	imageInputS3            // an AWS-S3 input with its keys; the list shows its JSON
	imageInputStyles
)

// imageFormats are the output formats an image task's template encodes to,
// with their files' extension.
var imageFormats = []struct{ format, ext string }{{"JPEG", "jpg"}, {"PNG", "png"}, {"WEBP", "webp"}}

func (t *Task) imageHash() uint64 { return mediaHash(t.ID, "image") }

// imageInputStyle is one of the imageInput styles, drawn from the id.
func (t *Task) imageInputStyle() int { return int((t.imageHash() / 17) % imageInputStyles) }

// imageResultCount is how many results (1 to 3) the task's detail has.
func (t *Task) imageResultCount() int { return 1 + int((t.imageHash()/3)%3) }

// imageInputInfo is the task's input as the detail's InputInfo (a
// MediaInputInfo).
func (t *Task) imageInputInfo() map[string]any {
	object := "/input/" + t.ID + ".jpg"
	switch style := t.imageInputStyle(); style {
	case imageInputS3URL, imageInputCOSURL:
		return map[string]any{"Type": "URL", "UrlInputInfo": map[string]any{"Url": signedInputURL(t.ID, ".jpg", style == imageInputCOSURL)}}
	case imageInputS3:
		return map[string]any{"Type": "AWS-S3", "S3InputInfo": map[string]any{"S3Bucket": "media", "S3Region": "us-east-1",
			"S3Object": object, "S3SecretId": S3SecretID, "S3SecretKey": S3SecretKey}}
	}
	return map[string]any{"Type": "COS", "CosInputInfo": map[string]any{"Bucket": "media-1250000000", "Region": "ap-guangzhou", "Object": object}}
}

// imageInput is the task's input as DescribeImageTasks' Input string: a
// cos:// path, a signed URL, or an S3 input's JSON with its keys.
func (t *Task) imageInput() string {
	switch style := t.imageInputStyle(); style {
	case imageInputS3URL, imageInputCOSURL:
		return signedInputURL(t.ID, ".jpg", style == imageInputCOSURL)
	case imageInputS3:
		return mustJSON(t.imageInputInfo())
	}
	return "cos://media-1250000000.cos.ap-guangzhou.myqcloud.com/input/" + t.ID + ".jpg"
}

// imageDetail is the task's DescribeImageTaskDetail Response at now,
// without RequestId. It has no TaskType: the reference lists none.
func (t *Task) imageDetail(now int64, errs []DetailError) map[string]any {
	h := t.imageHash()
	format := imageFormats[(h/7)%uint64(len(imageFormats))]
	return map[string]any{
		"Status":           string(t.StatusAt(now)),
		"CreateTime":       listTime(t.Create, now),
		"BeginProcessTime": listTime(t.Begin, now),
		"FinishTime":       listTime(t.Finish, now),
		"Definition":       20001 + int((h/11)%20),
		"ImageTask": map[string]any{
			"EncodeConfig": map[string]any{"Format": format.format, "Quality": 75 + int((h/13)%21)},
			"EnhanceConfig": map[string]any{
				"SuperResolution":     map[string]any{"Switch": []string{"ON", "OFF"}[(h/19)%2], "Type": "lq", "Size": 2},
				"ImageQualityEnhance": map[string]any{"Switch": "ON", "Type": "normal"},
			},
		},
		"InputInfo":                 t.imageInputInfo(),
		"ImageProcessTaskResultSet": t.imageResults(now, errs, format.ext),
	}
}

// imageResults are the task's results at now: PROCESSING without an
// Output until it is FINISH; then SUCCESS with an Output each, except the
// one a failed task reports its error in.
func (t *Task) imageResults(now int64, errs []DetailError, ext string) []any {
	status := t.StatusAt(now)
	f := t.failure(errs)
	out := make([]any, 0, t.imageResultCount())
	for i := range t.imageResultCount() {
		r := map[string]any{"Status": "PROCESSING", "ErrCode": 0, "ErrCodeExt": "", "Message": "", "Progress": t.imageProgress(now, status)}
		switch {
		case status != mps.StatusFinish:
		case t.Failed && i == f.subtask:
			f.report(r)
		default:
			path := fmt.Sprintf("/output/%s/image-%d.%s", t.ID, i, ext)
			r["Status"], r["ErrCodeExt"], r["Message"] = "SUCCESS", f.successExt, "SUCCESS"
			r["Output"] = map[string]any{"Path": path, "SignedUrl": cosSignedURL("archive-1250000000", path)}
		}
		out = append(out, r)
	}
	return out
}

// imageProgress is a result's Progress (0 to 100) at now: how much of the
// processing time has passed.
func (t *Task) imageProgress(now int64, status mps.Status) int {
	switch {
	case status == mps.StatusFinish:
		return 100
	case status == mps.StatusWaiting || t.Finish <= t.Begin:
		return 0
	}
	return int(100 * (now - t.Begin) / (t.Finish - t.Begin))
}
