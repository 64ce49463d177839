package engine

import (
	"errors"
	"fmt"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// ErrorCode returns the AWS error code of err ("NoSuchBucket",
// "ThrottlingException"), or "" when err carries none.
func ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// IsCode reports whether err is an AWS error with one of codes.
func IsCode(err error, codes ...string) bool {
	c := ErrorCode(err)
	for _, want := range codes {
		if c != "" && c == want {
			return true
		}
	}
	return false
}

// RequestID returns the AWS request id of a failed call, if any.
func RequestID(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.ServiceRequestID()
	}
	return ""
}

// Explain turns an AWS SDK error into plain words for people: the code and
// message AWS gave, or, when the endpoint answered with something that is
// not an AWS response (an emulator's HTML error page), that the call is not
// supported by this endpoint rather than a raw parse error.
func Explain(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		msg := ae.ErrorMessage()
		if msg == "" {
			msg = "no message"
		}
		return fmt.Sprintf("%s: %s", ae.ErrorCode(), msg)
	}
	s := err.Error()
	var de *smithy.DeserializationError
	if errors.As(err, &de) || strings.Contains(s, "deserialization failed") || strings.Contains(s, "failed to decode response body") {
		return "not supported by this endpoint (it answered with something that is not an AWS response)"
	}
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		return fmt.Sprintf("%s %s: %v", oe.Service(), oe.Operation(), errors.Unwrap(oe))
	}
	return s
}
