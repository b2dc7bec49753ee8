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
		ss.Seen = append([]SeenField(nil), ss.Seen...)
		ss.InFlight = make([]Apply, len(ss.InFlight))
		for j, a := range s.Systems[i].InFlight {
			a.Fields = p.values(a.Fields)
			ss.InFlight[j] = a
		}
		if ss.Landed != nil {
			ss.Landed = make([]Landed, len(ss.Landed))
			for j, l := range s.Systems[i].Landed {
				l.Fields = p.fingerprints(l.Fields)
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

// clonePool is the memory of a clone's values: one block for their Value structs and
// one for their bytes, each sized for the whole state.
type clonePool struct {
	vals []Value
	buf  []byte
}

func newClonePool(s *State) clonePool {
	nv, nb := len(s.Key), valueBytes(s.Key)
	for _, a := range s.Agreed {
		nb += len(a.Value)
	}
	for i := range s.Systems {
		for _, a := range s.Systems[i].InFlight {
			nv, nb = nv+len(a.Fields), nb+valueBytes(a.Fields)
		}
		for _, l := range s.Systems[i].Landed {
			nv += len(l.Fields)
		}
	}
	for _, p := range s.Pending {
		nv, nb = nv+len(p.Fields), nb+valueBytes(p.Fields)
	}
	return clonePool{vals: make([]Value, 0, nv), buf: make([]byte, 0, nb)}
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

// fingerprints copies values as they are, bytes shared (a landed apply's have none).
func (p *clonePool) fingerprints(vs []Value) []Value {
	if len(vs) == 0 {
		return nil
	}
	start := len(p.vals)
	p.vals = append(p.vals, vs...)
	return p.vals[start:len(p.vals):len(p.vals)]
}
