package loadgen

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/workloads"
)

// TestConsumerCrashAtLeastOnce crashes the only consumer mid-run; committing after
// processing, every acknowledged record must still be processed by the restarted consumer.
func TestConsumerCrashAtLeastOnce(t *testing.T) {
	t.Parallel()
	for _, driver := range allDrivers {
		t.Run("driver="+driver, func(t *testing.T) {
			rc := smokeConfig(t, func(rc *workloads.RunConfig) {
				rc.Driver = driver
				rc.Duration = workloads.Duration(2 * time.Second)
				rc.Consumer.ProcessingTime = workloads.Duration(time.Millisecond)
			})
			dir := t.TempDir()
			path := filepath.Join(dir, "history.jsonl")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			hw := history.NewWriter(f)
			faults := make(chan ConsumerFault, 1)
			go func() {
				time.Sleep(time.Second)
				faults <- ConsumerFault{Consumer: 0, Kind: FaultCrash, For: 200 * time.Millisecond}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := Run(ctx, rc, Options{Bootstrap: testBootstrap(t), History: hw, Status: io.Discard, ConsumerFaults: faults,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CatchUpTimeout: 20 * time.Second})
			if cerr := hw.Close(); cerr != nil {
				t.Fatal(cerr)
			}
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != res.Acked || res.Acked != res.Drained {
				t.Fatalf("sent %d acked %d drained %d", res.Sent, res.Acked, res.Drained)
			}
			acked, processed, crashes := map[string]bool{}, map[string]bool{}, 0
			rf, _ := os.Open(path)
			defer rf.Close()
			rd := history.NewReader(rf, path)
			var e history.Event
			for {
				err := rd.Next(&e)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case e.F == history.FSend && e.Type == history.OK:
					acked[e.Value] = true
				case e.F == history.FProcess:
					for _, r := range e.Records {
						processed[r.Value] = true
					}
				case e.F == history.FCrash && e.Process == 1:
					crashes++
				}
			}
			if crashes != 1 {
				t.Fatalf("%d crash events, want 1", crashes)
			}
			missing := 0
			for v := range acked {
				if !processed[v] {
					missing++
				}
			}
			if missing > 0 {
				t.Errorf("%d of %d acknowledged records never processed after the crash (manual commit after processing must be at-least-once)", missing, len(acked))
			}
		})
	}
}
