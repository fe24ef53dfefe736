package controller

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Error is a Kafka error code with a message, returned by the admin and broker-lifecycle
// methods so the broker can put Code in its response and Message in ErrorMessage.
type Error struct {
	// Code is the Kafka error (kerr.TopicAlreadyExists, kerr.InvalidReplicationFactor, ...).
	Code *kerr.Error
	// Message explains the failure to a person.
	Message string
}

func (e *Error) Error() string { return "controller: " + e.Code.Message + ": " + e.Message }

// Unwrap returns the kerr code, so errors.Is(err, kerr.TopicAlreadyExists) works.
func (e *Error) Unwrap() error { return e.Code }

func errorf(code *kerr.Error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// NotControllerError is returned by every mutating method on a node that is not the active
// controller. LeaderID is the active controller's node id, or -1 while none is known; the
// caller forwards the request there. It unwraps to kerr.NotController.
type NotControllerError struct {
	LeaderID int32
}

func (e *NotControllerError) Error() string {
	return fmt.Sprintf("controller: not the active controller (active: %d)", e.LeaderID)
}

// Unwrap returns kerr.NotController.
func (e *NotControllerError) Unwrap() error { return kerr.NotController }

// ErrNotController matches any *NotControllerError with errors.Is.
var ErrNotController = kerr.NotController

// ErrorCode returns the Kafka error code for err: 0 for nil, the code of an *Error or
// NotControllerError, and UNKNOWN_SERVER_ERROR (-1) otherwise.
func ErrorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}
