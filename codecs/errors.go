package codecs

import "errors"

// ErrPoison classifies a message that cannot be decoded. Every error returned by
// Decoder.Decode, Decoder.DecodeKey, Canonicalize and ParseReplayLine wraps it: such a
// message goes to the poison topic with the error text as its reason, and is never
// retried (decoding it again gives the same error).
var ErrPoison = errors.New("codecs: poison message")

// poisonError is an error about one part of a message ("key", "value", "replay line").
// It wraps both ErrPoison and the cause, so errors.Is works for either.
type poisonError struct {
	part string
	err  error
}

func poison(part string, err error) error {
	return &poisonError{part: part, err: err}
}

func (e *poisonError) Error() string { return "codecs: " + e.part + ": " + e.err.Error() }

func (e *poisonError) Unwrap() []error { return []error{ErrPoison, e.err} }
