package clientconfig

import (
	"strings"
	"testing"
)

func TestParsePropertiesFormat(t *testing.T) {
	in := "# a comment\n" +
		"! another comment\n" +
		"\n" +
		"security.protocol=SASL_SSL\n" +
		"   sasl.mechanism : SCRAM-SHA-512\n" +
		"bootstrap.servers   a:9092,b:9092\n" +
		"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n" +
		"    username=\"alice\" \\\n" +
		"    password=\"s3cr=t\";\n" +
		"key\\ with\\:colon=v\\tal\\u0041\\\\\n" +
		"empty=\n" +
		"lonely\n" +
		"emoji=\\uD83D\\uDE00\n" +
		"security.protocol=SSL\r\n" +
		"last=at-end\\"
	ps, err := ParseProperties("c.properties", 1, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ key, value, where string }{
		{"security.protocol", "SSL", "c.properties:14"},
		{"sasl.mechanism", "SCRAM-SHA-512", "c.properties:5"},
		{"bootstrap.servers", "a:9092,b:9092", "c.properties:6"},
		{"sasl.jaas.config", `org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="s3cr=t";`, "c.properties:7"},
		{"key with:colon", "v\talA\\", "c.properties:10"},
		{"empty", "", "c.properties:11"},
		{"lonely", "", "c.properties:12"},
		{"emoji", "\U0001F600", "c.properties:13"},
		{"last", "at-end", "c.properties:15"},
	}
	got := ps.List()
	if len(got) != len(want) {
		t.Fatalf("got %d properties, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Key != w.key || got[i].Value != w.value || got[i].Where != w.where {
			t.Errorf("property %d = %q=%q at %s; want %q=%q at %s", i, got[i].Key, got[i].Value, got[i].Where, w.key, w.value, w.where)
		}
	}
}

func TestParsePropertiesLatin1(t *testing.T) {
	ps, err := ParseProperties("l.properties", 1, []byte("name=caf\xe9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v := ps.Value("name"); v != "café" {
		t.Fatalf("value %q, want café (ISO-8859-1 input)", v)
	}
}

func TestParsePropertiesErrorsNameFileLineAndKey(t *testing.T) {
	_, err := ParseProperties("bad.properties", 1, []byte("a=1\nsasl.jaas.config=x\\u12G4\n"))
	if err == nil || !strings.Contains(err.Error(), "bad.properties:2: sasl.jaas.config: malformed") {
		t.Fatalf("err = %v; want file:line and key", err)
	}
}
