package jaas

import (
	"strings"
	"testing"
)

func TestParseJAAS(t *testing.T) {
	mods, err := Parse(`/* c */ org.apache.kafka.common.security.plain.PlainLoginModule REQUIRED
		username=alice // the user
		password="p\"w;d" extension_traceId=abc;`)
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 1 || mods[0].Class != PlainLoginModule || mods[0].Flag != "required" {
		t.Fatalf("modules %+v", mods)
	}
	if o := mods[0].Options; o["username"] != "alice" || o["password"] != `p"w;d` || o["extension_traceId"] != "abc" {
		t.Fatalf("options %v", o)
	}
	for _, bad := range []string{
		"",
		"X required",
		"X mandatory a=b;",
		`X required password="unterminated`,
		"X required a b;",
	} {
		_, err := Parse(bad)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
			continue
		}
		if strings.Contains(err.Error(), "unterminated") && strings.Contains(err.Error(), "unterminated\"") {
			t.Errorf("error quotes the value: %v", err)
		}
	}
}
