package jdbcsink

import (
	"errors"
	"fmt"
)

// Sentinels classifying what Put returns; test them with errors.Is.
var (
	// ErrTaskFailed: the real connector task would have died. Nothing more is written
	// by this sink (every later Put fails too); make a new sink to restart the task.
	// The records of the failed Put that were not committed would be redelivered.
	ErrTaskFailed = errors.New("jdbcsink: the connector task failed (make a new sink to restart it)")
	// ErrRetriable: the Confluent task threw a RetriableException after rolling the
	// batch back; the worker would call Put again with the same records after
	// retry.backoff.ms, and the caller should do the same.
	ErrRetriable = errors.New("jdbcsink: retriable failure (put the same records again)")
)

// JavaError is an exception as the emulated Java code throws it: its class, its
// message and its cause. Error reads like the Java message with its causes after
// colons, so a failure says what the real connector would have logged.
type JavaError struct {
	Class   string // simple class name: DataException, ConnectException, SQLException, ...
	Message string
	Cause   error

	causeInMessage bool // the message already says what the cause does
}

func (e *JavaError) Error() string {
	if e.Cause == nil || e.causeInMessage {
		return e.Message
	}
	return e.Message + ": " + e.Cause.Error()
}

func (e *JavaError) Unwrap() error { return e.Cause }

func dataErrorf(format string, args ...any) error {
	return &JavaError{Class: "DataException", Message: fmt.Sprintf(format, args...)}
}

func connectErrorf(format string, args ...any) error {
	return &JavaError{Class: "ConnectException", Message: fmt.Sprintf(format, args...)}
}

func connectError(msg string, cause error) error {
	return &JavaError{Class: "ConnectException", Message: msg, Cause: cause}
}

func sqlErrorf(format string, args ...any) error {
	return &JavaError{Class: "SQLException", Message: fmt.Sprintf(format, args...)}
}

// nullPointer is the NullPointerException the Java code would hit; detail is the
// JVM's helpful message.
func nullPointer(detail string) error {
	return &JavaError{Class: "NullPointerException", Message: "java.lang.NullPointerException: " + detail}
}

// classCast is the ClassCastException of casting v to the named class.
func classCast(v any, to string) error {
	return &JavaError{Class: "ClassCastException", Message: fmt.Sprintf(
		"class %s cannot be cast to class %s", javaClassName(v), to)}
}

// isSQLException is `catch (SQLException e)`: the thrown exception itself (not its
// causes) is pgjdbc's PSQLException or BatchUpdateException or a plain SQLException.
func isSQLException(err error) bool {
	var je *JavaError
	if !errors.As(err, &je) {
		return false
	}
	switch je.Class {
	case "SQLException", "PSQLException", "BatchUpdateException":
		return true
	}
	return false
}

// taskError is what Put returns: the exception, classified by a sentinel.
type taskError struct {
	kind error
	err  error
}

func (e *taskError) Error() string   { return e.err.Error() }
func (e *taskError) Unwrap() []error { return []error{e.kind, e.err} }

func failed(err error) error    { return &taskError{kind: ErrTaskFailed, err: err} }
func retriable(err error) error { return &taskError{kind: ErrRetriable, err: err} }
