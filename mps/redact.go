package mps

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Redacted replaces every secret the archive does not keep.
const Redacted = "[REDACTED]"

// unparseable is what Redact returns for a document that is not JSON: a
// JSON string saying so, never the input.
var unparseable = []byte(`"unparseable detail (not stored)"`)

// maxNesting bounds how deep redaction looks into strings that hold more
// structure: JSON inside a string, a percent-encoded URL inside a query
// parameter. A string nested deeper than that is replaced whole, so the
// work (and the output) stays bounded whatever the input.
const maxNesting = 4

// How a nameRule's pattern meets a normalised name.
type match int

const (
	exact match = iota
	suffix
	contains
	// keyOf: the name is pattern + "key", as in AesKey or HmacKey: digits
	// may stand between (Aes128Key) and a plural or an encoding may follow
	// (ContentKeys, AesKeyHex, SignKeyBase64).
	keyOf
)

// nameRule is one entry of a deny-list: a pattern over a normalised name
// (lowercase; '_', '-', '.' and spaces dropped, so S3SecretKey,
// s3_secret_key and s3-secret-key are one name) and why it is there.
type nameRule struct {
	match   match
	pattern string
	why     string
}

// secretFields are the field names whose values are secrets, at any depth,
// in the detail and in JSON nested in its strings. They also apply to
// query parameters and name=value pairs in strings (see secretParams).
// docs/reporting.md ("What is redacted, and why") repeats this list.
var secretFields = []nameRule{
	{exact, "notifykey", "TaskNotifyConfig.NotifyKey signs MPS's event callbacks (documented): whoever has it can forge them"},
	{contains, "secret", "key pairs and client secrets: SecretId/SecretKey, S3SecretId/S3SecretKey (documented in the detail), ClientSecret, client_secret, a live push URL's txSecret"},
	{suffix, "token", "session, STS, API and bearer tokens: SessionToken, x-cos-security-token, apiToken, access_token (ScrollToken, a paging cursor, is exempt)"},
	{contains, "password", "passwords, in any spelling"},
	{contains, "passwd", "passwords, in any spelling"},
	{contains, "passphrase", "passphrases (SRT and key files)"},
	{contains, "accesskey", "cloud access keys: AccessKey, AccessKeyId, access_key, aws_access_key_id"},
	{contains, "privatekey", "private keys: PrivateKey, private_key, private-key"},
	{contains, "apikey", "API keys: ApiKey, api_key, x-api-key"},
	{suffix, "signature", "request and URL signatures: Signature, X-Amz-Signature, q-signature; a live signature is a credential until it expires"},
	{exact, "sign", "the callback's Sign (MD5 of Timestamp and NotifyKey) and URL-auth sign parameters"},
	{suffix, "authorization", "HTTP Authorization header values (Basic or Bearer credentials)"},
	{exact, "auth", "credentials under the short name"},
	{suffix, "credential", "credential objects and strings: Credential, X-Amz-Credential (it names the access key)"},
	{suffix, "credentials", "credential objects: Credentials, AwsCredentials"},
	{suffix, "cookie", "session cookies: Cookie, Set-Cookie"},
	{contains, "contentkey", "content encryption keys outside a DrmInfo (not documented in the detail; defensive)"},
	{contains, "encryptionkey", "content encryption keys outside a DrmInfo (not documented in the detail; defensive)"},
	{keyOf, "aes", keyMaterial},
	{keyOf, "encrypt", keyMaterial},
	{keyOf, "encryption", keyMaterial},
	{keyOf, "decrypt", keyMaterial},
	{keyOf, "decryption", keyMaterial},
	{keyOf, "content", keyMaterial},
	{keyOf, "cipher", keyMaterial},
	{keyOf, "crypto", keyMaterial},
	{keyOf, "drm", keyMaterial},
	{keyOf, "hmac", keyMaterial},
	{keyOf, "sign", keyMaterial},
	{keyOf, "signing", keyMaterial},
	{keyOf, "master", keyMaterial},
	{keyOf, "session", keyMaterial},
	{keyOf, "shared", keyMaterial},
	{keyOf, "wrapping", keyMaterial},
	{keyOf, "tls", keyMaterial},
	{keyOf, "ssl", keyMaterial},
}

// keyMaterial is why the keyOf rules are there. A bare Key, and the
// *Key names of the real MPS schema that hold no secret (a tag's or a
// metadata entry's Key, SourceTag.Key, RuleConditionItem.Key, StreamKey —
// a stream's name —, PbKeyLen, KeyServerUrl, Keywords), stay readable:
// only names that say what kind of key material they hold go.
const keyMaterial = "key material under a name that says so, outside a DRM object: AesKey, EncryptionKey, ContentKey, DecryptKey, HmacKey, SignKey, SessionKey and the like (not in the MPS schema; defensive)"

// drmFields are secrets only inside a DRM object (a member whose
// normalised name starts or ends with "drm": DrmInfo, SimpleAesDrm,
// SpekeDrm), where a bare Key is a content key, not an object key or a tag.
var drmFields = []nameRule{
	{suffix, "key", "SimpleAesDrm.Key is the HLS AES-128 content key (documented): with it anyone decrypts the stream; ContentKey, SigningKey and the like are the same kind of secret"},
	{exact, "keys", "a list of content keys"},
	{suffix, "vector", "SimpleAesDrm.Vector and SpekeDrm.Vector are the IV that goes with the key (documented); no use to the archive, half of what decrypts"},
	{suffix, "iv", "the same IV under its short name (SigningIv and the like)"},
}

// notSecret are names the rules above would catch that hold no secret.
var notSecret = map[string]string{
	"scrolltoken": "MPS's paging cursor (DescribeTasks): the id of the next record, not a credential",
}

// secretParams are query-parameter (and name=value) names that are secrets
// in a URL on top of secretFields.
var secretParams = []nameRule{
	{exact, "key", "API keys by their conventional URL name (?key=)"},
	{exact, "sig", "Azure SAS and similar URL signatures"},
	{exact, "pwd", "passwords by a short URL name"},
	{exact, "pass", "passwords by a short URL name"},
	{exact, "qak", "COS q-ak: the SecretId that signed the URL"},
	{exact, "qsignalgorithm", "COS q-sign-algorithm: marks a COS-signed URL"},
	{exact, "qsigntime", "COS q-sign-time: part of a COS signature"},
	{exact, "qkeytime", "COS q-key-time: part of a COS signature"},
	{exact, "qheaderlist", "COS q-header-list: part of a COS signature"},
	{exact, "qurlparamlist", "COS q-url-param-list: part of a COS signature"},
	{suffix, "sessionid", "session ids in URLs and path parameters (sessionid=, ;jsessionid=, ASP.NET_SessionId): whoever has one is logged in (MPS's own SessionId field is a de-duplication id and stays)"},
	{suffix, "sessid", "PHP session ids (PHPSESSID)"},
	{exact, "session", "session ids by their short name (session=)"},
}

// pairNames and pairValues make a name/value pair of an object: a header
// or parameter list such as [{"Name":"Authorization","Value":"…"}] (also
// Key/Value, name/value, Header/Value). Its value is a secret when its name
// is one (secretFields or secretParams): the name stays, the value goes.
var (
	pairNames  = []string{"name", "key", "header", "headername", "param", "paramname", "parameter"}
	pairValues = []string{"value", "values"}
)

// authSchemeWords come before the credential in an Authorization value
// ("Authorization: token …", "Bearer …"): the credential is the next word.
var authSchemeWords = []string{"bearer", "basic", "token", "digest", "negotiate", "ntlm", "apikey", "key", "oauth"}

// maxEmbedded bounds how many places in one string are tried as the start
// of embedded JSON ("v1:{…}"), so that a string of many '{"' stays linear.
const maxEmbedded = 32

// maxPasses bounds how many times one string is redacted again after a
// change (an edit can make text that was almost JSON parse, or a name read
// differently); a string still changing after that is replaced whole.
const maxPasses = 4

// signatureParams mark a signed (presigned) URL. All the values of a query
// that holds one are replaced, names kept: a presigned URL is a bearer
// credential until it expires, its other parameters (X-Amz-Credential,
// X-Amz-Security-Token, q-ak, a vendor's key id we do not know by name)
// travel with the signature, and once expired they are worth nothing to an
// archive. The names stay so a reader can still see what kind of URL it
// was (and why an input could not be read).
var signatureParams = []nameRule{
	{suffix, "signature", "X-Amz-Signature, X-Goog-Signature, q-signature, Signature (OSS)"},
	{exact, "sig", "Azure SAS"},
	{exact, "sign", "Tencent Cloud URL authentication (VOD/CDN key protection)"},
	{exact, "qsignalgorithm", "COS signed URLs"},
	{exact, "qak", "COS signed URLs"},
}

func (r nameRule) matches(n string) bool {
	switch r.match {
	case exact:
		return n == r.pattern
	case suffix:
		return strings.HasSuffix(n, r.pattern)
	case keyOf:
		i := strings.LastIndex(n, "key")
		if i < 0 {
			return false
		}
		switch n[i+3:] {
		case "", "s", "hex", "base64", "b64", "value", "data", "bytes":
			return strings.HasSuffix(strings.TrimRight(n[:i], "0123456789"), r.pattern)
		}
		return false
	}
	return strings.Contains(n, r.pattern)
}

func anyRule(rules []nameRule, n string) bool {
	for _, r := range rules {
		if r.matches(n) {
			return true
		}
	}
	return false
}

// normName lowercases a name and drops '_', '-', '.' and spaces.
func normName(name string) string {
	clean := true
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' || c == '_' || c == '-' || c == '.' || c == ' ' {
			clean = false
			break
		}
	}
	if clean {
		return name
	}
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '_' || c == '-' || c == '.' || c == ' ':
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// fieldName is what the deny-lists say of one member name.
type fieldName struct {
	secret    bool // its value is a secret anywhere (secretFields)
	drmSecret bool // its value is a secret inside a DRM object (drmFields)
	drm       bool // it names a DRM object: DrmInfo, SimpleAesDrm, SpekeDrm
	pairName  bool // it names the other member of a name/value pair (pairNames)
	pairValue bool // it holds the value of a name/value pair (pairValues)
}

// secretField classifies a member name.
func secretField(name string) fieldName {
	n := normName(name)
	if _, exempt := notSecret[n]; exempt {
		return fieldName{}
	}
	return fieldName{
		secret:    anyRule(secretFields, n),
		drmSecret: anyRule(drmFields, n),
		drm:       strings.HasPrefix(n, "drm") || strings.HasSuffix(n, "drm"),
		pairName:  slices.Contains(pairNames, n),
		pairValue: slices.Contains(pairValues, n),
	}
}

func secretParam(n string) bool {
	_, exempt := notSecret[n]
	return !exempt && (anyRule(secretFields, n) || anyRule(secretParams, n))
}

// Redact redacts a JSON document (see RedactValue). It returns the document
// and how many secrets it replaced; a document that is not JSON comes back
// as a JSON string saying so, never as the input.
func Redact(doc []byte) ([]byte, int) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return unparseable, 0
	}
	v, n := RedactValue(v)
	out, err := json.Marshal(v)
	if err != nil {
		return unparseable, 0
	}
	if bytes.Contains(out, []byte(`\u0000`)) {
		// cleanRawJSON spells a NUL's replacement as an escape, which reads
		// back as a character json.Marshal writes raw: settle on the raw
		// form now so that redacting the output again changes nothing.
		dec := json.NewDecoder(bytes.NewReader(cleanRawJSON(out)))
		dec.UseNumber()
		var w any
		if dec.Decode(&w) != nil {
			return unparseable, 0
		}
		if out, err = json.Marshal(w); err != nil {
			return unparseable, 0
		}
	}
	return cleanRawJSON(out), n
}

// RedactValue redacts a decoded JSON tree (maps, slices, strings,
// json.Number) in one walk, in place where it can, and returns the tree and
// how many secrets it replaced. It redacts by field name (secretFields,
// drmFields inside DRM objects, and the value of a name/value pair whose
// name is a secret: pairNames) and by value: in every string, userinfo in
// URLs, secret query, path and name=value parameters (secretParams), every
// value of a signed URL's query (signatureParams), Bearer and Basic
// credentials, "name: value" credentials (colons), and JSON in the string
// (the whole string, a JSON string holding JSON, or an object embedded in
// text), which is redacted the same way and re-encoded when it changed. A
// replaced value becomes Redacted; a string that holds nothing to redact is
// returned as it was. Redacting a redacted tree changes nothing.
func RedactValue(v any) (any, int) {
	var r redactor
	v = r.value(v, 0, false)
	return v, r.n
}

type redactor struct {
	n     int
	names map[string]fieldName // a detail repeats a few dozen names many times
}

func (r *redactor) field(name string) fieldName {
	if f, ok := r.names[name]; ok {
		return f
	}
	f := secretField(name)
	if r.names == nil {
		r.names = make(map[string]fieldName)
	}
	if len(r.names) < 1024 { // a hostile detail can have any number of names
		r.names[name] = f
	}
	return f
}

// value redacts v and returns it: maps and slices in place, a string by
// returning its replacement.
func (r *redactor) value(v any, depth int, drm bool) any {
	if s, ok := v.(string); ok {
		return r.text(s, depth, drm)
	}
	r.walk(v, depth, drm)
	return v
}

// walk redacts inside maps and slices, in place. A string member is stored
// back only when it changed: boxing every string again would cost an
// allocation per value of a large detail.
func (r *redactor) walk(v any, depth int, drm bool) {
	switch t := v.(type) {
	case map[string]any:
		pair := 0 // 1: a name/value pair whose name is a secret; -1: not; 0: not looked yet
		for k, val := range t {
			f := r.field(k)
			if f.pairValue && pair == 0 {
				pair = r.secretPair(t, drm)
			}
			if f.secret || drm && f.drmSecret || f.pairValue && pair > 0 {
				if hidden(val) {
					t[k] = Redacted
					r.n++
				}
				continue
			}
			if s, ok := val.(string); ok {
				if out := r.text(s, depth, drm || f.drm); out != s {
					t[k] = out
				}
				continue
			}
			r.walk(val, depth, drm || f.drm)
		}
	case []any:
		for i, val := range t {
			if s, ok := val.(string); ok {
				if out := r.text(s, depth, drm); out != s {
					t[i] = out
				}
				continue
			}
			r.walk(val, depth, drm)
		}
	}
}

// secretPair reports (1 or -1) whether object m is a name/value pair whose
// name is a secret: {"Name":"Authorization","Value":…}. Only a name that
// looks like a header or parameter name counts (letters, digits, '_', '-',
// '.'), and not one that is itself a secret here (a DRM object's Key):
// redaction never changes such a string, so the answer is the same whatever
// the order the members are walked in, and when the output is redacted
// again.
func (r *redactor) secretPair(m map[string]any, drm bool) int {
	for k, v := range m {
		if f := r.field(k); !f.pairName || f.secret || drm && f.drmSecret {
			continue
		}
		s, ok := v.(string)
		if !ok || s == "" || len(s) > 64 {
			continue
		}
		plain := true
		for i := 0; i < len(s) && plain; i++ {
			plain = nameChar(s[i]) && s[i] != '%'
		}
		if plain && secretParam(normName(s)) {
			return 1
		}
	}
	return -1
}

// hidden reports whether a secret field's value has anything to hide:
// null, "" and Redacted have not (and stay, so that redaction is
// idempotent and an empty NotifyKey still reads as empty).
func hidden(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case string:
		return t != "" && t != Redacted
	}
	return true
}

// text redacts one string value. It redacts again while that changes
// something (a replaced value can make a string that was almost JSON parse,
// or a name read differently), so that a second redaction finds nothing
// more; a string still changing after maxPasses is replaced whole.
func (r *redactor) text(s string, depth int, drm bool) string {
	out := s
	for range maxPasses {
		next := r.pass(out, depth, drm)
		if next == out {
			return out
		}
		out = next
	}
	r.n++
	return Redacted
}

// pass applies every by-value rule to s once.
func (r *redactor) pass(s string, depth int, drm bool) string {
	if out, ok := r.nested(s, depth, drm); ok {
		return out
	}
	out := s
	if strings.IndexByte(out, '{') >= 0 {
		out = r.embedded(out, depth, drm)
	}
	if strings.ContainsAny(out, "=@") || encodedEquals(out) {
		out = r.tokens(out, depth)
	}
	if indexFold(out, "bearer") >= 0 || indexFold(out, "basic") >= 0 {
		out = r.authSchemes(out)
	}
	if strings.IndexByte(out, ':') >= 0 {
		out = r.colons(out)
	}
	return out
}

// nested redacts a string that is one JSON object or array, and reports
// whether it was one. The string comes back as it was when nothing inside
// needed redacting, re-encoded when something did, and Redacted when it
// lies deeper than maxNesting.
//
// A string that is one JSON string whose content is JSON (double-encoded:
// "\"{\\\"apiToken\\\":…}\"") is one level deeper: its content is
// redacted as text and encoded again when it changed.
func (r *redactor) nested(s string, depth int, drm bool) (string, bool) {
	if inner, ok := quotedJSON(s); ok {
		if depth >= maxNesting {
			r.n++
			return Redacted, true
		}
		out := r.text(inner, depth+1, drm)
		if out == inner {
			return s, true
		}
		return encodeJSON(out), true
	}
	v, ok := decodeNested(s)
	if !ok {
		return s, false
	}
	if depth >= maxNesting {
		r.n++
		return Redacted, true
	}
	before := r.n
	v = r.value(v, depth+1, drm)
	if r.n == before {
		return s, true
	}
	return encodeJSON(v), true
}

// encodeJSON encodes a redacted value compactly, without HTML escapes.
func encodeJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return Redacted
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// quotedJSON decodes a string that is one JSON string holding JSON (an
// object, an array or another such string).
func quotedJSON(s string) (string, bool) {
	t := strings.TrimSpace(s)
	if len(t) < 4 || t[0] != '"' || t[len(t)-1] != '"' {
		return "", false
	}
	var inner string
	if json.Unmarshal([]byte(t), &inner) != nil {
		return "", false
	}
	if u := strings.TrimSpace(inner); u == "" || u[0] != '{' && u[0] != '[' && u[0] != '"' {
		return "", false
	}
	return inner, true
}

// embedded redacts JSON objects inside a longer string ("v1:{…}",
// "{…} trailing", "config: {…}, retrying"): each '{' followed by a '"' is
// tried as the start of one (at most maxEmbedded of them, so the work stays
// linear), and an object found is redacted like a string that is JSON,
// re-encoded only when something in it was replaced.
func (r *redactor) embedded(s string, depth int, drm bool) string {
	var b strings.Builder
	last, tries := 0, 0
	for i := 0; i < len(s) && tries < maxEmbedded; {
		j := strings.IndexByte(s[i:], '{')
		if j < 0 {
			break
		}
		j += i
		i = j + 1
		k := i
		for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
			k++
		}
		if k == len(s) || s[k] != '"' {
			continue
		}
		tries++
		dec := json.NewDecoder(strings.NewReader(s[j:]))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			continue
		}
		end := j + int(dec.InputOffset())
		i = end
		out := s[j:end]
		if depth >= maxNesting {
			r.n++
			out = Redacted
		} else {
			before := r.n
			if v = r.value(v, depth+1, drm); r.n != before {
				out = encodeJSON(v)
			}
		}
		if out != s[j:end] {
			if b.Len() == 0 {
				b.Grow(len(s))
			}
			b.WriteString(s[last:j])
			b.WriteString(out)
			last = end
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// decodeNested decodes a string that is one JSON object or array.
func decodeNested(s string) (any, bool) {
	t := strings.TrimSpace(s)
	if len(t) < 2 || !(t[0] == '{' && t[len(t)-1] == '}' || t[0] == '[' && t[len(t)-1] == ']') {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(t))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

// tokenSep ends a URL or a name=value pair in free text.
func tokenSep(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\f', '\v', '"', '\'', '<', '>', '`':
		return true
	}
	return false
}

// tokens redacts each whitespace-separated token of s that may hold a URL
// or a name=value pair.
func (r *redactor) tokens(s string, depth int) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if tokenSep(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && !tokenSep(s[j]) {
			j++
		}
		if tok := s[i:j]; strings.ContainsAny(tok, "=@") || encodedEquals(tok) {
			if nt := r.token(tok, depth); nt != tok {
				if b.Len() == 0 {
					b.Grow(len(s))
				}
				b.WriteString(s[last:i])
				b.WriteString(nt)
				last = j
			}
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// token redacts one token: the userinfo of every URL in it, then its query
// (after '?', or the whole token when it is not a URL) and its fragment.
func (r *redactor) token(tok string, depth int) string {
	tok = r.userinfo(tok)
	if strings.IndexByte(tok, '=') < 0 {
		// A query percent-encoded whole (a.mp4%3FX-Amz-Signature%3D…) is
		// read decoded; if that redacts anything, the decoded form stays.
		if encodedEquals(tok) && depth < maxNesting {
			if dec, err := url.PathUnescape(tok); err == nil && dec != tok {
				if red := r.token(dec, depth+1); red != dec {
					return red
				}
			}
		}
		return tok
	}
	end, frag := len(tok), ""
	if h := strings.IndexByte(tok, '#'); h >= 0 {
		end, frag = h, tok[h+1:]
	}
	head := tok[:end]
	if !urlStart(head) {
		// Free text, a relative URL or a bare query: each name=value pair
		// is found by its name (the trailing name characters before '=').
		head = r.params(head, depth)
	} else if q := strings.IndexByte(head, '?'); q >= 0 {
		head = r.pathParams(head[:q]) + "?" + r.params(head[q+1:], depth)
	} else {
		head = r.pathParams(head)
	}
	if end == len(tok) {
		return head
	}
	// A fragment can carry parameters too (#access_token=…, #/route?token=…).
	return head + "#" + r.token(frag, depth)
}

// pathParams redacts the secret path parameters of a URL's path
// (/app;jsessionid=…): each ';'-separated name=value up to the next ';' or
// '/', by the same names as query parameters.
func (r *redactor) pathParams(path string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(path); i++ {
		if path[i] != ';' {
			continue
		}
		end := i + 1
		for end < len(path) && path[end] != ';' && path[end] != '/' {
			end++
		}
		name, val, ok := strings.Cut(path[i+1:end], "=")
		if ok && val != "" && val != Redacted && secretParam(paramName(name)) {
			b.WriteString(path[last : end-len(val)])
			b.WriteString(Redacted)
			last = end
			r.n++
		}
		i = end - 1
	}
	if last == 0 {
		return path
	}
	b.WriteString(path[last:])
	return b.String()
}

// encodedEquals reports whether tok holds a percent-encoded '='.
func encodedEquals(tok string) bool {
	return strings.Contains(tok, "%3D") || strings.Contains(tok, "%3d")
}

// urlStart reports whether tok starts with scheme:// or //.
func urlStart(tok string) bool {
	if strings.HasPrefix(tok, "//") {
		return true
	}
	for i := 0; i < len(tok); i++ {
		switch c := tok[i]; {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-'):
		case i > 0 && c == ':':
			return strings.HasPrefix(tok[i:], "://")
		default:
			return false
		}
	}
	return false
}

// userinfo replaces the userinfo of every URL in tok (scheme://user:pass@
// or //user:pass@): a user name alone can be an access key. A password
// holding '/', '?' or '#' (https://user:pa/ss@host) ends the authority early
// by RFC 3986, so such a URL is read both ways, and the safe one wins: see
// slashedUserinfo.
func (r *redactor) userinfo(tok string) string {
	// Without a scheme (user:pass@host/path): what comes before the first
	// '@', when it has a ':' and is no path or parameter.
	if a := strings.IndexByte(tok, '@'); a > 0 && !strings.Contains(tok[:a], "//") {
		if head := tok[:a]; strings.IndexByte(head, ':') > 0 && !strings.ContainsAny(head, "/?#=&") && head != Redacted {
			tok = Redacted + tok[a:]
			r.n++
		}
	}
	for from := 0; from < len(tok); {
		i := strings.Index(tok[from:], "//")
		if i < 0 {
			break
		}
		start := from + i + 2
		from = start
		if i := start - 2; i > 0 && tok[i-1] != ':' {
			continue
		}
		end := start
		for end < len(tok) && tok[end] != '/' && tok[end] != '?' && tok[end] != '#' {
			end++
		}
		at := strings.LastIndexByte(tok[start:end], '@')
		if at < 0 {
			at = slashedUserinfo(tok[start:], end-start)
		}
		if at > 0 && tok[start:start+at] != Redacted {
			tok = tok[:start] + Redacted + tok[start+at:]
			r.n++
		}
	}
	return tok
}

// slashedUserinfo finds, in rest (what follows "//", its authority by RFC
// 3986 being rest[:seg]), the '@' that ends a userinfo holding '/', '?' or
// '#' ("user:pa/ss@host"), or returns -1. It is a userinfo when the
// authority holds a ':' that is not a port's (what follows it is not all
// digits) and an '@' comes later in the token: then everything up to the
// last '@' before the query or fragment that follows the first such '@'
// goes. https://host/path/@user (no ':'), https://host:8080/p/@user (a
// port) and https://[::1]/p/@user (an IPv6 host) stay whole.
func slashedUserinfo(rest string, seg int) int {
	auth := rest[:seg]
	c := strings.IndexByte(auth, ':')
	if c < 0 || strings.HasPrefix(auth, "[") || strings.Trim(auth[c+1:], "0123456789") == "" {
		return -1
	}
	a := strings.IndexByte(rest[seg:], '@')
	if a < 0 {
		return -1
	}
	a += seg
	lim := len(rest)
	if q := strings.IndexAny(rest[a:], "?#"); q >= 0 {
		lim = a + q
	}
	return strings.LastIndexByte(rest[:lim], '@')
}

// params redacts a query string (or a run of name=value pairs joined by
// '&'): every value when a parameter signs it, else the values of secret
// parameters, and looks inside the others (they can hold a URL or JSON,
// percent-encoded or not).
func (r *redactor) params(q string, depth int) string {
	if strings.IndexByte(q, '=') < 0 {
		return q
	}
	signed := false
	for rest := q; rest != "" && !signed; {
		var p string
		p, rest, _ = strings.Cut(rest, "&")
		if name, _, ok := strings.Cut(p, "="); ok && anyRule(signatureParams, paramName(name)) {
			signed = true
		}
	}
	var b strings.Builder
	last := 0 // q[:last] is in b
	for at := 0; at < len(q); {
		end := strings.IndexByte(q[at:], '&')
		if end < 0 {
			end = len(q)
		} else {
			end += at
		}
		p := q[at:end]
		if eq := strings.IndexByte(p, '='); eq >= 0 {
			if val := p[eq+1:]; val != "" && val != Redacted {
				nv := Redacted
				if signed || secretParam(paramName(p[:eq])) {
					r.n++
				} else {
					nv = r.inner(val, depth)
				}
				if nv != val {
					b.WriteString(q[last : at+eq+1])
					b.WriteString(nv)
					last = end
				}
			}
		}
		at = end + 1
	}
	if last == 0 {
		return q
	}
	b.WriteString(q[last:])
	return b.String()
}

// paramName is the normalised name before a '=': the trailing run of name
// characters (so "amp;token" and "(token" are "token"), percent-decoded.
func paramName(s string) string {
	i := len(s)
	for i > 0 {
		if !nameChar(s[i-1]) {
			break
		}
		i--
	}
	name := s[i:]
	if strings.IndexByte(name, '%') >= 0 {
		if u, err := url.QueryUnescape(name); err == nil {
			name = u
		}
	}
	return normName(name)
}

// nameChar reports whether c can be part of a parameter or header name.
func nameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '%'
}

// inner redacts inside a parameter value that is not itself a secret: a
// nested URL or JSON, percent-encoded or not. It returns the value as it
// was when nothing inside needed redacting.
func (r *redactor) inner(val string, depth int) string {
	text, escaped := val, false
	if strings.IndexByte(val, '%') >= 0 {
		if u, err := url.QueryUnescape(val); err == nil && u != val {
			text, escaped = u, true
		}
	}
	if !escaped && !strings.ContainsAny(val, "=@") {
		return val
	}
	if depth >= maxNesting {
		r.n++
		return Redacted
	}
	out := r.text(text, depth+1, false)
	switch {
	case out == text:
		return val
	case escaped:
		return url.QueryEscape(out)
	}
	return out
}

// authScheme finds HTTP Authorization credentials in text.
var authScheme = regexp.MustCompile(`(?i)\b(bearer|basic)[ \t]+([A-Za-z0-9._~+/-]+=*)`)

// authSchemes replaces Bearer tokens (of credential shape: a word after
// "bearer" in prose is not one, see credShaped) and Basic credentials
// (base64 of user:password).
func (r *redactor) authSchemes(s string) string {
	ms := authScheme.FindAllStringSubmatchIndex(s, -1)
	if ms == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range ms {
		scheme, cred := strings.ToLower(s[m[2]:m[3]]), s[m[4]:m[5]]
		secret := false
		if scheme == "bearer" {
			secret = credShaped(strings.TrimRight(cred, "."))
		} else if raw, err := base64.StdEncoding.DecodeString(cred); err == nil {
			secret = bytes.IndexByte(raw, ':') > 0
		}
		if !secret {
			continue
		}
		b.WriteString(s[last:m[4]])
		b.WriteString(Redacted)
		last = m[5]
		r.n++
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// indexFold is strings.Index for an ASCII lowercase word, ignoring case,
// without copying s.
func indexFold(s, word string) int {
	for i := 0; i+len(word) <= len(s); i++ {
		j := 0
		for ; j < len(word); j++ {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != word[j] {
				break
			}
		}
		if j == len(word) {
			return i
		}
	}
	return -1
}

// credShaped reports whether a word after a secret's name or an auth scheme
// looks like a credential rather than prose ("token: expired", "bearer
// bonds", "Bearer JWTs"): four characters or more, with a digit, one of
// ._~+/=-, or upper and lower case mixed past the first letter (but not an
// acronym's plural), or 24 characters or more.
func credShaped(w string) bool {
	if len(w) < 4 {
		return false
	}
	upper, lower := 0, 0
	for i := 0; i < len(w); i++ {
		switch c := w[i]; {
		case c >= '0' && c <= '9' || strings.IndexByte("._~+/=-", c) >= 0:
			return true
		case c >= 'a' && c <= 'z':
			lower++
		case c >= 'A' && c <= 'Z' && i > 0:
			upper++
		}
	}
	plural := lower == 1 && w[len(w)-1] == 's'
	return upper > 0 && lower > 0 && !plural || len(w) >= 24
}

// colonValueEnd is where a value after "name:" ends.
func colonValueEnd(s string, i int) int {
	for i < len(s) && !tokenSep(s[i]) && s[i] != '\\' && s[i] != ',' && s[i] != ';' {
		i++
	}
	return i
}

// colons redacts credentials written "name: value" in text: header lines
// (X-Api-Key: …, Authorization: token …), YAML and log fields (token: …),
// JSON-like text that did not parse ('apiToken': '…'). The name is the run
// of name characters before the ':' (a closing quote between them is
// allowed) and must be a secret by secretFields; the value is the word
// after it (after an opening quote), or the word after an auth scheme
// (Bearer, Basic, token, …). It is replaced when it has credential shape
// (credShaped) or the name starts a line (a header dump), so that prose
// such as "no secrets: contact …" or "token: expired" stays.
func (r *redactor) colons(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			continue
		}
		k := i
		if k > 0 && (s[k-1] == '"' || s[k-1] == '\'') {
			k--
			if k > 0 && s[k-1] == '\\' {
				k--
			}
		}
		st := k
		for st > 0 && nameChar(s[st-1]) {
			st--
		}
		if st == k || !r.field(s[st:k]).secret {
			continue
		}
		line := st
		for line > 0 && (s[line-1] == ' ' || s[line-1] == '\t' || s[line-1] == '"' || s[line-1] == '\'') {
			line--
		}
		lineStart := line == 0 || s[line-1] == '\n' || s[line-1] == '\r'
		v := i + 1
		for v < len(s) && (s[v] == ' ' || s[v] == '\t') {
			v++
		}
		switch {
		case v < len(s) && (s[v] == '"' || s[v] == '\''):
			v++
		case v+1 < len(s) && s[v] == '\\' && s[v+1] == '"':
			v += 2
		}
		e := colonValueEnd(s, v)
		if slices.Contains(authSchemeWords, strings.ToLower(s[v:e])) {
			w := e
			for w < len(s) && (s[w] == ' ' || s[w] == '\t') {
				w++
			}
			if w == e {
				continue
			}
			v, e = w, colonValueEnd(s, w)
		}
		cred := strings.TrimRight(s[v:e], ".:)")
		if cred == "" || strings.HasPrefix(cred, Redacted) || !lineStart && !credShaped(cred) {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:v])
		b.WriteString(Redacted)
		last = v + len(cred)
		i = last - 1
		r.n++
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
