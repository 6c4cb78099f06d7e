package wire

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultPrefix is the subject prefix used when none is configured.
const DefaultPrefix = "hb"

// MaxIDLen is the longest id, in bytes, that a node may use.
const MaxIDLen = 64

// Reserved tokens of the subject families.
const (
	probeToken   = "probe"
	eventsToken  = "events"
	monitorToken = "monitor"
	controlVer   = "v1"
)

// ErrInvalidID is wrapped by every error that rejects a node id.
var ErrInvalidID = errors.New("invalid id")

// ErrInvalidPrefix is wrapped by every error that rejects a subject prefix.
var ErrInvalidPrefix = errors.New("invalid prefix")

// IDError explains why an id was refused. It wraps [ErrInvalidID].
type IDError struct {
	ID     string
	Reason string
}

func (e *IDError) Error() string {
	return fmt.Sprintf("invalid id %q: %s", e.ID, e.Reason)
}

// Unwrap returns [ErrInvalidID].
func (e *IDError) Unwrap() error { return ErrInvalidID }

// ValidateID reports whether id can be used as a node id: one NATS subject
// token of 1 to [MaxIDLen] bytes of valid UTF-8, with no '.', '*', '>',
// whitespace or control characters.
func ValidateID(id string) error {
	if reason := idProblem(id); reason != "" {
		return &IDError{ID: id, Reason: reason}
	}
	return nil
}

// idByte[c] is true for the ASCII bytes an id may hold as they are; any
// other byte sends idProblem to its full check.
var idByte = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = c != '.' && c != '*' && c != '>'
	}
	return t
}()

func idProblem(id string) string {
	if id == "" {
		return "empty"
	}
	if len(id) > MaxIDLen {
		return fmt.Sprintf("longer than %d bytes", MaxIDLen)
	}
	i := 0
	for i < len(id) && idByte[id[i]] {
		i++
	}
	for i < len(id) {
		c := id[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '.':
				return "contains '.' (an id is a single subject token)"
			case c == '*' || c == '>':
				return fmt.Sprintf("contains wildcard %q", c)
			case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
				return "contains whitespace"
			case c < 0x20 || c == 0x7f:
				return "contains a control character"
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(id[i:])
		if r == utf8.RuneError && n <= 1 {
			return "is not valid UTF-8"
		}
		if r == 0x85 || r == 0xa0 || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0x3000 || (r >= 0x2000 && r <= 0x200a) || r == 0x1680 || r == 0x202f || r == 0x205f {
			return "contains whitespace or a control character"
		}
		if unicode.Is(unicode.Cf, r) {
			// Zero-width spaces, joiners, bidi overrides, BOMs: invisible,
			// so "web-1\u200b" would pass for web-1 on every screen.
			return fmt.Sprintf("contains the invisible formatting character %U", r)
		}
		i += n
	}
	return ""
}

// IDFromHostname derives the default node id from a hostname. The rule is
// deterministic and documented in docs/PROTOCOL.md:
//
//  1. ASCII letters are lower-cased;
//  2. every '.' becomes '_', so web-1.example.com becomes web-1_example_com;
//  3. every byte outside [a-z0-9_-] becomes '-';
//  4. an id longer than MaxIDLen keeps its first 55 bytes, then '-' and
//     8 hex digits of the FNV-1a hash of the whole hostname;
//  5. an empty hostname becomes "unknown".
func IDFromHostname(host string) string {
	if host == "" {
		return "unknown"
	}
	b := make([]byte, len(host))
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
		case c == '.':
			c = '_'
		default:
			c = '-'
		}
		b[i] = c
	}
	if len(b) > MaxIDLen {
		h := fnv.New32a()
		h.Write([]byte(host))
		b = fmt.Appendf(b[:55], "-%08x", h.Sum32())
	}
	return string(b)
}

// ValidatePrefix reports whether p can be used as a subject prefix: one or
// more non-empty tokens separated by '.', with no wildcards, whitespace or
// control characters.
func ValidatePrefix(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty", ErrInvalidPrefix)
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" {
			return fmt.Errorf("%w %q: empty token", ErrInvalidPrefix, p)
		}
		if r := idProblem(tok); r != "" && !strings.HasPrefix(r, "longer") {
			return fmt.Errorf("%w %q: %s", ErrInvalidPrefix, p, r)
		}
	}
	return nil
}

// Subjects builds and parses every subject of one prefix. The zero value is
// not usable; construct it with [NewSubjects].
type Subjects struct {
	prefix string
	dotted string // prefix + "."
}

// NewSubjects returns the subject set for prefix, or an error if the prefix
// is not valid.
func NewSubjects(prefix string) (Subjects, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return Subjects{}, err
	}
	return Subjects{prefix: prefix, dotted: prefix + "."}, nil
}

// MustSubjects is like [NewSubjects] but panics on an invalid prefix. It is
// meant for constants in tests and examples.
func MustSubjects(prefix string) Subjects {
	s, err := NewSubjects(prefix)
	if err != nil {
		panic(err)
	}
	return s
}

// Prefix returns the prefix.
func (s Subjects) Prefix() string { return s.prefix }

// Beat returns the subject node id beats on: <prefix>.<id>.
func (s Subjects) Beat(id string) string { return s.dotted + id }

// Probe returns the subject node id answers probes on: <prefix>.<id>.probe.
func (s Subjects) Probe(id string) string { return s.dotted + id + "." + probeToken }

// Beats returns the wildcard that matches every beat and nothing else:
// <prefix>.*.
func (s Subjects) Beats() string { return s.dotted + "*" }

// All returns the wildcard that matches every hbmesh subject: <prefix>.>.
func (s Subjects) All() string { return s.dotted + ">" }

// Event returns the subject a monitor publishes a transition of peer id
// into state on: <prefix>.events.<state>.<id>.
func (s Subjects) Event(state, id string) string {
	return s.dotted + eventsToken + "." + state + "." + id
}

// Events returns the wildcard matching every event: <prefix>.events.*.*.
func (s Subjects) Events() string { return s.dotted + eventsToken + ".*.*" }

// Control returns the subject of monitor control endpoint name:
// <prefix>.monitor.v1.<name>.
func (s Subjects) Control(name string) string {
	return s.dotted + monitorToken + "." + controlVer + "." + name
}

// ErrNotBeat is returned by [Subjects.ParseBeat] for a subject that is not a
// beat subject of this prefix.
var ErrNotBeat = errors.New("not a beat subject")

// ParseBeat returns the id of beat subject subj. The result aliases subj and
// does not allocate. Subjects outside <prefix>.* or with an id that
// [ValidateID] would refuse yield an error wrapping [ErrNotBeat] or
// [ErrInvalidID].
func (s Subjects) ParseBeat(subj string) (string, error) {
	if len(subj) <= len(s.dotted) || subj[:len(s.dotted)] != s.dotted {
		return "", ErrNotBeat
	}
	id := subj[len(s.dotted):]
	if strings.IndexByte(id, '.') >= 0 {
		return "", ErrNotBeat
	}
	if r := idProblem(id); r != "" {
		return "", &IDError{ID: id, Reason: r}
	}
	return id, nil
}

// BeatID is the monitor's fast path of [Subjects.ParseBeat]: it checks
// only that subj is <prefix>.<one token> and returns the token, without
// validating its characters. It is meant for callers that go on to compare
// the token with a payload id that the [Decoder] has validated, so the id
// is checked exactly once.
func (s Subjects) BeatID(subj string) (string, bool) {
	if len(subj) <= len(s.dotted) || subj[:len(s.dotted)] != s.dotted {
		return "", false
	}
	id := subj[len(s.dotted):]
	return id, strings.IndexByte(id, '.') < 0
}

// ParseProbe returns the id whose probe subject is subj.
func (s Subjects) ParseProbe(subj string) (string, error) {
	rest, ok := strings.CutPrefix(subj, s.dotted)
	if !ok {
		return "", errors.New("not a probe subject")
	}
	id, tok, ok := strings.Cut(rest, ".")
	if !ok || tok != probeToken {
		return "", errors.New("not a probe subject")
	}
	if r := idProblem(id); r != "" {
		return "", &IDError{ID: id, Reason: r}
	}
	return id, nil
}

// ProbeReplies returns the wildcard a monitor subscribes to for the replies
// to its probes: <inbox>.*.
func ProbeReplies(inbox string) string { return inbox + ".*" }

// ProbeReply returns the reply subject of a probe to id: <inbox>.<id>.
func ProbeReply(inbox, id string) string { return inbox + "." + id }
