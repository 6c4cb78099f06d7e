package wire

// Sender is what a sender's beats repeat from one to the next: every field
// but seq, ts and status, as its last accepted beat had them, for
// [Decoder.DecodeNext]. Build it from a [RawBeat] that a [Decoder] returned
// with [RawBeat.Plain] set, every field copied as it is (Labels is the raw
// [RawBeat.Labels], "" for none); DecodeNext does not check that, and says
// what it does with any other Sender. A monitor keeps these fields for each
// peer anyway, so it can build a Sender on the stack at no cost.
type Sender struct {
	ID, Host, Boot, Version string
	Labels                  string
	PID                     int
	IntervalMS              int64
}

// DecodeNext decodes data as [Decoder.Decode] does, faster when data is
// [AppendBeat]'s encoding of a beat that repeats s: then only seq, ts and
// status are parsed, and the rest is compared with s byte for byte.
//
// s must be built as [Sender] says, from a beat with [RawBeat.Plain] set;
// DecodeNext trusts that rather than checking it on every beat. With such
// an s, whatever the shortcut accepts, Decode accepts with the same result
// (FuzzDecodeNextAgrees), and anything else goes to Decode, so the result
// is always Decode's. With any other s, the shortcut still parses and
// checks seq, ts and status, never panics and never reads outside data,
// but it takes s's fields to be valid and plain: it may accept a payload
// that Decode refuses (an empty id, a pid out of range, a raw quote or
// control byte in a string, labels that break the rules), and decode one
// that Decode accepts otherwise (given a Host of `a\u0041`, a payload
// whose host is "a\u0041" decodes to that, where Decode gives "aA").
// Whenever the shortcut takes a payload, whatever s, the fields out holds
// other than seq, ts and status are s's byte for byte
// (FuzzDecodeNextAnySender): a payload can make DecodeNext repeat a bad
// Sender, but add nothing to it.
func (d *Decoder) DecodeNext(data []byte, out *RawBeat, s *Sender) error {
	if len(data) <= MaxPayload && d.next(data, out, s) {
		return nil
	}
	return d.Decode(data, out)
}

// next is DecodeNext's shortcut. On false, out is garbage.
func (d *Decoder) next(data []byte, out *RawBeat, s *Sender) bool {
	i, ok := 0, true
	if i, ok = fastLit(data, i, `{"v":1,"id":"`); !ok {
		return false
	}
	if out.ID, i, ok = nextStr(data, i, s.ID); !ok {
		return false
	}
	if i, ok = fastLit(data, i, `,"host":"`); !ok {
		return false
	}
	if out.Host, i, ok = nextStr(data, i, s.Host); !ok {
		return false
	}
	if i, ok = fastLit(data, i, `,"pid":`); !ok {
		return false
	}
	var n uint64
	if n, i, ok = fastUint(data, i); !ok || n != uint64(s.PID) || s.PID < 0 {
		return false
	}
	if i, ok = fastLit(data, i, `,"boot":"`); !ok {
		return false
	}
	if out.Boot, i, ok = nextStr(data, i, s.Boot); !ok || len(out.Boot) == 0 {
		return false
	}
	if i, ok = d.fastSeqTS(data, i, out); !ok {
		return false
	}
	if i, ok = fastLit(data, i, `,"interval_ms":`); !ok {
		return false
	}
	if n, i, ok = fastUint(data, i); !ok || int64(n) != s.IntervalMS || n < 1 || n > 1<<53 {
		return false
	}
	if i, ok = fastStatus(data, i, out); !ok {
		return false
	}
	if i, ok = fastLit(data, i, `,"version":"`); !ok {
		return false
	}
	if out.Version, i, ok = nextStr(data, i, s.Version); !ok {
		return false
	}
	out.Labels = nil
	if s.Labels != "" {
		if i, ok = fastLit(data, i, `,"labels":`); !ok || !hasLit(data, i, s.Labels) {
			return false
		}
		out.Labels = data[i : i+len(s.Labels)]
		i += len(s.Labels)
	}
	if i != len(data)-1 || data[i] != '}' {
		return false
	}
	out.V, out.PID, out.IntervalMS, out.Plain = Version, s.PID, s.IntervalMS, true
	return true
}

// nextStr takes a string whose opening quote is just before i and that
// must be want, which is plain.
func nextStr(b []byte, i int, want string) ([]byte, int, bool) {
	end := i + len(want)
	if end >= len(b) || b[end] != '"' || string(b[i:end]) != want {
		return nil, i, false
	}
	return b[i:end], end + 1, true
}
