package resolver

// Clone returns a deep copy of the state, sharing no memory with it. The copy's
// values share a few allocations among themselves (each slice capped at its length,
// so that growing one never runs into another): a state store that clones on every
// read and write pays a handful of allocations per record, not one per value.
func (s *State) Clone() *State {
	c := *s
	p := newClonePool(s)
	c.Key = p.values(s.Key)
	c.Agreed = make([]AgreedField, len(s.Agreed))
	for i, a := range s.Agreed {
		if a.Value != nil {
			a.Value = p.bytes(a.Value)
		}
		c.Agreed[i] = a
	}
	c.Systems = make([]SystemState, len(s.Systems))
	for i, ss := range s.Systems {
		ss.Seen = p.seen(ss.Seen)
		ss.InFlight = make([]Apply, len(ss.InFlight))
		for j, a := range s.Systems[i].InFlight {
			a.Fields = p.values(a.Fields)
			ss.InFlight[j] = a
		}
		if ss.Landed != nil {
			ss.Landed = p.landed(len(ss.Landed))
			for j, l := range s.Systems[i].Landed {
				l.Fields = p.names(l.Fields)
				ss.Landed[j] = l
			}
		}
		c.Systems[i] = ss
	}
	c.Pending = make([]Pending, len(s.Pending))
	for i, pd := range s.Pending {
		pd.Fields = p.values(pd.Fields)
		c.Pending[i] = pd
	}
	if s.Hold != nil {
		h := *s.Hold
		h.Fields = append([]string(nil), h.Fields...)
		c.Hold = &h
	}
	return &c
}

// clonePool is the memory of a clone's values, the systems' images and their landed
// applies: one block of each kind, sized for the whole state.
type clonePool struct {
	vals  []Value
	buf   []byte
	seens []SeenField
	lands []Landed
	strs  []string
}

func newClonePool(s *State) clonePool {
	nv, nb, ns, nl, nn := len(s.Key), valueBytes(s.Key), 0, 0, 0
	for _, a := range s.Agreed {
		nb += len(a.Value)
	}
	for i := range s.Systems {
		ss := &s.Systems[i]
		ns, nl = ns+len(ss.Seen), nl+len(ss.Landed)
		for _, a := range ss.InFlight {
			nv, nb = nv+len(a.Fields), nb+valueBytes(a.Fields)
		}
		for _, l := range ss.Landed {
			nn += len(l.Fields)
		}
	}
	for _, p := range s.Pending {
		nv, nb = nv+len(p.Fields), nb+valueBytes(p.Fields)
	}
	p := clonePool{vals: make([]Value, 0, nv), buf: make([]byte, 0, nb)}
	if ns > 0 {
		p.seens = make([]SeenField, 0, ns)
	}
	if nl > 0 {
		p.lands = make([]Landed, 0, nl)
	}
	if nn > 0 {
		p.strs = make([]string, 0, nn)
	}
	return p
}

// seen copies an image; an empty one gives nil.
func (p *clonePool) seen(fs []SeenField) []SeenField {
	if len(fs) == 0 {
		return nil
	}
	start := len(p.seens)
	p.seens = append(p.seens, fs...)
	return p.seens[start:len(p.seens):len(p.seens)]
}

// landed returns n landed applies to fill in (n may be 0: an empty, non-nil list).
func (p *clonePool) landed(n int) []Landed {
	if n == 0 {
		return []Landed{}
	}
	start := len(p.lands)
	p.lands = p.lands[:start+n]
	return p.lands[start : start+n : start+n]
}

// bytes copies b into the pool (a copy of an empty b is empty, not nil).
func (p *clonePool) bytes(b []byte) []byte {
	start := len(p.buf)
	p.buf = append(p.buf, b...)
	return p.buf[start:len(p.buf):len(p.buf)]
}

// values copies values and their bytes into the pool; none gives nil.
func (p *clonePool) values(vs []Value) []Value {
	if len(vs) == 0 {
		return nil
	}
	start := len(p.vals)
	for _, v := range vs {
		v.Value = p.bytes(v.Value)
		p.vals = append(p.vals, v)
	}
	return p.vals[start:len(p.vals):len(p.vals)]
}

// names copies a landed apply's field names; none gives nil.
func (p *clonePool) names(ns []string) []string {
	if len(ns) == 0 {
		return nil
	}
	start := len(p.strs)
	p.strs = append(p.strs, ns...)
	return p.strs[start:len(p.strs):len(p.strs)]
}
