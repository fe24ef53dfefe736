package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/internal/testkit"
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
	testkit.Need(t, "root, iproute2 and network namespaces (the netns driver)", chaos.NetnsAvailable())
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
		t.Errorf("journal applied %v; want nft-table changes and one fill:\n%s\nstdout:\n%s\nstderr:\n%s", applied, faults, stdout.String(), stderr.String())
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

// longNetnsWorkload keeps a follower isolated for most of a long run.
const longNetnsWorkload = `name: netns-interrupted
topics: 1
partitionsPerTopic: 1
messageSize: 256
producerRate: 100
duration: 60s
replicationFactor: 3
producer:
  acks: all
chaos:
  - kind: isolate
    target: followers(topic-0,0)
    at: 1s
    for: 50s
`

// fabricTag returns the kchaos-RUN prefix of the fabric journalled under dir.
func fabricTag(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, chaos.FabricJournalDir, chaos.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.Index(line, `"netns":"kchaos-`); i >= 0 {
			tag := line[i+len(`"netns":"`):]
			return tag[:strings.Index(tag, "-b")]
		}
	}
	t.Fatalf("no namespace in the fabric journal:\n%s", b)
	return ""
}

// checkNothingLeft fails t if a namespace, link or mount named tag exists.
func checkNothingLeft(t *testing.T, tag string) {
	t.Helper()
	for _, argv := range [][]string{{"ip", "netns", "list"}, {"ip", "link", "show"}, {"cat", "/proc/mounts"}} {
		b, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), tag) {
			t.Errorf("%s still shows %s:\n%s", strings.Join(argv, " "), tag, b)
		}
	}
}

// processesWith returns the pids whose command line mentions s.
func processesWith(s string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, pid)
		}
	}
	return out
}

// TestRunNetnsInterrupted stops `kchaos run --chaos-driver netns` in the middle of a cut,
// once with SIGINT (the run heals itself) and once with SIGKILL (`kchaos chaos heal RUNDIR`
// heals what it left): either way no namespace, link or mount of the run is left and the
// journals have nothing pending.
func TestRunNetnsInterrupted(t *testing.T) {
	testkit.Need(t, "root, iproute2 and network namespaces (the netns driver)", chaos.NetnsAvailable())
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			var tag string
			out := interruptRun(t, bin, longNetnsWorkload, []string{"--chaos-driver", "netns", "--netns-disk", "64MiB"}, sig,
				func(b []byte) bool { return bytes.Contains(b, []byte(`"action":"nft-table"`)) },
				func(out string) { tag = fabricTag(t, filepath.Join(out, "default")) })
			for _, d := range []string{filepath.Join(out, "default"), filepath.Join(out, "default", chaos.FabricJournalDir)} {
				if p, err := chaos.ReadJournal(d); err != nil || len(p) > 0 {
					t.Errorf("journal %s has changes not undone: %+v %v", d, p, err)
				}
			}
			checkNothingLeft(t, tag)
		})
	}
}
