// Package cfgerr is the one shape of a configuration error in hbmesh.
//
// Every Validate method in the module returns an [*Error]: it names the
// configuration, the field and, where it helps, the offending value, and
// it matches [ErrInvalid] with errors.Is. The public packages re-export
// ErrInvalid as their own ErrInvalidConfig, so
//
//	errors.Is(err, monitor.ErrInvalidConfig)
//	errors.Is(err, node.ErrInvalidConfig)
//
// are the same test.
package cfgerr

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched by every configuration error.
var ErrInvalid = errors.New("invalid config")

// Error is one bad field.
type Error struct {
	// Config names the configuration: "monitor", "node", "embedded"...
	Config string
	// Field is the field's name as a Go expression, e.g. "DeadAfter" or
	// "Cluster.Routes[0]".
	Field string
	// Value is the offending value, printed after the field; nil prints
	// nothing. A string is quoted.
	Value any
	// Why says what is wrong, e.g. "must be within [1, 16]".
	Why string
	// Err is the cause, when another validator said why; it is unwrapped.
	Err error
}

// Error prints "invalid <config> config: <field> [<value>] <why>", or with
// a cause "invalid <config> config: <field> [<value>]: <cause>".
func (e *Error) Error() string {
	s := "invalid " + e.Config + " config: " + e.Field
	switch v := e.Value.(type) {
	case nil:
	case string:
		s += fmt.Sprintf(" %q", v)
	default:
		s += fmt.Sprintf(" %v", v)
	}
	if e.Why != "" {
		s += " " + e.Why
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is [ErrInvalid].
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Of builds the errors of one configuration: declare it once per package,
// e.g. const invalid cfgerr.Of = "monitor".
type Of string

// Field reports that field holds value, which is wrong because why.
// value may be nil when showing it would not help.
func (o Of) Field(field string, value any, why string) error {
	return &Error{Config: string(o), Field: field, Value: value, Why: why}
}

// Wrap reports that field is wrong because of err, which another
// validator returned (wire.ValidateID, say); err stays matchable.
func (o Of) Wrap(field string, value any, err error) error {
	return &Error{Config: string(o), Field: field, Value: value, Err: err}
}
