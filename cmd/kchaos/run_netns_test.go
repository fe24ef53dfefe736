package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/chaos"
)

// netnsWorkload isolates a follower, then fills the leader's disk, on a 3-broker cluster.
const netnsWorkload = `name: netns-run
topics: 1
partitionsPerTopic: 1
messageSize: 256
producerRate: 200
duration: 9s
replicationFactor: 3
topicConfig:
  min.insync.replicas: 2
producer:
  acks: all
consumer:
  commit: manual-after-processing
chaos:
  - kind: isolate
    target: followers(topic-0,0)
    at: 2s
    for: 3s
  - kind: disk-full
    target: leader(topic-0,0)
    at: 6s
    for: 1s
`

// TestRunNetnsDriver runs a workload with `kchaos run --chaos-driver netns`: it must pass the
// checker, journal the nftables tables and the disk filler with their undos, and leave none
// of the fabric's namespaces, links or mounts behind.
func TestRunNetnsDriver(t *testing.T) {
	if err := chaos.NetnsAvailable(); err != nil {
		t.Skipf("the netns driver needs root and network namespaces: %v", err)
	}
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wl := filepath.Join(dir, "w.yaml")
	if err := os.WriteFile(wl, []byte(netnsWorkload), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "run", wl, "--out", out, "--chaos-driver", "netns", "--netns-disk", "64MiB")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kchaos run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Log(strings.SplitN(stdout.String(), "\n", 2)[0])
	applied := map[string]int{}
	faults, err := os.ReadFile(filepath.Join(out, "default", chaos.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(faults), "\n") {
		for _, a := range []string{"nft-table", "fill"} {
			if strings.Contains(line, `"op":"apply"`) && strings.Contains(line, `"action":"`+a+`"`) {
				applied[a]++
			}
		}
	}
	if applied["nft-table"] == 0 || applied["fill"] != 1 {
		t.Errorf("journal applied %v; want nft-table changes and one fill:\n%s", applied, faults)
	}
	for _, d := range []string{filepath.Join(out, "default"), filepath.Join(out, "default", chaos.FabricJournalDir)} {
		if p, err := chaos.ReadJournal(d); err != nil || len(p) > 0 {
			t.Errorf("journal %s has changes not undone: %+v %v", d, p, err)
		}
	}
	fabric, err := os.ReadFile(filepath.Join(out, "default", chaos.FabricJournalDir, chaos.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	var ns string
	for _, line := range strings.Split(string(fabric), "\n") {
		if i := strings.Index(line, `"netns":"`); i >= 0 && ns == "" {
			ns = line[i+len(`"netns":"`):]
			ns = ns[:strings.Index(ns, "-b")]
		}
	}
	if ns == "" {
		t.Fatalf("no namespace in the fabric journal:\n%s", fabric)
	}
	for _, argv := range [][]string{{"ip", "netns", "list"}, {"ip", "link", "show"}, {"cat", "/proc/mounts"}} {
		b, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), ns) {
			t.Errorf("%s still shows %s after the run:\n%s", strings.Join(argv, " "), ns, b)
		}
	}
}

// TestRunChaosDriverFlag rejects an unknown driver before starting anything.
func TestRunChaosDriverFlag(t *testing.T) {
	err := targetOpts{driver: "docker"}.validate()
	if err == nil || !strings.Contains(err.Error(), "want local or netns") {
		t.Errorf("--chaos-driver docker: %v", err)
	}
	if err := (targetOpts{driver: "netns", netnsDisk: "lots"}).validate(); err == nil {
		t.Error("--netns-disk lots accepted")
	}
	if err := (targetOpts{}).validate(); err != nil {
		t.Errorf("default driver: %v", err)
	}
}
