package mps_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// TestRedactSecrets: each kind of secret a detail can carry is gone from the
// output, and what surrounds it stays readable.
func TestRedactSecrets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc string
		gone      []string // secrets that must not survive
		kept      []string // text that must (as it appears in the output)
	}{
		{"HLS AES key and IV", `{"WorkflowTask":{"MediaProcessResultSet":[{"Type":"AdaptiveDynamicStreaming","AdaptiveDynamicStreamingTask":{"Status":"SUCCESS",
			"Input":{"Definition":12,"DrmInfo":{"Type":"simpleaes","SimpleAesDrm":{"Uri":"https://keys.example.com/hls/k1","Key":"0123456789abcdef0123456789abcdef","Vector":"fedcba9876543210fedcba9876543210"}}}}}]}}`,
			[]string{"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"},
			[]string{`"Uri":"https://keys.example.com/hls/k1"`, `"Type":"simpleaes"`, `"Definition":12`}},
		{"SPEKE IV, key URI token", `{"DrmInfo":{"Type":"widevine","SpekeDrm":{"ResourceId":"movie-7","KeyServerUrl":"https://speke.example.com/v2?apiKey=sk-speke-1","Vector":"00112233445566778899aabbccddeeff","EncryptionMethod":"cenc"}}}`,
			[]string{"sk-speke-1", "00112233445566778899aabbccddeeff"},
			[]string{`"ResourceId":"movie-7"`, "https://speke.example.com/v2?apiKey=", `"EncryptionMethod":"cenc"`}},
		{"NotifyUrl token", `{"TaskNotifyConfig":{"NotifyType":"URL","NotifyUrl":"https://hooks.example.com/mps/done?token=tok-abc123&tenant=42"}}`,
			[]string{"tok-abc123"}, []string{"https://hooks.example.com/mps/done?token=", "tenant=42"}},
		{"userinfo", `{"InputInfo":{"Type":"URL","UrlInputInfo":{"Url":"https://alice:pa55w0rd@media.example.com/in/a.mp4"}},"Db":"postgres://AKID-USER-1@db.example.com/x"}`,
			[]string{"alice", "pa55w0rd", "AKID-USER-1"}, []string{"@media.example.com/in/a.mp4", "@db.example.com/x"}},
		{"presigned S3 URL", `{"UrlInputInfo":{"Url":"https://b.s3.amazonaws.com/a.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE1%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE&X-Amz-Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"}}`,
			[]string{"AKIAEXAMPLE1", "FwoGZXIvYXdzEXAMPLE", "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7", "20250101T000000Z"},
			[]string{"https://b.s3.amazonaws.com/a.mp4?X-Amz-Algorithm=", "&X-Amz-Signature="}},
		{"COS signed URL", `{"Url":"https://m-1250000000.cos.ap-guangzhou.myqcloud.com/a.mp4?q-sign-algorithm=sha1&q-ak=AKIDcosEXAMPLE&q-sign-time=1735689600;1735693200&q-key-time=1735689600;1735693200&q-header-list=host&q-url-param-list=&q-signature=a1b2c3d4e5f6a7b8c9d0&x-cos-security-token=cos-sts-token-9"}`,
			[]string{"AKIDcosEXAMPLE", "a1b2c3d4e5f6a7b8c9d0", "cos-sts-token-9", "1735689600"},
			[]string{"https://m-1250000000.cos.ap-guangzhou.myqcloud.com/a.mp4?q-sign-algorithm=", "q-url-param-list=&"}},
		{"COS STS token alone", `{"Url":"https://m.cos.ap-guangzhou.myqcloud.com/a.mp4?x-cos-security-token=sts-only-1&ci-process=snapshot"}`,
			[]string{"sts-only-1"}, []string{"ci-process=snapshot"}},
		{"Azure SAS, Tencent URL auth", `{"A":"https://x.blob.core.windows.net/c/a.mp4?sv=2022-11-02&se=2025-01-01&sig=azSIG%2Bzz%3D","B":"https://vod.example.com/a.m3u8?t=6a2b3c4d&us=u1&sign=vodSIGN77"}`,
			[]string{"azSIG", "vodSIGN77", "6a2b3c4d"}, []string{"https://x.blob.core.windows.net/c/a.mp4?sv=", "&sign="}},
		{"live txSecret", `{"LiveStreamProcessTask":{"Url":"rtmp://live.example.com/app/s1?txSecret=txs-0a1b2c&txTime=6B8E2F00"}}`,
			[]string{"txs-0a1b2c"}, []string{"rtmp://live.example.com/app/s1?txSecret=", "txTime=6B8E2F00"}},
		{"fragment", `{"Url":"https://app.example.com/cb#access_token=frag-tok-1&state=s1"}`, []string{"frag-tok-1"}, []string{"state=s1"}},
		{"URL inside text", `{"Message":"cannot read https://b.s3.amazonaws.com/a.mp4?X-Amz-Signature=txtsig99&X-Amz-Date=1: 403"}`,
			[]string{"txtsig99"}, []string{"cannot read https://b.s3.amazonaws.com/a.mp4?X-Amz-Signature=", " 403"}},
		{"percent-encoded URL in a parameter", `{"Url":"https://proxy.example.com/fetch?src=https%3A%2F%2Fu%3Apenc%40h.example.com%2Fa%3Ftoken%3Dencoded-tok"}`,
			[]string{"encoded-tok", "penc"}, []string{"https://proxy.example.com/fetch?src=https%3A%2F%2F"}},
		{"name=value in text", `{"ExtInfo":"retry=3 password=hunter2 api_key=k-77; region=ap-guangzhou"}`,
			[]string{"hunter2", "k-77"}, []string{"retry=3", "region=ap-guangzhou"}},
		{"Bearer and Basic", `{"Message":"sent Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-part and Basic dXNlcjpwYXNzd29yZA=="}`,
			[]string{"eyJhbGciOiJIUzI1NiJ9", "dXNlcjpwYXNzd29yZA"}, []string{"sent Authorization: Bearer ", " and Basic "}},
		{"JSON in SessionContext", `{"SessionContext":"{\"apiToken\":\"abc-session-1\",\"user\":\"u-9\"}","SessionId":"s-1"}`,
			[]string{"abc-session-1"}, []string{`\"user\":\"u-9\"`, `"SessionId":"s-1"`}},
		{"JSON array in ExtInfo, nested twice", `{"ExtInfo":"[{\"client_secret\":\"cs-1\"},{\"inner\":\"{\\\"private-key\\\":\\\"pk-2\\\",\\\"n\\\":1}\"}]"}`,
			[]string{"cs-1", "pk-2"}, []string{`n\\\":1`}},
		{"more field names", `{"AccessKey":"ak-1","PrivateKey":"pk-1","ClientSecret":"cs-2","Signature":"sig-1","Authorization":"Basic abc-auth","Credential":"cred-1",
			"Credentials":{"Id":"cred-id-2","Token":"t"},"ApiKey":"api-1","access_key":"ak-snake","secret_key":"sk-snake","api_token":"at-snake","private-key":"pk-kebab",
			"X-Api-Key":"xak-1","sessionToken":"st-1","DbPassword":"pw-1","Sign":"md5sign-1","Cookie":"sid=ck-1","NotifyKey":"nk-1","S3SecretId":"AKID-s3","S3SecretKey":"s3sk-1"}`,
			[]string{"ak-1", "pk-1", "cs-2", "sig-1", "abc-auth", "cred-1", "cred-id-2", "api-1", "ak-snake", "sk-snake", "at-snake", "pk-kebab", "xak-1", "st-1", "pw-1",
				"md5sign-1", "ck-1", "nk-1", "AKID-s3", "s3sk-1"}, nil},
		{"secret inside a secret-named object", `{"AwsSQS":{"SQSRegion":"r","S3SecretId":{"nested":"obj-secret"}}}`, []string{"obj-secret"}, []string{`"SQSRegion":"r"`}},
		// JSON that is not the whole string.
		{"JSON after a prefix", `{"SessionContext":"v1:{\"apiToken\":\"SECRET1abcdef\",\"user\":\"u-9\"}"}`,
			[]string{"SECRET1abcdef"}, []string{`"SessionContext":"v1:{`, `\"user\":\"u-9\"`}},
		{"JSON then text", `{"ExtInfo":"{\"apiToken\":\"SECRET3abcdef\"} trailing"}`, []string{"SECRET3abcdef"}, []string{`} trailing"`}},
		{"double-encoded JSON", `{"SessionContext":"\"{\\\"apiToken\\\":\\\"SECRET2abcdef\\\",\\\"n\\\":1}\""}`,
			[]string{"SECRET2abcdef"}, []string{`n\\\":1`}},
		{"DRM object in text", `{"ExtInfo":"drm config: {\"DrmInfo\":{\"SimpleAesDrm\":{\"Key\":\"k-embedded-1\",\"Uri\":\"https://k.example.com/k\"}}}, retrying"}`,
			[]string{"k-embedded-1"}, []string{"drm config: {", "https://k.example.com/k", "}, retrying"}},
		{"JSON-like text with single quotes", `{"ExtInfo":"{'apiToken': 'SECRETBabcdef', 'n': 1}"}`, []string{"SECRETBabcdef"}, []string{"{'apiToken': '", "'n': 1}"}},
		// Header-style credentials in text.
		{"X-Api-Key header", `{"ExtInfo":"X-Api-Key: SECRET4abcdef"}`, []string{"SECRET4abcdef"}, []string{"X-Api-Key: "}},
		{"token: in text", `{"ExtInfo":"retrying with token: SECRET5abcdef, region=ap-guangzhou"}`, []string{"SECRET5abcdef"}, []string{"retrying with token: ", ", region=ap-guangzhou"}},
		{"Authorization: token", `{"ExtInfo":"Authorization: token SECRET6abcdefghijk"}`, []string{"SECRET6abcdefghijk"}, []string{"Authorization: token "}},
		{"short Bearer token", `{"Message":"sent Bearer abc123 to the hook"}`, []string{"abc123"}, []string{"sent Bearer ", " to the hook"}},
		{"header dump", `{"ExtInfo":"GET /cb HTTP/1.1\nX-Api-Key: lowercasekey\nAccept: */*"}`, []string{"lowercasekey"}, []string{`\nX-Api-Key: `, `\nAccept: */*`}},
		// Headers and parameters as name/value lists.
		{"name/value lists", `{"Headers":[{"Name":"Authorization","Value":"SECRETDabcdef"},{"Name":"Accept","Value":"video/mp4"}],
			"H2":[{"Key":"X-Api-Key","Value":"kv-secret-1"}],"H3":[{"name":"cookie","value":"ck-secret-9"}],"H4":[{"Header":"X-Auth-Token","Value":{"v":"hv-secret-2"}}]}`,
			[]string{"SECRETDabcdef", "kv-secret-1", "ck-secret-9", "hv-secret-2"}, []string{`"Name":"Authorization"`, `"Value":"video/mp4"`, `"Key":"X-Api-Key"`, `"Header":"X-Auth-Token"`}},
		// Session ids in URLs.
		{"session ids in URLs", `{"Url":"https://h.example.com/x?sessionid=SECRETFabcdef&page=2","U2":"https://h.example.com/app;jsessionid=SECRETHabcdef/a.mp4?lang=en","U3":"/app;JSESSIONID=SECRETJ1?x=1"}`,
			[]string{"SECRETFabcdef", "SECRETHabcdef", "SECRETJ1"}, []string{"?sessionid=", "page=2", "https://h.example.com/app;jsessionid=", "/a.mp4?lang=en", "/app;JSESSIONID="}},
		// Key material by name, outside a DRM object.
		{"key material outside DRM", `{"HlsEncryption":{"AesKey":"SECRET8abcdef","EncryptionKey":"ek-1","DecryptKey":"dk-1","HmacKey":"hk-1","SignKey":"sk-1","Aes128Key":"a128-1","ContentKeys":["ck-1"],"aes_key_hex":"akh-1",
			"Tags":[{"Key":"genre","Value":"news"}],"Output":{"ObjectKey":"out/a.mp4","Key":"out/b.mp4"},"StreamKey":"live-1","KeyServerUrl":"https://k.example.com"}}`,
			[]string{"SECRET8abcdef", "ek-1", "dk-1", "hk-1", "sk-1", "a128-1", "ck-1", "akh-1"},
			[]string{`"Key":"genre"`, `"Value":"news"`, `"ObjectKey":"out/a.mp4"`, `"Key":"out/b.mp4"`, `"StreamKey":"live-1"`, `"KeyServerUrl":"https://k.example.com"`}},
		{"S3 output storage keys", `{"TranscodeTask":{"Output":{"Path":"/o.mp4","OutputStorage":{"Type":"AWS-S3","S3OutputStorage":{"S3Bucket":"out-b","S3Region":"us-east-1","S3SecretId":"AKIDoutEXAMPLE7","S3SecretKey":"outSecretKey9x"}}}}}`,
			[]string{"AKIDoutEXAMPLE7", "outSecretKey9x"}, []string{`"S3Bucket":"out-b"`, `"S3Region":"us-east-1"`, `"Path":"/o.mp4"`}},
		{"userinfo without a scheme", `{"Url":"AKIDuser9:SuperSecretPw1@h.example/a.mp4","Mail":"see alice@example.com"}`,
			[]string{"AKIDuser9", "SuperSecretPw1"}, []string{"@h.example/a.mp4", "alice@example.com"}},
		{"query percent-encoded whole", `{"Url":"https://h.example/a.mp4%3FX-Amz-Signature%3Ddeadbeefcafe%26X-Amz-Credential%3DAKIAENC1%26part%3D2"}`,
			[]string{"deadbeefcafe", "AKIAENC1"}, []string{"https://h.example/a.mp4?X-Amz-Signature=", "&part="}},
		// Userinfo holding '/', '?' or '#'.
		{"userinfo with a slash", `{"Url":"https://user:pa/SECRET7x@host.example.com/x.mp4","U2":"https://u:p?w#SECRET9q@host.example.com/y?mail=a@b.example.com"}`,
			[]string{"SECRET7x", "pa/", "SECRET9q"}, []string{"https://[REDACTED]@host.example.com/x.mp4", "https://[REDACTED]@host.example.com/y?mail=a@b.example.com"}},
	} {
		out, n := mps.Redact([]byte(tc.doc))
		s := strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">").Replace(string(out))
		for _, g := range tc.gone {
			if strings.Contains(s, g) {
				t.Errorf("%s: %q survives: %s", tc.name, g, s)
			}
		}
		for _, k := range tc.kept {
			if !strings.Contains(s, k) {
				t.Errorf("%s: %q is gone: %s", tc.name, k, s)
			}
		}
		if n == 0 || !strings.Contains(s, mps.Redacted) && !strings.Contains(s, "%5BREDACTED%5D") {
			t.Errorf("%s: %d redacted: %s", tc.name, n, s)
		}
		if !json.Valid(out) {
			t.Errorf("%s: not JSON: %s", tc.name, s)
		}
		again, n2 := mps.Redact(out)
		if !bytes.Equal(again, out) || n2 != 0 {
			t.Errorf("%s: not idempotent (%d more):\n%s\n%s", tc.name, n2, out, again)
		}
	}
}

// TestRedactKeepsHarmless: fields and strings that only look like secrets
// come back unchanged, and nothing is counted.
func TestRedactKeepsHarmless(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`{"TaskId":"1250000000-WorkflowTask-80108cc3380155d98b2e3573a48a","TaskType":"WorkflowTask","Status":"FINISH","SessionId":"sess-1","ErrCode":0,"ErrCodeExt":"SUCCESS","Message":"SUCCESS"}`,
		`{"TranscodeTask":{"Input":{"Definition":100030},"Output":{"Path":"/output/a/Transcode-0.mp4","OutputObjectPath":"/{inputName}_{definition}.{format}","SubStreamObjectName":"video_{subStreamNumber}.{format}"}}}`,
		`{"Url":"https://archive-1250000000.cos.ap-guangzhou.myqcloud.com/output/a.m3u8","Live":"rtmp://live.example.com/app/stream-1","Cover":"https://c.example.com/a.jpg?imageMogr2/thumbnail/!50p"}`,
		`{"Url":"https://c.example.com/a.mp4?response-content-type=video%2Fmp4&response-content-disposition=attachment%3B%20filename%3D%22a.mp4%22"}`,
		`{"ScrollToken":"1250000000-WorkflowTask-abc","Tokens":42,"TokenCount":7,"Keywords":["key","token","secret"]}`,
		`{"Tags":[{"Key":"genre","Value":"news"}],"Vector":[0.1,0.2],"KeyServerUrl":"https://speke.example.com/v2","Uri":"https://keys.example.com/k"}`,
		`{"SessionContext":"{ \"order\": 17, \"note\": \"keep <this> & that\" }","ExtInfo":"plain text, no secrets: contact user@example.com"}`,
		`{"Text":"the token was accepted; basic information about bearer bonds; key = value pairs; a=b","B64":"YWJjZA==","Big":12345678901234567890}`,
		`{"SessionContext":"","NotifyKey":"","Password":null,"TaskNotifyConfig":{"NotifyUrl":"https://x.example.com/cb?tenant=42"}}`,
		`{"AsrFullTextTask":{"Output":{"SegmentSet":[{"Text":"请访问官网获取更多信息。The key to success is preparation."}]}}}`,
		`{"Url":"https://host.example.com/path/@user","U2":"https://host.example.com:8080/media/@channel/a.mp4","U3":"https://[::1]:8080/a/@b","U4":"//cdn.example.com/u/@x"}`,
		`{"Message":"upload failed, token: expired; signature: invalid, password: wrong","ExtInfo":"SessionId: s-1, Keywords: a, b"}`,
		`{"Tags":[{"Key":"genre","Value":"news"}],"Metadata":[{"Key":"encoder","Value":"Lavf58.76.100"}],"Rule":{"Key":"Blur"},"StreamKey":"stream-1","PbKeyLen":16,"KeyPTSList":[1,2],"Keywords":["aes key"]}`,
		`{"OutputObjectPath":"/{inputName}_{definition}.{format}","Text":"the config {\"order\": 17, \"Value\": \"x\"} was applied; {\"broken\": }"}`,
		`{"Text":"the bearer of bad news; Bearer tokens are issued hourly","SessionContext":"\"quoted plain context\"","Q":"\"{\\\"order\\\":1}\""}`,
	} {
		out, n := mps.Redact([]byte(doc))
		if n != 0 || !sameJSON(t, doc, out) {
			t.Errorf("harmless document changed (%d):\n in  %s\n out %s", n, doc, out)
		}
	}
}

// TestRedactAllAtOnce: a realistic detail carrying every kind of secret at
// once keeps none of them anywhere in its bytes.
func TestRedactAllAtOnce(t *testing.T) {
	t.Parallel()
	secrets := []string{"NK-0001", "SQS-ID-0002", "SQS-KEY-0003", "HOOKPW-0004", "HOOKTOK-0005", "AESKEY-0006", "AESIV-0007", "KEYURI-0008",
		"AMZCRED-0009", "AMZSTS-0010", "AMZSIG-0011", "QAK-0012", "QSIG-0013", "COSSTS-0014", "SESSTOK-0015", "EXTTOK-0016", "AK-0017",
		"PK-0018", "CS-0019", "SIG-0020", "BEARER-0021-abcdefgh", "CRED-0022", "SNAKE-0023", "S3ID-0024", "S3KEY-0025", "TX-0026"}
	doc := `{"TaskType":"WorkflowTask","Status":"FINISH","CreateTime":"2025-01-01T00:00:00Z","FinishTime":"2025-01-01T00:05:00Z",
	"WorkflowTask":{"TaskId":"1250000000-WorkflowTask-x","Status":"FINISH","ErrCode":0,"Message":"",
		"InputInfo":{"Type":"URL","UrlInputInfo":{"Url":"https://media.s3.us-east-1.amazonaws.com/in/x.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AMZCRED-0009%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Security-Token=AMZSTS-0010&X-Amz-Signature=AMZSIG-0011"}},
		"MediaProcessResultSet":[
			{"Type":"Transcode","TranscodeTask":{"Status":"SUCCESS","ErrCodeExt":"","Input":{"Definition":100030,
				"HeadTailParameter":{"HeadSet":[{"Type":"URL","UrlInputInfo":{"Url":"https://media-1250000000.cos.ap-guangzhou.myqcloud.com/head.mp4?q-sign-algorithm=sha1&q-ak=QAK-0012&q-sign-time=1;2&q-key-time=1;2&q-header-list=host&q-url-param-list=&q-signature=QSIG-0013&x-cos-security-token=COSSTS-0014"}}]}},
				"Output":{"Path":"/out/x.mp4","OutputStorage":{"Type":"AWS-S3","S3OutputStorage":{"S3Bucket":"b","S3Region":"us-east-1","S3SecretId":"S3ID-0024","S3SecretKey":"S3KEY-0025"}}}}},
			{"Type":"AdaptiveDynamicStreaming","AdaptiveDynamicStreamingTask":{"Status":"SUCCESS","Input":{"Definition":12,
				"DrmInfo":{"Type":"simpleaes","SimpleAesDrm":{"Uri":"https://keys.example.com/k?token=KEYURI-0008","Key":"AESKEY-0006","Vector":"AESIV-0007"}}},
				"Output":{"Path":"/out/x.m3u8"}}}]},
	"LiveStreamProcessTask":{"Url":"rtmp://live.example.com/app/x?txSecret=TX-0026&txTime=6B8E2F00"},
	"TaskNotifyConfig":{"NotifyType":"URL","NotifyUrl":"https://hook:HOOKPW-0004@cb.example.com/mps?token=HOOKTOK-0005","NotifyKey":"NK-0001",
		"AwsSQS":{"SQSRegion":"us-east-1","SQSQueueName":"q","S3SecretId":"SQS-ID-0002","S3SecretKey":"SQS-KEY-0003"}},
	"SessionId":"s","SessionContext":"{\"apiToken\":\"SESSTOK-0015\",\"AccessKey\":\"AK-0017\",\"ClientSecret\":\"CS-0019\",\"Authorization\":\"Bearer BEARER-0021-abcdefgh\"}",
	"ExtInfo":"{\"apiToken\":\"EXTTOK-0016\",\"upstream\":{\"PrivateKey\":\"PK-0018\",\"Signature\":\"SIG-0020\",\"Credential\":\"CRED-0022\",\"access_key\":\"SNAKE-0023\"}}"}`
	if !json.Valid([]byte(doc)) {
		t.Fatal("the test's detail is not JSON")
	}
	for _, s := range secrets {
		if !strings.Contains(doc, s) {
			t.Fatalf("the test's detail lacks %s", s)
		}
	}
	out, n := mps.Redact([]byte(doc))
	for _, s := range secrets {
		if strings.Contains(string(out), s) {
			t.Errorf("%s survives", s)
		}
	}
	if n < len(secrets) {
		t.Errorf("%d redactions for %d secrets", n, len(secrets))
	}
	for _, k := range []string{"/out/x.m3u8", "100030", "1250000000-WorkflowTask-x", "https://keys.example.com/k?token=", "cb.example.com/mps"} {
		if !strings.Contains(string(out), k) {
			t.Errorf("%q is gone: %s", k, out)
		}
	}
}

// TestRedactSimulatedDetails: the simulator's details carry every secret it
// plants (so the end-to-end scans meet them) and none survives redaction.
func TestRedactSimulatedDetails(t *testing.T) {
	t.Parallel()
	now := time.Now()
	cfg := simulator.DefaultGenConfig()
	cfg.Tasks = 300
	seen := map[string]bool{}
	for _, task := range simulator.Generate(cfg, now) {
		d := task.Detail(now.UnixNano(), simulator.DefaultDetailErrors)
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range simulator.Secrets() {
			if bytes.Contains(raw, []byte(s)) {
				seen[s] = true
			}
		}
		out, _ := mps.Redact(raw)
		for _, s := range simulator.Secrets() {
			if bytes.Contains(out, []byte(s)) {
				t.Fatalf("%s survives in %s", s, out)
			}
		}
		if again, n := mps.Redact(out); n != 0 || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent on %s", task.ID)
		}
		// The tree-level entry point, as a caller holding a decoded tree
		// uses it, agrees with the byte-level one.
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		v, _ = mps.RedactValue(v)
		b, _ := json.Marshal(v)
		if !bytes.Equal(b, out) {
			t.Fatalf("RedactValue and Redact disagree:\n%s\n%s", b, out)
		}
	}
	for _, s := range simulator.Secrets() {
		if !seen[s] {
			t.Errorf("no simulated detail carries %s", s)
		}
	}
}

// TestRedactBounded: JSON nested in strings many levels deep is looked into
// to a bounded depth, then replaced whole; the output never grows much.
func TestRedactBounded(t *testing.T) {
	t.Parallel()
	s := `{"apiToken":"deep-secret"}`
	for range 12 {
		b, _ := json.Marshal(map[string]string{"ctx": s})
		s = string(b)
	}
	doc, _ := json.Marshal(map[string]string{"SessionContext": s})
	out, n := mps.Redact(doc)
	if bytes.Contains(out, []byte("deep-secret")) || n != 1 || len(out) > len(doc)+len(mps.Redacted) {
		t.Errorf("%d redacted, %d bytes → %d: %s", n, len(doc), len(out), out)
	}
	if again, n := mps.Redact(out); n != 0 || !bytes.Equal(again, out) {
		t.Errorf("not idempotent: %s", again)
	}
	// A deep tree of objects (not strings) is walked whole.
	deep := strings.Repeat(`{"x":`, 3000) + `{"Token":"t-deep"}` + strings.Repeat(`}`, 3000)
	if out, n := mps.Redact([]byte(deep)); n != 1 || bytes.Contains(out, []byte("t-deep")) {
		t.Errorf("deep tree: %d redacted", n)
	}
	// Many places that start like embedded JSON and never end: tried a
	// bounded number of times, so the work stays linear.
	hostile, _ := json.Marshal(map[string]string{"ExtInfo": strings.Repeat(`{"a":`, 200_000) + `{"token":"t-hostile"}`})
	start := time.Now()
	if out, _ := mps.Redact(hostile); bytes.Contains(out, []byte("t-hostile")) {
		t.Errorf("unterminated JSON: t-hostile survives")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("unterminated JSON: %v", d)
	}
	if out, n := mps.Redact([]byte(`{"NotifyKey":"x"`)); n != 0 || strings.Contains(string(out), "NotifyKey") {
		t.Errorf("unparseable input came back: %s", out)
	}
}

// FuzzRedact: redacting twice is redacting once, and the output is JSON.
func FuzzRedact(f *testing.F) {
	for _, seed := range []string{
		`{"NotifyUrl":"https://u:p@h/x?token=a&b=1#access_token=c"}`,
		`{"SessionContext":"{\"apiToken\":\"x\",\"u\":\"https://h/?sig=1\"}"}`,
		`{"m":"Bearer abcdefghijklmnop1%2Dsign=x Basic dXNlcjpwYXNz"}`,
		`{"a":"b=1\u0026sign=y","c":["[\"token=a\\x\"]"]}`,
		`{"DrmInfo":{"SimpleAesDrm":{"Key":"k","Vector":"v"}},"x":"\u0000"}`,
		`{"Url":"https://p/?src=https%3A%2F%2Fh%2F%3Fq-signature%3Dz%26a%3D%257B%2522token%2522%253A1%257D"}`,
		`"plain"`, `[1, 2.50, 1e400]`, `{"k":"\\u0000"}`,
		`{"s":"v1:{\"apiToken\":\"x1\"} tail","d":"\"{\\\"token\\\":\\\"y\\\"}\""}`,
		`{"s":"X-Api-Key: k\nAuthorization: token abc1 Bearer ab12","h":[{"Name":"Cookie","Value":"c"}]}`,
		`{"u":"https://u:p/w@h/x;jsessionid=s1?sessionid=s2","AesKey":"k","a":"https://h:1/@u"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		once, _ := mps.Redact(doc)
		if !json.Valid(once) {
			t.Fatalf("not JSON: %q", once)
		}
		twice, n := mps.Redact(once)
		if n != 0 || !bytes.Equal(once, twice) {
			t.Fatalf("not idempotent (%d more):\n%q\n%q\n%q", n, doc, once, twice)
		}
	})
}

func sameJSON(t *testing.T, a string, b []byte) bool {
	t.Helper()
	decode := func(s []byte) any {
		dec := json.NewDecoder(bytes.NewReader(s))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decode %s: %v", s, err)
		}
		return v
	}
	return reflect.DeepEqual(decode([]byte(a)), decode(b))
}

// BenchmarkRedactValue: a 2 MB recognition detail of 20,000 segments,
// walked as a caller holding the decoded tree does.
func BenchmarkRedactValue(b *testing.B) {
	var segs []any
	for i := range 20_000 {
		segs = append(segs, map[string]any{"StartTimeOffset": json.Number("1.5"), "EndTimeOffset": json.Number("2.5"),
			"Confidence": json.Number("99"), "Text": fmt.Sprintf("segment %d says nothing secret, user@example.com a=b", i)})
	}
	doc, _ := json.Marshal(map[string]any{"TaskType": "WorkflowTask", "WorkflowTask": map[string]any{"AiRecognitionResultSet": []any{
		map[string]any{"Type": "AsrFullTextRecognition", "AsrFullTextTask": map[string]any{"Status": "SUCCESS", "Output": map[string]any{"SegmentSet": segs}}}}},
		"TaskNotifyConfig": map[string]any{"NotifyKey": "k", "NotifyUrl": "https://h/?token=t"}})
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, n := mps.RedactValue(v); n != 2 {
			b.Fatalf("%d redacted", n)
		}
	}
}
