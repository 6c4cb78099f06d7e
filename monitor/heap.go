package monitor

// deadlines is a min-heap of peers keyed by peer.due. Each peer is in it at
// most once (peer.hidx >= 0), so its size is bounded by the table's. Beats
// never touch it: a peer's entry only moves when it comes due, when the
// detector then finds the real deadline later and pushes it back. That
// keeps the per-beat cost O(1) and the sweep O(due entries).
type deadlines []*peer

func (h deadlines) less(i, j int) bool { return h[i].due < h[j].due }

func (h deadlines) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = int32(i)
	h[j].hidx = int32(j)
}

func (h *deadlines) push(p *peer) {
	p.hidx = int32(len(*h))
	*h = append(*h, p)
	h.up(len(*h) - 1)
}

// popMin removes and returns the earliest entry.
func (h *deadlines) popMin() *peer {
	old := *h
	p := old[0]
	n := len(old) - 1
	old.swap(0, n)
	old[n] = nil
	*h = old[:n]
	if n > 0 {
		h.down(0)
	}
	p.hidx = -1
	return p
}

// remove takes p out of the heap if it is there.
func (h *deadlines) remove(p *peer) {
	i := int(p.hidx)
	if i < 0 {
		return
	}
	old := *h
	n := len(old) - 1
	if i != n {
		old.swap(i, n)
	}
	old[n] = nil
	*h = old[:n]
	if i != n {
		h.fix(i)
	}
	p.hidx = -1
}

func (h deadlines) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h deadlines) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h deadlines) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		l := 2*i + 1
		if l >= n || l < 0 {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
