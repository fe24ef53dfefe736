package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/clientconfig"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/jaas"
	"github.com/kchaos/kchaos/rundir"
)

// startSecuredCluster starts a one-broker SASL_SSL local cluster, as `kchaos cluster up
// --security sasl_ssl` does, and returns it with the password of its user.
func startSecuredCluster(t *testing.T) (*local.Cluster, string) {
	t.Helper()
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := local.Start(ctx, local.Config{Dir: t.TempDir(), Binary: bin, Security: local.SecuritySASLSSL,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	ps, err := clientconfig.LoadProperties(c.Secured.ClientProperties)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := jaas.Parse(ps.Value("sasl.jaas.config"))
	if err != nil || mods[0].Options["password"] == "" {
		t.Fatalf("client.properties: %v", err)
	}
	return c, mods[0].Options["password"]
}

// kchaosRun runs the kchaos binary and returns its stdout and stderr; it fails the test when
// the exit status is not 0.
func kchaosRun(t *testing.T, args ...string) (string, string) {
	t.Helper()
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kchaos %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// verdictOK reports whether the results table of a run has one row per config, all ok.
func verdictOK(t *testing.T, stdout string) {
	t.Helper()
	rows := 0
	sc := bufio.NewScanner(strings.NewReader(stdout))
	inTable := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[0] == "CONFIG" {
			inTable = true
			continue
		}
		if inTable && len(f) == 9 {
			rows++
			if f[8] != "ok" || f[1] == "0" || f[1] != f[2] {
				t.Fatalf("results row %q: want sent = acked > 0 and verdict ok\n%s", sc.Text(), stdout)
			}
		}
		if inTable && len(f) == 0 {
			inTable = false
		}
	}
	if rows == 0 {
		t.Fatalf("no results row:\n%s", stdout)
	}
}

// TestRunOverSASLSSL runs the smoke workload against a SASL_SSL listener with the client
// properties file `kchaos cluster up --security sasl_ssl` wrote: the verdict passes, and no
// file the run wrote, nor its output, contains the password.
func TestRunOverSASLSSL(t *testing.T) {
	t.Parallel()
	c, password := startSecuredCluster(t)
	out := t.TempDir()
	stdout, stderr := kchaosRun(t, "run", filepath.Join("..", "..", "workloads", "smoke.yaml"), "--bootstrap", strings.Join(c.Secured.Bootstrap, ","),
		"--client-config", c.Secured.ClientProperties, "--out", out)
	verdictOK(t, stdout)
	checkNoSecret(t, password, out, map[string]string{"stdout": stdout, "stderr": stderr})
	// kchaos groups finds the run's consumer group through the same file (bootstrap.servers
	// from it).
	groups, _ := kchaosRun(t, "groups", "list", "--client-config", c.Secured.ClientProperties)
	if !strings.Contains(groups, "-sub-0") {
		t.Errorf("groups list over SASL_SSL: %q, want the run's group", groups)
	}
	// The brokers' logs do not have it either.
	checkNoSecret(t, password, filepath.Join(filepath.Dir(c.Secured.Dir), "node-1"), nil)
}

// checkNoSecret fails when secret appears in any file under dir or in any of texts, and
// makes sure the search saw the files a run writes.
func checkNoSecret(t *testing.T, secret, dir string, texts map[string]string) {
	t.Helper()
	for name, text := range texts {
		if strings.Contains(text, secret) {
			t.Errorf("%s contains the password", name)
		}
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, history.CompressedSuffix) {
			// A compressed history is searched as what it holds.
			r, err := history.OpenFile(path)
			if err != nil {
				return err
			}
			b, err = io.ReadAll(r)
			r.Close()
			if err != nil {
				return err
			}
		}
		files++
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s contains the password", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no file under %s", dir)
	}
}

// TestRunOMBDriverFile runs an OMB workload file with an OMB Kafka driver file, both as OMB
// users write them; the driver's commonConfig reaches the SASL_SSL cluster and its
// producerConfig sets the run's producer.
func TestRunOMBDriverFile(t *testing.T) {
	t.Parallel()
	c, password := startSecuredCluster(t)
	dir := t.TempDir()
	ps, err := clientconfig.LoadProperties(c.Secured.ClientProperties)
	if err != nil {
		t.Fatal(err)
	}
	var common strings.Builder
	for _, p := range ps.List() {
		common.WriteString("  " + p.Key + "=" + p.Value + "\n")
	}
	common.WriteString("  default.api.timeout.ms=1200000\n  request.timeout.ms=1200000\n")
	driver := "name: Kafka\n" +
		"driverClass: io.openmessaging.benchmark.driver.kafka.KafkaBenchmarkDriver\n" +
		"\n# Kafka client-specific configuration\n" +
		"replicationFactor: 1\n" +
		"reset: true\n" +
		"topicConfig: |\n  min.insync.replicas=1\n" +
		"commonConfig: |\n" + common.String() +
		"producerConfig: |\n  acks=all\n  linger.ms=1\n  batch.size=1048576\n" +
		"consumerConfig: |\n  auto.offset.reset=earliest\n  enable.auto.commit=false\n  max.partition.fetch.bytes=10485760\n"
	driverFile := filepath.Join(dir, "kafka.yaml")
	if err := os.WriteFile(driverFile, []byte(driver), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	stdout, stderr := kchaosRun(t, "run", filepath.Join("testdata", "omb-small.yaml"), "--driver-config", driverFile, "--out", out)
	verdictOK(t, stdout)
	if !strings.Contains(stderr, "default.api.timeout.ms has no effect") {
		t.Errorf("no note that default.api.timeout.ms has no effect:\n%s", stderr)
	}
	checkNoSecret(t, password, out, map[string]string{"stdout": stdout, "stderr": stderr})
	f, err := history.OpenFile(filepath.Join(out, "default", rundir.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var head struct {
		Run struct {
			Acks   string            `json:"acks"`
			Params map[string]string `json:"params"`
		} `json:"run"`
	}
	line, _ := bufio.NewReader(f).ReadBytes('\n')
	if err := json.Unmarshal(line, &head); err != nil {
		t.Fatal(err)
	}
	if head.Run.Params["security"] != "SASL_SSL, SCRAM-SHA-512 as kchaos" {
		t.Errorf("run header security %q", head.Run.Params["security"])
	}
	if head.Run.Acks != "all" || head.Run.Params["linger"] != "1ms" || head.Run.Params["batch_size"] != "1MiB" || head.Run.Params["topic.min.insync.replicas"] != "1" {
		t.Fatalf("run header %+v: want acks=all, linger 1ms, batch 1MiB and min.insync.replicas 1 from the driver file", head.Run)
	}
}
