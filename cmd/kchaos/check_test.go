package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kchaos/kchaos/checker"
)

func copyFixture(t *testing.T, name, dst string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "checker", "testdata", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func runCheck(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetArgs(append([]string{"check"}, args...))
	err := root.Execute()
	if err == nil {
		return out.String(), 0
	}
	return out.String() + err.Error(), exitCode(err)
}

func TestCheckCommandExitStatus(t *testing.T) {
	dir := t.TempDir()
	copyFixture(t, "lost-ok", filepath.Join(dir, "run", "acks=all", "history.jsonl"))
	if out, code := runCheck(t, filepath.Join(dir, "run")); code != 0 {
		t.Fatalf("good run: exit %d\n%s", code, out)
	}
	copyFixture(t, "lost-bad", filepath.Join(dir, "run", "acks=1", "history.jsonl"))
	out, code := runCheck(t, filepath.Join(dir, "run"))
	if code != 1 || !strings.Contains(out, "lost") || !strings.Contains(out, "1 of 2 histories") {
		t.Fatalf("bad run: exit %d\n%s", code, out)
	}
	var res checker.Result
	b, err := os.ReadFile(filepath.Join(dir, "run", "acks=1", "verdict.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Verdict != checker.StatusFail || res.Anomalies[checker.Lost].Count != 1 {
		t.Fatalf("verdict.json: verdict %s lost %d", res.Verdict, res.Anomalies[checker.Lost].Count)
	}
}

func TestCheckCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "history.jsonl")
	os.WriteFile(p, []byte("{\"i\":0,\"t\":0,\"p\":1,\"type\":\"ok\",\"f\":\"poll\"}\n{\"i\":1,\n"), 0o644)
	out, code := runCheck(t, p)
	if code != 2 || !strings.Contains(out, p+":2") {
		t.Fatalf("exit %d, want 2 with file:line\n%s", code, out)
	}
	if _, code := runCheck(t, filepath.Join(dir, "missing")); code != 2 {
		t.Fatalf("missing path: exit %d, want 2", code)
	}
}
