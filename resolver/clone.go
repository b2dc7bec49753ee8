package resolver

// Clone returns a deep copy of the state, sharing no memory with it.
func (s *State) Clone() *State {
	c := *s
	c.Key = copyValues(s.Key)
	c.Agreed = make([]AgreedField, len(s.Agreed))
	for i, a := range s.Agreed {
		a.Value = cloneBytes(a.Value)
		c.Agreed[i] = a
	}
	c.Systems = make([]SystemState, len(s.Systems))
	for i, ss := range s.Systems {
		ss.Seen = append([]SeenField(nil), ss.Seen...)
		ss.InFlight = make([]Apply, len(ss.InFlight))
		for j, a := range s.Systems[i].InFlight {
			a.Fields = copyValues(a.Fields)
			ss.InFlight[j] = a
		}
		if ss.Landed != nil {
			ss.Landed = make([]Landed, len(ss.Landed))
			for j, l := range s.Systems[i].Landed {
				l.Fields = append([]Value(nil), l.Fields...)
				ss.Landed[j] = l
			}
		}
		c.Systems[i] = ss
	}
	c.Pending = make([]Pending, len(s.Pending))
	for i, p := range s.Pending {
		p.Fields = copyValues(p.Fields)
		c.Pending[i] = p
	}
	if s.Hold != nil {
		h := *s.Hold
		h.Fields = append([]string(nil), h.Fields...)
		c.Hold = &h
	}
	return &c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
