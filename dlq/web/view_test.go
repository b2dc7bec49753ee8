package web

import (
	"testing"
	"time"
)

func TestHumanAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                      "0s",
		0:                                 "0s",
		45*time.Second + time.Millisecond: "45s",
		7*time.Minute + 3*time.Second:     "7m 03s",
		3*time.Hour + 12*time.Minute + 59*time.Second: "3h 12m",
		50 * time.Hour: "2d 2h",
	} {
		if got := humanAge(d); got != want {
			t.Errorf("humanAge(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestValueCell(t *testing.T) {
	for in, want := range map[string]cell{
		``:               {},
		`"Ann"`:          {Present: true, Text: "Ann"},
		`""`:             {Present: true, Text: `""`, JSON: true},
		`"say \"hi\""`:   {Present: true, Text: `say "hi"`},
		`42`:             {Present: true, Text: "42", JSON: true},
		`null`:           {Present: true, Text: "null", JSON: true},
		`{"a":[1,true]}`: {Present: true, Text: `{"a":[1,true]}`, JSON: true},
		`"` + xss + `"`:  {Present: true, Text: xss},
	} {
		if got := valueCell(raw(in)); got != want {
			t.Errorf("valueCell(%s) = %+v, want %+v", in, got, want)
		}
	}
}

func TestUsTime(t *testing.T) {
	if got := usTime(1777640400200000); got != "2026-05-01T13:00:00.2Z" {
		t.Errorf("usTime = %q", got)
	}
	if got := usTime(0); got != "unknown" {
		t.Errorf("usTime(0) = %q", got)
	}
}
