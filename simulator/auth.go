package simulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/mps"
)

// maxSkew is how far X-TC-Timestamp may be from the server's real time, as
// the real API enforces.
const maxSkew = 5 * time.Minute

type authError struct{ code, msg string }

func (e *authError) Error() string { return e.code + ": " + e.msg }

// VerifySignature checks r's TC3-HMAC-SHA256 signature over body against
// creds (SecretId → SecretKey) at the real time now. The error's text starts
// with the API error code.
func VerifySignature(r *http.Request, body []byte, creds map[string]string, now time.Time) error {
	if _, err := verify(r, body, creds, now); err != nil {
		return err
	}
	return nil
}

// verify checks a TC3-HMAC-SHA256 Authorization header against creds, the
// way the API 3.0 gateway does. It returns the SecretId on success.
func verify(r *http.Request, body []byte, creds map[string]string, now time.Time) (string, *authError) {
	auth := r.Header.Get("Authorization")
	const algo = "TC3-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return "", &authError{mps.CodeSignatureFailure, "the Authorization header is missing or is not TC3-HMAC-SHA256"}
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			fields[k] = v
		}
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 4 || scope[3] != "tc3_request" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return "", &authError{mps.CodeSignatureFailure, "malformed Authorization header"}
	}
	secretID, date, service := scope[0], scope[1], scope[2]

	ts, err := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
	if err != nil {
		return "", &authError{mps.CodeSignatureFailure, "X-TC-Timestamp is missing or not a number"}
	}
	signedAt := time.Unix(ts, 0).UTC()
	if d := now.Sub(signedAt); d > maxSkew || d < -maxSkew {
		return "", &authError{mps.CodeSignatureExpire, "the request timestamp is more than 5 minutes from the server time"}
	}
	key, ok := creds[secretID]
	if !ok {
		return "", &authError{mps.CodeSecretIDNotFound, "the SecretId is not found"}
	}
	if service != mps.Service || date != signedAt.Format("2006-01-02") {
		return "", &authError{mps.CodeSignatureFailure, "the credential scope does not match the request"}
	}

	var canon strings.Builder
	canon.WriteString(r.Method + "\n/\n" + r.URL.RawQuery + "\n")
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		v := r.Header.Get(h)
		if strings.EqualFold(h, "host") {
			v = r.Host
		}
		canon.WriteString(strings.ToLower(h) + ":" + strings.ToLower(strings.TrimSpace(v)) + "\n")
	}
	payloadHash := sha256Hex(body)
	if r.Header.Get("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD" {
		payloadHash = sha256Hex([]byte("UNSIGNED-PAYLOAD"))
	}
	canon.WriteString("\n" + fields["SignedHeaders"] + "\n" + payloadHash)

	stringToSign := "TC3-HMAC-SHA256\n" + strconv.FormatInt(ts, 10) + "\n" +
		date + "/" + service + "/tc3_request\n" + sha256Hex([]byte(canon.String()))
	k := hmacSHA256([]byte("TC3"+key), date)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "tc3_request")
	want := hex.EncodeToString(hmacSHA256(k, stringToSign))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return "", &authError{mps.CodeSignatureFailure, "the provided credentials could not be validated"}
	}
	return secretID, nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
