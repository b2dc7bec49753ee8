package hostile

import (
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	got, err := Generate([]byte("# a comment\n\ntext {\"a\":[\nrepeat 3 ,\"c{i}\"\ntext ]}\nrepeat 2 x\n"))
	if err != nil || string(got) != `{"a":[,"c0","c1","c2"]}xx` {
		t.Errorf("Generate = %q, %v", got, err)
	}
	for _, bad := range []string{"repeat many x", "repeat -1 x", "echo x", "repeat 100000000 xxxxxxxxxx"} {
		if _, err := Generate([]byte(bad)); err == nil {
			t.Errorf("Generate(%q) took it", bad)
		}
	}
}

func TestParseTable(t *testing.T) {
	const head = "| case | system | outcome | reason contains | why |\n|---|---|---|---|---|\n"
	cases, err := parseTable([]byte("# x\n\n" + head + "| `a` | crm | poison | `not JSON` | cut short |\n| `b` | billing | tombstone | - | fine |\n\nafter\n"))
	if err != nil || len(cases) != 2 || cases[1].Outcome != Tombstone {
		t.Fatalf("parseTable = %+v, %v", cases, err)
	}
	if c := cases[0]; c.Name != "a" || c.System != "crm" || c.Outcome != Poison || c.Reason != "not JSON" || c.Why != "cut short" {
		t.Errorf("parseTable = %+v, %v", cases, err)
	}
	for _, bad := range []string{
		head + "| `a` | crm | sideways | - | x |\n",
		head + "| `a` | crm | poison | - | no reason |\n",
		head + "| `a` | crm | poison |\n",
		"no table\n",
	} {
		if _, err := parseTable([]byte(bad)); err == nil {
			t.Errorf("parseTable took %q", strings.TrimPrefix(bad, head))
		}
	}
}
