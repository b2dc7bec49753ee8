package resolver_test

import (
	"reflect"
	"testing"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/resolver"
)

func TestRedecide(t *testing.T) {
	ver := func(system string, tsMs int64, fields ...string) resolver.Version {
		v := resolver.Version{System: system, TsUs: tsMs * 1000}
		for _, f := range fields {
			v.Fields = append(v.Fields, resolver.Value{Name: f, Value: []byte(`"` + system + `"`)})
		}
		return v
	}
	deleted := func(system string, tsMs int64) resolver.Version {
		return resolver.Version{System: system, TsUs: tsMs * 1000, Deleted: true}
	}
	tests := []struct {
		name    string
		modify  func(*config.Config)
		reasons []string
		fields  []string
		vers    []resolver.Version
		whole   bool
		want    resolver.Redecision
		ok      bool
	}{
		{
			name: "within the tolerance still undecided", reasons: []string{"clock_skew"}, fields: []string{"notes"},
			vers: []resolver.Version{ver("crm", 1000, "notes"), ver("billing", 1300, "notes")},
		},
		{
			name:   "a field given an owner goes to it",
			modify: func(c *config.Config) { c.Authority["notes"] = "billing" }, reasons: []string{"clock_skew", "attached"}, fields: []string{"notes"},
			vers: []resolver.Version{ver("crm", 1000, "notes"), ver("billing", 1300, "notes")},
			want: resolver.Redecision{Fields: map[string]string{"notes": "billing"}, Rules: map[string]resolver.Rule{"notes": "authority"}}, ok: true,
		},
		{
			name:   "an owner without a version of the field decides nothing",
			modify: func(c *config.Config) { c.Authority["notes"] = "billing" }, reasons: []string{"clock_skew"}, fields: []string{"notes"},
			vers: []resolver.Version{ver("crm", 1000, "notes"), ver("billing", 1300)},
		},
		{
			name:   "a narrower tolerance lets the later write win",
			modify: func(c *config.Config) { c.Resolution.ClockSkewTolerance.Duration = 100e6 }, reasons: []string{"clock_skew"}, fields: []string{"notes", "phone"},
			vers: []resolver.Version{ver("crm", 1000, "notes", "phone"), ver("billing", 1300, "notes", "phone")},
			want: resolver.Redecision{Fields: map[string]string{"notes": "billing", "phone": "billing"}, Rules: map[string]resolver.Rule{"notes": "lww", "phone": "lww"}}, ok: true,
		},
		{
			name:   "one field undecided keeps the whole entry",
			modify: func(c *config.Config) { c.Authority["notes"] = "billing" }, reasons: []string{"clock_skew"}, fields: []string{"notes", "phone"},
			vers: []resolver.Version{ver("crm", 1000, "notes", "phone"), ver("billing", 1300, "notes", "phone")},
		},
		{
			name:   "a whole-record entry is picked when every field goes one way",
			modify: func(c *config.Config) { c.Authority["notes"], c.Authority["phone"] = "crm", "crm" }, reasons: []string{"clock_skew"}, fields: []string{"notes", "phone"},
			vers: []resolver.Version{ver("crm", 1000, "notes", "phone"), ver("billing", 1300, "notes", "phone")}, whole: true,
			want: resolver.Redecision{Pick: "crm", Rules: map[string]resolver.Rule{"": "lww"}}, ok: true,
		},
		{
			name:   "delete_wins decides a delete against an update",
			modify: func(c *config.Config) { c.Resolution.Deletes = "delete_wins" }, reasons: []string{"delete_vs_update"}, fields: []string{"notes"},
			vers: []resolver.Version{deleted("crm", 1000), ver("billing", 1300, "notes")}, whole: true,
			want: resolver.Redecision{Pick: "crm", Rules: map[string]resolver.Rule{"": "delete_wins"}}, ok: true,
		},
		{
			name:   "update_wins picks the updater",
			modify: func(c *config.Config) { c.Resolution.Deletes = "update_wins" }, reasons: []string{"delete_vs_update"}, fields: []string{"notes"},
			vers: []resolver.Version{deleted("crm", 1000), ver("billing", 1300, "notes")}, whole: true,
			want: resolver.Redecision{Pick: "billing", Rules: map[string]resolver.Rule{"": "update_wins"}}, ok: true,
		},
		{
			name: "deletes: review still reviews", reasons: []string{"delete_vs_update"}, fields: []string{"notes"},
			vers: []resolver.Version{deleted("crm", 1000), ver("billing", 1300, "notes")}, whole: true,
		},
		{
			name:   "a reason no rule decides stays",
			modify: func(c *config.Config) { c.Authority["notes"] = "billing" }, reasons: []string{"clock_skew", "possible_redelivery"}, fields: []string{"notes"},
			vers: []resolver.Version{ver("crm", 1000, "notes"), ver("billing", 1300, "notes")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.modify != nil {
				tc.modify(cfg)
			}
			r, err := resolver.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := r.Redecide(tc.reasons, tc.fields, tc.vers, tc.whole)
			if ok != tc.ok || (ok && !reflect.DeepEqual(got, tc.want)) {
				t.Errorf("Redecide = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
