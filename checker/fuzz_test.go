package checker

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kchaos/kchaos/history"
)

// FuzzCheck: whatever history decodes, the analyses and the porcupine model neither panic nor
// hang, and every count agrees with its examples.
func FuzzCheck(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.jsonl")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"i":0,"t":1,"p":1,"type":"ok","f":"send","topic":"t","partition":-5,"value":"1-1","offset":9223372036854775807}
{"i":1,"t":2,"p":2,"type":"ok","f":"poll","topic":"t","records":[[-5,9223372036854775807,"1-1"],[-5,-3,"1-1"],[0,4294967296,"x"]]}
{"i":2,"t":3,"p":2,"type":"ok","f":"process","topic":"t","records":[[-5,-3,"1-1"]]}
{"i":3,"t":4,"p":2,"type":"ok","f":"commit","topic":"t","offsets":[[-5,9223372036854775807]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Check(history.NewReader(bytes.NewReader(data), "fuzz"))
		if err != nil {
			return
		}
		for _, n := range AnomalyNames {
			a := res.Anomalies[n]
			if a.Count < 0 || int64(len(a.Examples)) != min(a.Count, MaxExamples) {
				t.Fatalf("%s: count %d with %d examples", n, a.Count, len(a.Examples))
			}
		}
		if _, err := CheckLinearizable(history.NewReader(bytes.NewReader(data), "fuzz"), LinearOptions{Timeout: time.Second}); err != nil {
			t.Fatalf("porcupine: %v", err)
		}
	})
}
