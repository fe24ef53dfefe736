package target

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kchaos/kchaos/rundir"
)

// TestSamplerRecordsProcessAndMetrics samples this test process while it burns CPU and
// writes to disk, and scrapes a Prometheus endpoint that serves one metric under two label
// sets, as a broker serving several partitions does.
func TestSamplerRecordsProcessAndMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# TYPE kafka_server_replicamanager_underreplicatedpartitions gauge\n"+
			"kafka_server_replicamanager_underreplicatedpartitions{topic=\"a\"} 2\n"+
			"kafka_server_replicamanager_underreplicatedpartitions{topic=\"b\"} 1\n"+
			"# TYPE kafka_server_replicamanager_isrshrinks_total counter\n"+
			"kafka_server_replicamanager_isrshrinks_total 7\n")
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	metrics := []string{"kafka_server_replicamanager_underreplicatedpartitions", "kafka_server_replicamanager_isrshrinks_total", "kafka_controller_kafkacontroller_activecontrollercount"}
	s := StartSampler(SamplerConfig{Interval: 100 * time.Millisecond, Metrics: metrics, Targets: func() []SampleTarget {
		return []SampleTarget{{Name: "self", Pid: os.Getpid(), MetricsAddr: addr}, {Name: "down", Pid: 0}}
	}})
	// Burn CPU and write 4 MiB with fsync for half a second.
	f, err := os.Create(filepath.Join(t.TempDir(), "w"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	x := 0
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); {
		for i := range 1 << 16 {
			x ^= i * i
		}
		if _, err := f.Write(buf); err == nil && x != 1 {
			_ = f.Sync()
		}
	}
	f.Close()
	path := filepath.Join(t.TempDir(), rundir.ResourcesFile)
	if err := s.StopAndWrite(path); err != nil {
		t.Fatal(err)
	}
	var r rundir.Resources
	if b, err := os.ReadFile(path); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("resources.json: %v", err)
	}
	self := r.Processes["self"]
	if self == nil || len(self.T) < 4 {
		t.Fatalf("want ≥ 4 samples of self in 0.5s at 100ms, got %+v", self)
	}
	var cpu float64
	var wrote int64
	for i := range self.T {
		cpu = max(cpu, self.CPU[i])
		wrote += self.WriteBytes[i]
		if self.RSS[i] <= 0 || self.Pid[i] != os.Getpid() {
			t.Errorf("sample %d: rss %d pid %d", i, self.RSS[i], self.Pid[i])
		}
	}
	if cpu < 20 {
		t.Errorf("busy loop measured at most %.1f%% CPU", cpu)
	}
	if wrote < 1<<20 {
		t.Errorf("measured %d bytes written, wrote at least 1 MiB with fsync", wrote)
	}
	// A scrape can time out on a loaded machine; judge the last sample that has the metric.
	lastOf := func(name string) *float64 {
		for i := len(self.T) - 1; i >= 0; i-- {
			if v := self.Metrics[name][i]; v != nil {
				return v
			}
		}
		return nil
	}
	if v := lastOf(metrics[0]); v == nil || *v != 3 {
		t.Errorf("under-replicated partitions summed over label sets: %v, want 3", v)
	}
	if v := lastOf(metrics[1]); v == nil || *v != 7 {
		t.Errorf("ISR shrinks: %v, want 7", v)
	}
	if v := lastOf(metrics[2]); v != nil {
		t.Errorf("a metric the endpoint does not serve must be absent, got %v", *v)
	}
	if down := r.Processes["down"]; down == nil || down.Pid[0] != 0 || down.RSS[0] != 0 {
		t.Errorf("a process that is down: %+v", down)
	}
}
