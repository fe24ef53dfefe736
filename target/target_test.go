package target

import (
	"strings"
	"testing"
)

// TestSpecValidate rejects an unknown chaos driver and a netns disk size that does not parse
// before anything starts; the zero Spec (embedded, local driver) is valid, and a cluster file
// needs a bootstrap list.
func TestSpecValidate(t *testing.T) {
	if err := (Spec{ChaosDriver: "docker"}).Validate(); err == nil || !strings.Contains(err.Error(), "want local or netns") {
		t.Errorf("--chaos-driver docker: %v", err)
	}
	if err := (Spec{ChaosDriver: "netns", NetnsDisk: "lots"}).Validate(); err == nil || !strings.Contains(err.Error(), `--netns-disk "lots"`) {
		t.Errorf("--netns-disk lots: %v", err)
	}
	if err := (Spec{}).Validate(); err != nil {
		t.Errorf("default driver: %v", err)
	}
	if _, err := Open(Spec{ClusterFile: "cluster.yaml"}); err == nil || !strings.Contains(err.Error(), "give its --bootstrap too") {
		t.Errorf("--cluster-file without --bootstrap: %v", err)
	}
}
