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
	CodeUnknownParameter     = "UnknownParameter"
	CodeResourceNotFound     = "ResourceNotFound"
	CodeInvalidMpsUser       = "FailedOperation.InvalidMpsUser"
	CodeSignatureFailure     = "AuthFailure.SignatureFailure"
	CodeSignatureExpire      = "AuthFailure.SignatureExpire"
	CodeSecretIDNotFound     = "AuthFailure.SecretIdNotFound"
	CodeInvalidAction        = "InvalidAction"
	CodeUnsupportedOperation = "UnsupportedOperation"
	CodeNetworkError         = "ClientError.NetworkError"
	CodeParseJSONError       = "ClientError.ParseJsonError"
	CodeHTTPStatusError      = "ClientError.HttpStatusCodeError"
	CodeIOError              = "ClientError.IOError"
	CodeMalformedResponse    = "ClientError.MalformedResponse"
	CodeTimeout              = "ClientError.Timeout"
	// CodeEndpointError: an HTTP 4xx that is not the API's (a wrong
	// endpoint). Fatal.
	CodeEndpointError = "ClientError.EndpointError"
	// CodeResponseTooLarge: an answer larger than the client reads
	// (mpsclient.Config.MaxResponseBytes); it was not decoded.
	CodeResponseTooLarge = "ClientError.ResponseTooLarge"
)

// APIError is a call that failed for good: either a fatal code on the first
// attempt, or a transient one on every attempt.
type APIError struct {
	// Action is the API action that failed (DescribeTasks when empty).
	Action    string
	Code      string
	Message   string
	RequestID string
	Attempts  int
}

func (e *APIError) Error() string {
	var b strings.Builder
	action := e.Action
	if action == "" {
		action = ActionDescribeTasks
	}
	fmt.Fprintf(&b, "%s failed: %s", action, e.Code)
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

// TokenRejected reports whether code, answered to a request that carried a
// ScrollToken, means the token itself was refused. No code is documented for
// it: a token whose task moved to another list, or expired, comes back as a
// parameter error or as a missing resource.
func TokenRejected(code string) bool {
	return strings.HasPrefix(code, "InvalidParameter") && code != CodeInvalidLimit ||
		strings.HasPrefix(code, CodeResourceNotFound)
}

// Gone reports whether a DescribeTaskDetail answer means the detail no longer
// exists (or never did): the API documents neither code for expiry, so both
// ResourceNotFound* and a rejected TaskId count. Where a task's detail may
// still exist (inside its retention), only NotFound is sure.
func Gone(code string) bool {
	return NotFound(code) || code == CodeInvalidParameter
}

// NotFound reports whether code says the resource does not exist
// (ResourceNotFound*), the one documented answer for a missing detail.
func NotFound(code string) bool {
	return strings.HasPrefix(code, CodeResourceNotFound)
}

// UnknownParameter reports whether err is the API 3.0 common error for a
// request parameter the action does not define, naming one of params (any
// parameter when none are given).
func UnknownParameter(err error, params ...string) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeUnknownParameter {
		return false
	}
	if len(params) == 0 {
		return true
	}
	for _, p := range params {
		if strings.Contains(ae.Message, p) {
			return true
		}
	}
	return false
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
