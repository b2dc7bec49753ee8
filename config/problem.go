package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration, tied to the key it concerns.
type Problem struct {
	Key  string // full key path, e.g. "systems.crm.topic"; empty for the file as a whole
	Line int    // line of the key (or of its nearest parent present in the file); 0 when unknown
	Msg  string // what is wrong and, where it helps, what to write instead
}

// Error formats the problem as "key: message (line N)".
func (p Problem) Error() string {
	var b strings.Builder
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	return b.String()
}

// ValidationError lists every problem found in a configuration, so that an operator can
// fix them all in one go. Load, Parse and Validate return it as a *ValidationError; use
// errors.As to reach the list.
type ValidationError struct {
	Problems []Problem
}

// Error puts every problem on one line, separated by "; ", for logs.
func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	noun := "problems"
	if len(msgs) == 1 {
		noun = "problem"
	}
	return fmt.Sprintf("invalid configuration, %d %s: %s", len(msgs), noun, strings.Join(msgs, "; "))
}

// Unwrap returns the problems, so errors.As can find a Problem.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// asError returns nil for no problems, else a *ValidationError holding them.
func asError(problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: problems}
}

// source remembers where keys were in the parsed file, for line numbers in problems and so
// that ApplyDefaults can tell a key written as zero from a key left out.
type source struct {
	lines map[string]int  // key path -> line of the key
	set   map[string]bool // key paths given a non-null value
}

// line returns the line of key, or of its nearest ancestor in the file; 0 when unknown.
func (s *source) line(key string) int {
	if s == nil {
		return 0
	}
	for key != "" {
		if line, ok := s.lines[key]; ok {
			return line
		}
		key = parentKey(key)
	}
	return 0
}

// isSet reports whether the file gave key a value (false for a Config built in code).
func (s *source) isSet(key string) bool {
	return s != nil && s.set[key]
}

// parentKey strips the last element of a key path: "a.b[0]" -> "a.b", "a.b" -> "a".
func parentKey(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}
