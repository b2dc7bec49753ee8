package config_test

import (
	"fmt"

	"github.com/concord-sync/concord/config"
)

func ExampleSystem_FieldOf() {
	billing := &config.System{Fields: map[string]string{"name": "full_name"}}
	fmt.Println(billing.Column("name"), billing.FieldOf("full_name"))
	fmt.Println(billing.Column("email"), billing.FieldOf("email"))
	fmt.Printf("%q\n", billing.FieldOf("name")) // the canonical name lives in full_name
	// Output:
	// full_name name
	// email email
	// ""
}

func ExampleConfig_Validate() {
	c, err := config.Parse([]byte(`
name: contacts
systems:
  crm: {topic: crm.contacts, key: [id]}
  billing: {topic: crm.contacts, key: [id]}
authority: {email: crmm}
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Validate())
	// Output:
	// invalid configuration, 2 problems: systems.billing.topic: "crm.contacts" is also the topic of systems.crm (line 5); authority.email: "crmm" is not a system (billing, crm) or "shared" (line 6)
}
