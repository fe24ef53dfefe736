package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientsSection turns the fixture's three configurations into one configuration run by
// three drivers (folders and history headers rewritten): the report must set them side by
// side in driver order, with each client library's version in the header, and the summary
// must still validate.
func TestClientsSection(t *testing.T) {
	dir := t.TempDir()
	if err := copyFixture(dir); err != nil {
		t.Fatal(err)
	}
	libs := map[string][2]string{"franz-go": {"github.com/twmb/franz-go", "v1.22.2"}, "kafka-go": {"github.com/segmentio/kafka-go", "v0.4.51"},
		"sarama": {"github.com/IBM/sarama", "v1.61.1"}}
	for cfg, driver := range map[string]string{"acks=0": "kafka-go", "acks=1": "franz-go", "acks=all": "sarama"} {
		path := filepath.Join(dir, cfg, HistoryFile)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		header, rest, _ := strings.Cut(string(b), "\n")
		header = strings.Replace(header, `"config":"`+cfg+`"`, `"config":"driver=`+driver+`"`, 1)
		header = strings.Replace(header, `"driver":"franz-go"`, `"driver":"`+driver+`"`, 1)
		header = strings.Replace(header, `"params":{`, `"params":{"client_library":"`+libs[driver][0]+`","client_version":"`+libs[driver][1]+`",`, 1)
		if err := os.WriteFile(path, []byte(header+"\n"+rest), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, cfg), filepath.Join(dir, "driver="+driver)); err != nil {
			t.Fatal(err)
		}
	}
	run, err := Generate(dir, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	validateSummary(t, dir)
	s := &run.Summary
	if len(s.Clients) != 1 || s.Clients[0].Configs != "default" || len(s.Clients[0].Drivers) != 3 {
		t.Fatalf("clients: %+v", s.Clients)
	}
	var order []string
	for _, d := range s.Clients[0].Drivers {
		order = append(order, d.Driver)
		c := s.Config(d.Config)
		if c == nil || d.Library != libs[d.Driver][0] || d.Version != libs[d.Driver][1] || d.Counts != c.Counts || d.MsgsPerSec != c.Throughput.MsgsPerSec {
			t.Errorf("%s: %+v, config %+v", d.Driver, d, c)
		}
	}
	if strings.Join(order, ",") != "sarama,franz-go,kafka-go" {
		t.Errorf("drivers in order %v, want sarama, franz-go, kafka-go", order)
	}
	if s.Versions["github.com/segmentio/kafka-go"] != "v0.4.51" {
		t.Errorf("versions: %v", s.Versions)
	}
	page, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<h2 id="clients">Clients</h2>`, "github.com/segmentio/kafka-go v0.4.51", `kafka-go</a>`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

// TestCompareClientsGroupsByConfigWithoutDriver: configurations pair up by their name less
// the driver part; a configuration only one driver ran is not compared.
func TestCompareClientsGroupsByConfigWithoutDriver(t *testing.T) {
	cfg := func(name, driver string) ConfigSummary {
		return ConfigSummary{Name: name, Dir: name, Params: map[string]string{"driver": driver}, Anomalies: map[string]int64{"lost": 0, "duplicate": 2}}
	}
	s := &Summary{Configs: []ConfigSummary{
		cfg("acks=1,driver=kafka-go", "kafka-go"), cfg("acks=all,driver=kafka-go", "kafka-go"),
		cfg("acks=1,driver=confluent", "confluent"), cfg("acks=1,driver=sarama", "sarama"), cfg("acks=0", "franz-go"),
	}}
	got := CompareClients(s)
	if len(got) != 1 || got[0].Configs != "acks=1" || len(got[0].Drivers) != 3 {
		t.Fatalf("comparisons %+v", got)
	}
	d := got[0].Drivers
	if d[0].Driver != "sarama" || d[1].Driver != "kafka-go" || d[2].Driver != "confluent" {
		t.Errorf("order %s, %s, %s", d[0].Driver, d[1].Driver, d[2].Driver)
	}
	if len(d[0].Anomalies) != 1 || d[0].Anomalies["duplicate"] != 2 {
		t.Errorf("anomalies %v: want the non-zero ones", d[0].Anomalies)
	}
}
