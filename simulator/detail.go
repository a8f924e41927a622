package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"

	"github.com/mps-archiver/mps-archiver/mps"
)

// Secrets every simulated detail carries (TaskNotifyConfig.NotifyKey, the
// AWS SQS and S3 keys): values distinctive enough that a scan of a database
// dump, a log or /metrics finds them if the archiver ever keeps one.
const (
	NotifyKey   = "SIMULATOR-NOTIFY-KEY-5b1f0e7d"
	S3SecretID  = "SIMULATOR-S3-SECRET-ID-a41c"
	S3SecretKey = "SIMULATOR-S3-SECRET-KEY-93d2e0"
)

// Secrets the simulated details carry where a redaction by field name
// alone misses them: inside URLs, in JSON inside string fields, in DRM
// objects, under names other than *SecretKey. Each is planted only where
// the real API can echo a user's value (URLs, SessionContext, ExtInfo) or
// documents one (DrmInfo). Every one contains NotifyKey, so a scan for
// NotifyKey alone also finds any of them kept whole; Secrets lists them all
// for a scan that names the one that leaked.
const (
	// TaskNotifyConfig.NotifyUrl: https://hook:<password>@…?token=<token>.
	NotifyURLToken    = NotifyKey + ".notify-url-token"
	NotifyURLPassword = NotifyKey + ".notify-url-password"
	// AdaptiveDynamicStreamingTask.Input.DrmInfo.SimpleAesDrm: the HLS
	// AES-128 content key, its IV, and a token in its key URI.
	DRMKey         = NotifyKey + ".drm-key"
	DRMVector      = NotifyKey + ".drm-vector"
	DRMKeyURIToken = NotifyKey + ".drm-key-uri-token"
	// A presigned S3 input URL (X-Amz-Credential names the access key).
	AmzAccessKeyID   = NotifyKey + ".x-amz-credential"
	AmzSecurityToken = NotifyKey + ".x-amz-security-token"
	AmzSignature     = NotifyKey + ".x-amz-signature"
	// A COS-signed input URL.
	COSSecretID      = NotifyKey + ".q-ak"
	COSSignature     = NotifyKey + ".q-signature"
	COSSecurityToken = NotifyKey + ".x-cos-security-token"
	// A live stream's URL authentication (LiveStreamProcessTask.Url).
	LiveTxSecret = NotifyKey + ".tx-secret"
	// JSON in SessionContext and ExtInfo.
	SessionAPIToken     = NotifyKey + ".session-api-token"
	SessionAccessKey    = NotifyKey + ".session-access-key"
	SessionClientSecret = NotifyKey + ".session-client-secret"
	SessionBearer       = NotifyKey + ".session-bearer-token"
	ExtAPIToken         = NotifyKey + ".ext-api-token"
	ExtPrivateKey       = NotifyKey + ".ext-private-key"
	ExtSignature        = NotifyKey + ".ext-signature"
	ExtCredential       = NotifyKey + ".ext-credential"
	ExtSnakeAccessKey   = NotifyKey + ".ext-access_key"
)

// Secrets lists every secret value the simulated details carry: a scan of
// anything the archiver writes should find none of them.
func Secrets() []string {
	return []string{NotifyKey, S3SecretID, S3SecretKey,
		NotifyURLToken, NotifyURLPassword, DRMKey, DRMVector, DRMKeyURIToken,
		AmzAccessKeyID, AmzSecurityToken, AmzSignature, COSSecretID, COSSignature, COSSecurityToken, LiveTxSecret,
		SessionAPIToken, SessionAccessKey, SessionClientSecret, SessionBearer,
		ExtAPIToken, ExtPrivateKey, ExtSignature, ExtCredential, ExtSnakeAccessKey}
}

// sessionContext and extInfo are the JSON a user put in the task's
// SessionContext and ExtInfo, which the detail echoes as strings.
var (
	sessionContext = mustJSON(map[string]any{"requestedBy": "simulator", "apiToken": SessionAPIToken, "AccessKey": SessionAccessKey,
		"ClientSecret": SessionClientSecret, "Authorization": "Bearer " + SessionBearer})
	extInfo = mustJSON(map[string]any{"apiToken": ExtAPIToken, "pipeline": "archive-test",
		"upstream": map[string]any{"PrivateKey": ExtPrivateKey, "Signature": ExtSignature, "Credential": ExtCredential, "access_key": ExtSnakeAccessKey}})
)

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// urlInput is a URL input whose URL is signed: a presigned S3 URL or a
// COS-signed one, as a user hands MPS a private object.
func urlInput(id string, cos bool) map[string]any {
	return map[string]any{"Type": "URL", "UrlInputInfo": map[string]any{"Url": signedInputURL(id, ".mp4", cos)}}
}

// signedInputURL is the signed URL of the input object /input/<id><ext>:
// a presigned S3 URL, or a COS-signed one.
func signedInputURL(id, ext string, cos bool) string {
	if cos {
		return cosSignedURL("media-1250000000", "/input/"+id+ext)
	}
	return "https://media.s3.us-east-1.amazonaws.com/input/" + id + ext + "?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
		"&X-Amz-Credential=" + AmzAccessKeyID + "%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z" +
		"&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Security-Token=" + AmzSecurityToken + "&X-Amz-Signature=" + AmzSignature
}

// cosSignedURL is a COS-signed URL of object (a path) in the ap-guangzhou
// bucket, carrying the COS secrets.
func cosSignedURL(bucket, object string) string {
	return "https://" + bucket + ".cos.ap-guangzhou.myqcloud.com" + object + "?q-sign-algorithm=sha1&q-ak=" + COSSecretID +
		"&q-sign-time=1735689600;1735693200&q-key-time=1735689600;1735693200&q-header-list=host&q-url-param-list=" +
		"&q-signature=" + COSSignature + "&x-cos-security-token=" + COSSecurityToken
}

// drmInfo is an AdaptiveDynamicStreaming input's HLS AES-128 encryption.
func drmInfo(id string) map[string]any {
	return map[string]any{"Type": "simpleaes", "SimpleAesDrm": map[string]any{
		"Uri": "https://keys.invalid/hls/" + id + "?token=" + DRMKeyURIToken, "Key": DRMKey, "Vector": DRMVector}}
}

// serveDetail answers DescribeTaskDetail, or with image
// DescribeImageTaskDetail: the task's detail while it is younger than the
// detail retention, ResourceNotFound after, and for a task the action's
// list does not have.
func (s *Server) serveDetail(w http.ResponseWriter, r *http.Request, reqID string, body []byte, image bool) {
	var m map[string]json.RawMessage
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, &m); err != nil {
		s.fail(w, reqID, "", "InvalidParameter", "the request body is not a JSON object")
		return
	}
	var id string
	for k, v := range m {
		if k != "TaskId" {
			s.fail(w, reqID, "", mps.CodeUnknownParameter, fmt.Sprintf("The parameter `%s` is not recognized.", k))
			return
		}
		if json.Unmarshal(v, &id) != nil || strings.TrimSpace(id) == "" {
			s.fail(w, reqID, "", mps.CodeInvalidParameter, "TaskId must be a non-empty string")
			return
		}
	}
	if id == "" {
		s.fail(w, reqID, "", "MissingParameter", "The request is missing a required parameter `TaskId`.")
		return
	}
	s.count(statsKey(image, "detail"))
	action := mps.ActionDescribeTaskDetail
	if image {
		action = mps.ActionDescribeImageTaskDetail
	}
	if s.inject(w, r, reqID, query{status: "detail", action: action, image: image}) {
		return
	}
	now := s.clock.Now().UnixNano()
	s.mu.RLock()
	i, ok := s.index[id]
	var t *Task
	if ok {
		t = s.tasks[i]
	}
	s.mu.RUnlock()
	if !ok || t.Raw != nil || !describes(t, image, s.Variant()) || t.Create > now || now-t.Create > int64(s.cfg.DetailRetention) {
		s.fail(w, reqID, "", mps.CodeResourceNotFound, "The task does not exist.")
		return
	}
	if t.DetailRaw != nil {
		// Written in parts: a scenario's large detail is not copied per answer.
		head, tail := []byte(`{"Response":`), []byte(`}`)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(head)+len(t.DetailRaw)+len(tail)))
		for _, b := range [][]byte{head, t.DetailRaw, tail} {
			if _, err := w.Write(b); err != nil {
				return
			}
		}
		return
	}
	resp := t.Detail(now, s.cfg.DetailErrors)
	resp["RequestId"] = reqID
	writeJSON(w, map[string]any{"Response": resp})
}

// describes reports whether DescribeImageTaskDetail (image) or
// DescribeTaskDetail knows the task under v: each knows the tasks of its
// own list, DescribeTaskDetail image tasks too where DescribeTasks lists
// them.
func describes(t *Task, image bool, v Variant) bool {
	return listFor(image, v).holds(t)
}

// Detail is the DescribeTaskDetail Response of the task id at the clock's
// now, DescribeImageTaskDetail's for an image task (nil when the server has
// no such task).
func (s *Server) Detail(id string) map[string]any {
	now := s.clock.Now().UnixNano()
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.index[id]
	if !ok {
		return nil
	}
	return s.tasks[i].Detail(now, s.cfg.DetailErrors)
}

// detailTypes is the detail's TaskType where the list spells it otherwise.
var detailTypes = map[string]string{"LiveProcessTask": "LiveStreamProcessTask"}

// mediaMembers names the member of a MediaProcessResultSet item per Type.
var mediaMembers = map[string]string{
	"Transcode":                "TranscodeTask",
	"AnimatedGraphics":         "AnimatedGraphicTask",
	"SnapshotByTimeOffset":     "SnapshotByTimeOffsetTask",
	"SampleSnapshot":           "SampleSnapshotTask",
	"ImageSprites":             "ImageSpriteTask",
	"CoverBySnapshot":          "CoverBySnapshotTask",
	"AdaptiveDynamicStreaming": "AdaptiveDynamicStreamingTask",
}

// aiSets names the WorkflowTask member holding each AI kind's results.
var aiSets = map[string]string{
	"AiContentReview":  "AiContentReviewResultSet",
	"AiAnalysis":       "AiAnalysisResultSet",
	"AiRecognition":    "AiRecognitionResultSet",
	"AiQualityControl": "AiQualityControlTaskResult",
}

// DetailError is an error a failed simulated task reports.
type DetailError struct {
	Code    int    `json:"code"` // the ErrCode style
	Ext     string `json:"ext"`  // the ErrCodeExt style
	Message string `json:"message"`
}

// DefaultDetailErrors are codes the API reference documents.
var DefaultDetailErrors = []DetailError{
	{30010, "SourceFileError", "source file error"},
	{30011, "SourceFileError.NoVideoMedia", "the source has no video"},
	{40000, "InvalidInput", "invalid input"},
	{40001, "InvalidInput.InvalidTimeOffset", "the time offset is beyond the media"},
	{40002, "InvalidInput.DefinitionNotExist", "the template does not exist"},
	{70000, "InternalError", "internal error"},
}

// failure says how a failed task reports its failure, drawn from its id so
// that the API and the truth agree.
type failure struct {
	sourceFailed bool // the container's ErrCode (the source failed)
	subtask      int  // which sub-task failed
	style        int  // 0: ErrCode only, 1: ErrCodeExt only, 2: both
	err          DetailError
	successExt   string // "" or "SUCCESS" on the sub-tasks that succeeded
}

func (t *Task) failure(errs []DetailError) failure {
	h := fnv.New64a()
	h.Write([]byte(t.ID))
	x := h.Sum64()
	f := failure{style: int(x % 3), err: errs[(x/3)%uint64(len(errs))], successExt: []string{"", "SUCCESS"}[(x/7)%2]}
	n := len(t.SubTaskTypes)
	if t.Image {
		n = t.imageResultCount()
	}
	if n > 0 {
		f.subtask = int((x / 11) % uint64(n))
	}
	// An image task's failure is always in one of its results.
	f.sourceFailed = !t.Image && (x/13)%5 == 0
	return f
}

// report makes the result r the failed one: FAIL with the error in the
// failure's style (ErrCode only, ErrCodeExt only, or both), and no Output.
func (f failure) report(r map[string]any) {
	r["Status"], r["Message"] = "FAIL", f.err.Message
	switch f.style {
	case 0:
		r["ErrCode"] = f.err.Code
		delete(r, "ErrCodeExt")
	case 1:
		r["ErrCodeExt"] = f.err.Ext
		delete(r, "ErrCode")
	default:
		r["ErrCode"], r["ErrCodeExt"] = f.err.Code, f.err.Ext
	}
	delete(r, "Output")
}

// inputStyle is 0 (a COS object), 1 (a presigned S3 URL) or 2 (a
// COS-signed URL): the input a WorkflowTask detail shows.
func (t *Task) inputStyle() int {
	h := fnv.New64a()
	h.Write([]byte(t.ID))
	return int((h.Sum64() / 17) % 3)
}

// Expected is the outcome the archiver should record for the task at now:
// "" while it is not FINISH, else succeeded or failed with the first error
// (task level first) in the style the API reported it. An image task's
// error is its failed result's.
func (t *Task) Expected(now int64, errs []DetailError) (outcome, errCode, errCodeExt string) {
	if t.StatusAt(now) != mps.StatusFinish || t.Raw != nil {
		return "", "", ""
	}
	if !t.Failed {
		return mps.OutcomeSucceeded, "", ""
	}
	f := t.failure(errs)
	typ := detailType(t.Type)
	if !t.Image && (f.sourceFailed || typ == "EditMediaTask" || typ == "LiveStreamProcessTask" || len(t.SubTaskTypes) == 0) {
		return mps.OutcomeFailed, strconv.Itoa(f.err.Code), ""
	}
	switch f.style {
	case 0:
		return mps.OutcomeFailed, strconv.Itoa(f.err.Code), ""
	case 1:
		return mps.OutcomeFailed, "", f.err.Ext
	}
	return mps.OutcomeFailed, strconv.Itoa(f.err.Code), f.err.Ext
}

func detailType(listType string) string {
	if d, ok := detailTypes[listType]; ok {
		return d
	}
	return listType
}

// Detail is the task's DescribeTaskDetail Response at now, without
// RequestId: the container of its type with one result per sub-task; an
// image task's is its DescribeImageTaskDetail Response.
func (t *Task) Detail(now int64, errs []DetailError) map[string]any {
	d, _ := t.detail(now, errs)
	return d
}

// detail is Detail, and the media facts it reports.
func (t *Task) detail(now int64, errs []DetailError) (map[string]any, mediaFacts) {
	if t.Image {
		return t.imageDetail(now, errs), mediaFacts{}
	}
	var facts mediaFacts
	info := t.Info(now)
	status := t.StatusAt(now)
	typ := detailType(t.Type)
	finished := status == mps.StatusFinish
	f := t.failure(errs)
	failed := t.Failed && finished
	result := func(kind string, i int) map[string]any {
		r := map[string]any{"Status": "PROCESSING", "Input": map[string]any{"Definition": 100010 + i*10}}
		if kind == "AdaptiveDynamicStreaming" {
			r["Input"].(map[string]any)["DrmInfo"] = drmInfo(t.ID)
		}
		if !finished {
			return r
		}
		r["Status"], r["ErrCode"], r["ErrCodeExt"], r["Message"] = "SUCCESS", 0, f.successExt, "SUCCESS"
		r["Output"] = map[string]any{"Path": fmt.Sprintf("/output/%s/%s-%d", t.ID, kind, i),
			"OutputStorage": map[string]any{"Type": "COS", "CosOutputStorage": map[string]any{"Bucket": "archive-1250000000", "Region": "ap-guangzhou"}}}
		if failed && i == f.subtask {
			f.report(r)
		}
		return r
	}
	// output replaces a media result's output by its facts (ordinal: its
	// position in the result set).
	output := func(kind string, i, ordinal int, r map[string]any) {
		if _, ok := r["Output"]; !ok || mediaMembers[kind] == "" {
			return
		}
		o := mediaOutput(t.ID, kind, i, int64(100010+i*10), fmt.Sprintf("/output/%s/%s-%d", t.ID, kind, i))
		o.Ordinal = ordinal
		r["Output"] = o.json()
		facts.outputs = append(facts.outputs, o)
	}
	container := map[string]any{"TaskId": t.ID, "Status": string(status), "ErrCode": 0, "Message": ""}
	if failed && (f.sourceFailed || typ == "EditMediaTask" || typ == "LiveStreamProcessTask" || len(t.SubTaskTypes) == 0) {
		container["ErrCode"], container["Message"] = f.err.Code, f.err.Message
	}
	out := map[string]any{
		"TaskType": typ, "Status": string(status),
		"CreateTime": info.CreateTime, "BeginProcessTime": info.BeginProcessTime, "FinishTime": info.FinishTime,
		"TaskNotifyConfig": map[string]any{"NotifyType": "URL", "NotifyMode": "Finish",
			"NotifyUrl": "https://hook:" + NotifyURLPassword + "@callback.invalid/mps?token=" + NotifyURLToken, "NotifyKey": NotifyKey,
			"AwsSQS": map[string]any{"SQSRegion": "us-east-1", "SQSQueueName": "mps", "S3SecretId": S3SecretID, "S3SecretKey": S3SecretKey}},
		"TasksPriority": 0, "SessionId": "", "SessionContext": sessionContext, "ExtInfo": extInfo,
	}
	input := map[string]any{"Type": "COS", "CosInputInfo": map[string]any{"Bucket": "media-1250000000", "Region": "ap-guangzhou", "Object": "/input/" + t.ID + ".mp4"}}
	switch typ {
	case "EditMediaTask":
		container["Input"] = map[string]any{"FileInfoSet": []any{map[string]any{"InputInfo": input},
			map[string]any{"InputInfo": urlInput(t.ID, false)}, map[string]any{"InputInfo": urlInput(t.ID, true)}}}
		facts.inputs = []MediaInput{{Ordinal: 0, Type: "COS", Bucket: "media-1250000000", Region: "ap-guangzhou", Object: "/input/" + t.ID + ".mp4"},
			{Ordinal: 1, Type: "URL", URL: urlWithoutQuery(t.ID, false)}, {Ordinal: 2, Type: "URL", URL: urlWithoutQuery(t.ID, true)}}
		container["Output"] = map[string]any{"Path": "/output/" + t.ID + "/edited.mp4"}
		if finished && !failed {
			o := editOutput(t.ID)
			container["Output"] = o.json()
			facts.outputs = append(facts.outputs, o)
		}
	case "LiveStreamProcessTask":
		container["Url"] = "rtmp://live.invalid/app/" + t.ID + "?txSecret=" + LiveTxSecret + "&txTime=6B8E2F00"
	case "ScheduleTask":
		container["InputInfo"] = map[string]any{"Type": "AWS-S3", "S3InputInfo": map[string]any{"S3Bucket": "media", "S3Region": "us-east-1",
			"S3Object": "/input/" + t.ID + ".mp4", "S3SecretId": S3SecretID, "S3SecretKey": S3SecretKey}}
		facts.inputs = []MediaInput{{Ordinal: 0, Type: "AWS-S3", Bucket: "media", Region: "us-east-1", Object: "/input/" + t.ID + ".mp4"}}
		activities := []any{}
		for i, st := range t.SubTaskTypes {
			kind := mps.SubTaskKind(st)
			r := result(kind, i)
			output(kind, i, len(activities), r)
			activities = append(activities, map[string]any{"ActivityType": kind, "ActivityResItem": map[string]any{resultMember(kind): r}})
		}
		container["ActivityResultSet"] = activities
	default:
		// One input in three is a signed URL (S3, then COS), drawn from the
		// id like the failure.
		in := MediaInput{Ordinal: 0, Type: "COS", Bucket: "media-1250000000", Region: "ap-guangzhou", Object: "/input/" + t.ID + ".mp4"}
		if style := t.inputStyle(); style == 0 {
			container["InputInfo"] = input
		} else {
			container["InputInfo"] = urlInput(t.ID, style == 2)
			in = MediaInput{Ordinal: 0, Type: "URL", URL: urlWithoutQuery(t.ID, style == 2)}
		}
		if finished {
			in.DurationS, in.Width, in.Height, in.Size = inputMeta(t.ID)
			container["MetaData"] = map[string]any{"Duration": in.DurationS, "Width": in.Width, "Height": in.Height, "Size": in.Size,
				"Container": "mov,mp4,m4a,3gp,3g2,mj2", "Bitrate": in.Size * 8 / int64(max(in.DurationS, 1))}
		}
		facts.inputs = []MediaInput{in}
		media := []any{}
		for i, st := range t.SubTaskTypes {
			kind := mps.SubTaskKind(st)
			if set, ok := aiSets[kind]; ok {
				r := result(kind, i)
				if kind == "AiQualityControl" {
					container[set] = r
					continue
				}
				prev, _ := container[set].([]any)
				container[set] = append(prev, map[string]any{"Type": kind, kind + "Task": r})
				continue
			}
			r := result(kind, i)
			output(kind, i, len(media), r)
			media = append(media, map[string]any{"Type": kind, resultMember(kind): r})
		}
		container["MediaProcessResultSet"] = media
	}
	out[typ] = container
	// The API's Response names every container, the others null.
	for _, k := range []string{"WorkflowTask", "ScheduleTask", "EditMediaTask", "LiveStreamProcessTask"} {
		if k != typ {
			out[k] = nil
		}
	}
	return out, facts
}

// urlWithoutQuery is urlInput's URL without its query string.
func urlWithoutQuery(id string, cos bool) string {
	u := urlInput(id, cos)["UrlInputInfo"].(map[string]any)["Url"].(string)
	return u[:strings.IndexByte(u, '?')]
}

func resultMember(kind string) string {
	if m, ok := mediaMembers[kind]; ok {
		return m
	}
	return kind + "Task"
}
