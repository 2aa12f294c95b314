package kp

// #include <stdlib.h>
// #include <kp.h>
import "C"

import (
	"errors"
	"fmt"
)

// ErrorClass says what the caller can do about an error (the Java client's
// classes since Kafka 4.1, KIP-1050): kp's KP_ERROR_CLASS_* values.
type ErrorClass int32

// The error classes.
const (
	ClassNone                   ErrorClass = C.KP_ERROR_CLASS_NONE
	ClassRetriable              ErrorClass = C.KP_ERROR_CLASS_RETRIABLE
	ClassRefreshRetriable       ErrorClass = C.KP_ERROR_CLASS_REFRESH_RETRIABLE
	ClassAbortable              ErrorClass = C.KP_ERROR_CLASS_ABORTABLE
	ClassApplicationRecoverable ErrorClass = C.KP_ERROR_CLASS_APPLICATION_RECOVERABLE
	ClassInvalidConfiguration   ErrorClass = C.KP_ERROR_CLASS_INVALID_CONFIGURATION
	ClassFatal                  ErrorClass = C.KP_ERROR_CLASS_FATAL
)

func (c ErrorClass) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassRetriable:
		return "retriable"
	case ClassRefreshRetriable:
		return "refresh-retriable"
	case ClassAbortable:
		return "abortable"
	case ClassApplicationRecoverable:
		return "application-recoverable"
	case ClassInvalidConfiguration:
		return "invalid-configuration"
	case ClassFatal:
		return "fatal"
	}
	return fmt.Sprintf("ErrorClass(%d)", int32(c))
}

// Error is every error kp reports: a code (kp's KP_ERR_* below -100, or a
// Kafka protocol error number), a message and its class. Compare with the
// sentinels using errors.Is (codes are compared, not messages).
type Error struct {
	// Code is the kp_err_t: negative for errors kp detects itself, positive
	// for errors a broker returned.
	Code int32
	// Name is the code's symbolic name, e.g. "QUEUE_FULL".
	Name string
	// Message says what happened.
	Message string
	// Class says what to do about it.
	Class ErrorClass

	retriable bool
}

func (e *Error) Error() string {
	return "kp: " + e.Name + ": " + e.Message
}

// Retriable reports whether the same call or record may succeed if retried.
func (e *Error) Retriable() bool { return e.retriable }

// Fatal reports whether the producer cannot be used any more: close it and
// create a new one.
func (e *Error) Fatal() bool { return e.Class == ClassFatal }

// TxnRequiresAbort reports whether the open transaction must be aborted
// (AbortTransaction) before the producer can go on.
func (e *Error) TxnRequiresAbort() bool { return e.Class == ClassAbortable }

// Is makes errors.Is(err, kp.ErrQueueFull) true for every *Error with the
// sentinel's code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// newError describes a code with kp's own name, text and class.
func newError(code C.kp_err_t, message string) *Error {
	return newErrorClass(code, message, ErrorClass(C.kp_err_class(code)))
}

func newErrorClass(code C.kp_err_t, message string, class ErrorClass) *Error {
	if message == "" {
		message = C.GoString(C.kp_err_str(code))
	}
	retriable := bool(C.kp_err_is_retriable(code))
	if class == ClassRetriable || class == ClassRefreshRetriable {
		retriable = true
	}
	return &Error{
		Code:      int32(code),
		Name:      C.GoString(C.kp_err_name(code)),
		Message:   message,
		Class:     class,
		retriable: retriable,
	}
}

// fromKpError converts (and frees) a kp_error_t from the transactional
// calls; nil for NULL.
func fromKpError(e *C.kp_error_t) error {
	if e == nil {
		return nil
	}
	defer C.kp_error_destroy(e)
	code := C.kp_error_code(e)
	return &Error{
		Code:      int32(code),
		Name:      C.GoString(C.kp_err_name(code)),
		Message:   C.GoString(C.kp_error_message(e)),
		Class:     ErrorClass(C.kp_error_class(e)),
		retriable: bool(C.kp_error_is_retriable(e)),
	}
}

func sentinel(code C.kp_err_t) *Error { return newError(code, "") }

// Sentinels for errors.Is. Errors kp detects itself:
var (
	ErrInvalidArg         = sentinel(C.KP_ERR_INVALID_ARG)
	ErrQueueFull          = sentinel(C.KP_ERR_QUEUE_FULL)
	ErrRecordTooLarge     = sentinel(C.KP_ERR_RECORD_TOO_LARGE)
	ErrInvalidTopic       = sentinel(C.KP_ERR_INVALID_TOPIC)
	ErrUnknownPartition   = sentinel(C.KP_ERR_UNKNOWN_PARTITION)
	ErrTimedOut           = sentinel(C.KP_ERR_TIMED_OUT)
	ErrTransport          = sentinel(C.KP_ERR_TRANSPORT)
	ErrAllBrokersDown     = sentinel(C.KP_ERR_ALL_BROKERS_DOWN)
	ErrPurgedQueued       = sentinel(C.KP_ERR_PURGED_QUEUED)
	ErrPurgedInFlight     = sentinel(C.KP_ERR_PURGED_IN_FLIGHT)
	ErrClosed             = sentinel(C.KP_ERR_CLOSED)
	ErrFatal              = sentinel(C.KP_ERR_FATAL)
	ErrState              = sentinel(C.KP_ERR_STATE)
	ErrInternal           = sentinel(C.KP_ERR_INTERNAL)
	ErrUnsupportedFeature = sentinel(C.KP_ERR_UNSUPPORTED_FEATURE)
	ErrBadResponse        = sentinel(C.KP_ERR_BAD_RESPONSE)
	ErrPartitionerFailed  = sentinel(C.KP_ERR_PARTITIONER_FAILED)
	ErrAuthentication     = sentinel(C.KP_ERR_AUTHENTICATION)
)

// Sentinels for errors.Is. Errors a broker returns (Kafka protocol codes):
var (
	ErrUnknownTopicOrPartition = sentinel(C.KP_ERR_UNKNOWN_TOPIC_OR_PARTITION)
	ErrMessageTooLarge         = sentinel(C.KP_ERR_MESSAGE_TOO_LARGE)
	ErrNotEnoughReplicas       = sentinel(C.KP_ERR_NOT_ENOUGH_REPLICAS)
	// ErrInvalidProducerEpoch (47): an older producer epoch was used.
	ErrInvalidProducerEpoch = sentinel(47)
	// ErrFenced (PRODUCER_FENCED, 90): a newer producer with the same
	// transactional.id took over; this one is fatal.
	ErrFenced = sentinel(90)
)

// ErrWaitCanceled is wrapped (with the context's error) into the results of
// records whose wait ProduceSync gave up because its context ended: those
// records were accepted and may still be delivered.
var ErrWaitCanceled = errors.New("kp: the wait for the delivery report was canceled")

// waitCanceled is ErrWaitCanceled with the context's error as its cause.
type waitCanceled struct{ cause error }

func (w *waitCanceled) Error() string        { return ErrWaitCanceled.Error() + ": " + w.cause.Error() }
func (w *waitCanceled) Unwrap() error        { return w.cause }
func (w *waitCanceled) Is(target error) bool { return target == ErrWaitCanceled }
