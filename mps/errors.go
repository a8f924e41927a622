package mps

import (
	"errors"
	"fmt"
	"strings"
)

// Error codes the archiver acts on. The ClientError.* codes are the official
// SDK's names for failures that never reached (or never came back from) the
// API's business logic.
const (
	CodeRequestLimitExceeded = "RequestLimitExceeded"
	CodeInternalError        = "InternalError"
	CodeInvalidParameter     = "InvalidParameterValue"
	CodeInvalidLimit         = "InvalidParameterValue.Limit"
	CodeInvalidScrollToken   = "InvalidParameterValue.ScrollToken"
	CodeInvalidMpsUser       = "FailedOperation.InvalidMpsUser"
	CodeSignatureFailure     = "AuthFailure.SignatureFailure"
	CodeSignatureExpire      = "AuthFailure.SignatureExpire"
	CodeSecretIDNotFound     = "AuthFailure.SecretIdNotFound"
	CodeInvalidAction        = "InvalidAction"
	CodeNetworkError         = "ClientError.NetworkError"
	CodeParseJSONError       = "ClientError.ParseJsonError"
	CodeHTTPStatusError      = "ClientError.HttpStatusCodeError"
	CodeIOError              = "ClientError.IOError"
	CodeMalformedResponse    = "ClientError.MalformedResponse"
	CodeTimeout              = "ClientError.Timeout"
)

// APIError is a DescribeTasks call that failed for good: either a fatal code
// on the first attempt, or a transient one on every attempt.
type APIError struct {
	Code      string
	Message   string
	RequestID string
	Attempts  int
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "DescribeTasks failed: %s", e.Code)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", truncate(oneLine(e.Message), 200))
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (RequestId %s)", e.RequestID)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	return b.String()
}

// ErrorCode returns the API or client error code inside err, or "".
func ErrorCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// Transient reports whether a call that failed with code may succeed if sent
// again. Everything not listed is fatal: credentials, parameters, account
// state and unknown codes stop a run at once.
func Transient(code string) bool {
	switch {
	case strings.HasPrefix(code, CodeRequestLimitExceeded),
		strings.HasPrefix(code, CodeInternalError),
		code == "ServiceUnavailable",
		strings.HasPrefix(code, "ResourceUnavailable"),
		code == CodeNetworkError, code == CodeParseJSONError,
		code == CodeHTTPStatusError, code == CodeIOError,
		code == CodeMalformedResponse, code == CodeTimeout:
		return true
	}
	return false
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
