package wire

// The Decoder's fast path. Nearly every beat on a real mesh is written by
// AppendBeat, so its keys come in one order, with no whitespace and
// (almost always) no escapes. fast checks for exactly that layout,
// matching each key as a literal instead of scanning and dispatching it,
// and applies every value rule the general path applies. It never reports
// an error: anything it is not sure of (another key order, whitespace, an
// escape, a non-ASCII byte, a value that breaks a rule) makes it give up,
// and the general path then decides, so rejections and their messages do
// not depend on which path ran. FuzzFastPathAgrees checks that whatever
// fast accepts, the general path accepts with the same result.

// fast decodes data if it has AppendBeat's layout and is valid, and
// reports whether it did. On false, out is garbage and d.pos is
// undefined.
func (d *Decoder) fast(data []byte, out *RawBeat) bool {
	const head = `{"v":1,"id":"`
	if len(data) < len(head) || string(data[:len(head)]) != head {
		return false
	}
	out.V = Version
	i := len(head)
	var ok bool
	if out.ID, i, ok = fastStr(data, i, MaxIDLen); !ok || idProblem(bstr(out.ID)) != "" {
		return false
	}
	if i, ok = fastLit(data, i, `,"host":"`); !ok {
		return false
	}
	if out.Host, i, ok = fastStr(data, i, MaxHostLen); !ok {
		return false
	}
	if i, ok = fastLit(data, i, `,"pid":`); !ok {
		return false
	}
	var n uint64
	if n, i, ok = fastUint(data, i); !ok || n > 1<<31-1 {
		return false
	}
	out.PID = int(n)
	if i, ok = fastLit(data, i, `,"boot":"`); !ok {
		return false
	}
	if out.Boot, i, ok = fastStr(data, i, MaxBootLen); !ok || len(out.Boot) == 0 {
		return false
	}
	if i, ok = d.fastSeqTS(data, i, out); !ok {
		return false
	}
	if i, ok = fastLit(data, i, `,"interval_ms":`); !ok {
		return false
	}
	if n, i, ok = fastUint(data, i); !ok || n < 1 || n > 1<<53 {
		return false
	}
	out.IntervalMS = int64(n)
	if i, ok = fastStatus(data, i, out); !ok {
		return false
	}
	if i, ok = fastLit(data, i, `,"version":"`); !ok {
		return false
	}
	if out.Version, i, ok = fastStr(data, i, MaxVersionLen); !ok {
		return false
	}
	if hasLit(data, i, `,"labels":{`) {
		d.data, d.pos = data, i+len(`,"labels":`)
		raw, err := d.labels(nil)
		if err != nil {
			return false
		}
		out.Labels, i = raw, d.pos
	}
	out.Plain = true
	return i == len(data)-1 && data[i] == '}'
}

// fastSeqTS takes `,"seq":N,"ts":"…"` at i, as AppendBeat writes them.
func (d *Decoder) fastSeqTS(data []byte, i int, out *RawBeat) (int, bool) {
	var ok bool
	if i, ok = fastLit(data, i, `,"seq":`); !ok {
		return i, false
	}
	if out.Seq, i, ok = fastUint(data, i); !ok || out.Seq == 0 {
		return i, false
	}
	if i, ok = fastLit(data, i, `,"ts":"`); !ok {
		return i, false
	}
	var ts []byte
	if ts, i, ok = fastStr(data, i, 64); !ok {
		return i, false
	}
	out.TS, ok = d.ts.parse(ts)
	return i, ok
}

// fastStatus takes `,"status":"alive"` or `,"status":"leaving"` at i.
func fastStatus(data []byte, i int, out *RawBeat) (int, bool) {
	switch {
	case hasLit(data, i, `,"status":"alive"`):
		out.Leaving = false
		return i + len(`,"status":"alive"`), true
	case hasLit(data, i, `,"status":"leaving"`):
		out.Leaving = true
		return i + len(`,"status":"leaving"`), true
	}
	return i, false
}

func hasLit(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

func fastLit(b []byte, i int, lit string) (int, bool) {
	if !hasLit(b, i, lit) {
		return i, false
	}
	return i + len(lit), true
}

// fastStr takes a string whose opening quote is just before i: plain
// printable ASCII up to the closing quote, at most maxLen bytes.
func fastStr(b []byte, i, maxLen int) ([]byte, int, bool) {
	end := plainRun(b, i)
	if end >= len(b) || b[end] != '"' || end-i > maxLen {
		return nil, i, false
	}
	return b[i:end], end + 1, true
}

// fastUint takes a JSON integer without sign, fraction or exponent, with
// no leading zero, that fits 64 bits, and that is followed by ',' or '}'.
func fastUint(b []byte, i int) (uint64, int, bool) {
	start := i
	var n uint64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i-start == 19 { // 20 digits may overflow; let the general path say
			return 0, i, false
		}
		n = n*10 + uint64(b[i]-'0')
	}
	if i == start || (b[start] == '0' && i-start > 1) || i >= len(b) || (b[i] != ',' && b[i] != '}') {
		return 0, i, false
	}
	return n, i, true
}
