package wire

import (
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Version is the protocol version carried in the "v" key.
const Version = 1

// Limits of a payload. They are part of the protocol: a monitor rejects a
// beat that exceeds any of them.
const (
	// MaxPayload is the largest beat or probe reply, in bytes. A typical
	// beat is under 256 bytes.
	MaxPayload = 1024
	// MaxHostLen is the longest "host", in bytes.
	MaxHostLen = 255
	// MaxBootLen is the longest "boot", in bytes.
	MaxBootLen = 64
	// MaxVersionLen is the longest "version", in bytes.
	MaxVersionLen = 64
	// MaxLabels is the most labels a beat may carry.
	MaxLabels = 16
	// MaxLabelKeyLen is the longest label key, in bytes. Keys use
	// [A-Za-z0-9_.-] and are non-empty.
	MaxLabelKeyLen = 32
	// MaxLabelValueLen is the longest label value, in bytes.
	MaxLabelValueLen = 64
	// MaxLabelsBytes bounds the encoded "labels" object, in bytes.
	MaxLabelsBytes = 512
)

// TSLayout is the layout [AppendBeat] writes "ts" in: RFC 3339 with
// milliseconds, "2026-11-25T12:00:00.123Z" for a UTC time. Milliseconds
// are finer than anything a monitor does with ts (the flood check compares
// spacings of at least a tenth of the 100ms shortest interval) and keep a
// beat 6 bytes shorter than nanoseconds. Decoders accept any RFC 3339
// time, with any fraction or none, so beats in either layout decode
// everywhere.
const TSLayout = "2006-01-02T15:04:05.000Z07:00"

// MinBeatGap is the least time between two beats of a node that beats
// every interval, by their "ts": a monitor rejects a beat closer than
// this to the previous one, both by ts and by arrival, as a flood.
func MinBeatGap(interval time.Duration) time.Duration { return interval / 10 }

// Status values of a beat.
const (
	StatusAlive   = "alive"
	StatusLeaving = "leaving"
)

// Beat is one heartbeat, and also the body of a probe reply.
type Beat struct {
	V          int               `json:"v"`
	ID         string            `json:"id"`
	Host       string            `json:"host"`
	PID        int               `json:"pid"`
	Boot       string            `json:"boot"`
	Seq        uint64            `json:"seq"`
	TS         time.Time         `json:"ts"`
	IntervalMS int64             `json:"interval_ms"`
	Status     string            `json:"status"`
	Version    string            `json:"version"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// ValidateLabels checks labels against the documented bounds.
func ValidateLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return fmt.Errorf("%d labels, at most %d allowed", len(labels), MaxLabels)
	}
	size := 2
	for k, v := range labels {
		if err := validLabelKey(k); err != "" {
			return fmt.Errorf("label key %q: %s", k, err)
		}
		if len(v) > MaxLabelValueLen {
			return fmt.Errorf("label %q: value longer than %d bytes", k, MaxLabelValueLen)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("label %q: value is not valid UTF-8", k)
		}
		size += len(appendString(nil, k)) + len(appendString(nil, v)) + 2
	}
	if size > MaxLabelsBytes {
		return fmt.Errorf("labels encode to %d bytes, at most %d allowed", size, MaxLabelsBytes)
	}
	return nil
}

func validLabelKey(k string) string {
	if k == "" {
		return "empty"
	}
	if len(k) > MaxLabelKeyLen {
		return fmt.Sprintf("longer than %d bytes", MaxLabelKeyLen)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return "may only use [A-Za-z0-9_.-]"
		}
	}
	return ""
}

// AppendBeat appends the JSON encoding of b to dst. Keys are written in the
// documented order and labels sorted by key, so the output is deterministic;
// "ts" is written in [TSLayout], so a decoded TS is b.TS truncated to the
// millisecond.
// It does not validate b; see [Beat.Validate].
func AppendBeat(dst []byte, b *Beat) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(b.V), 10)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, b.ID)
	dst = append(dst, `,"host":`...)
	dst = appendString(dst, b.Host)
	dst = append(dst, `,"pid":`...)
	dst = strconv.AppendInt(dst, int64(b.PID), 10)
	dst = append(dst, `,"boot":`...)
	dst = appendString(dst, b.Boot)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, b.Seq, 10)
	dst = append(dst, `,"ts":"`...)
	dst = b.TS.AppendFormat(dst, TSLayout)
	dst = append(dst, `","interval_ms":`...)
	dst = strconv.AppendInt(dst, b.IntervalMS, 10)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, b.Status)
	dst = append(dst, `,"version":`...)
	dst = appendString(dst, b.Version)
	if len(b.Labels) > 0 {
		dst = append(dst, `,"labels":`...)
		dst = AppendLabels(dst, b.Labels)
	}
	return append(dst, '}')
}

// AppendLabels appends labels as a JSON object with sorted keys.
func AppendLabels(dst []byte, labels map[string]string) []byte {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, labels[k])
	}
	return append(dst, '}')
}

// Validate checks b against the protocol: the same rules [Decoder] applies.
func (b *Beat) Validate() error {
	buf := AppendBeat(make([]byte, 0, 256), b)
	var d Decoder
	var raw RawBeat
	return d.Decode(buf, &raw)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 is replaced with
// U+FFFD so the output is always valid JSON. Besides what JSON requires,
// DEL and the C1 controls (U+0080 to U+009F) are escaped, which some
// terminals obey as escape sequences, and so are U+2028 and U+2029, which
// end a line in JavaScript: the output is safe to print.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += n
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += n
			start = i
			continue
		}
		if r <= 0x9f { // C1, after the ASCII above
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendJSONString appends s to dst as a JSON string literal. Other packages
// use it to build payloads without reflection.
func AppendJSONString(dst []byte, s string) []byte { return appendString(dst, s) }
