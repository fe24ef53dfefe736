package workloads

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed *.yaml
var shipped embed.FS

// Shipped lists the workload files shipped with kchaos, sorted by name ("demo.yaml", ...).
func Shipped() []string {
	names, _ := fs.Glob(shipped, "*.yaml")
	sort.Strings(names)
	return names
}

// Open loads a shipped workload file by name, e.g. "smoke.yaml".
func Open(name string) (*Plan, error) {
	data, err := shipped.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("workloads: shipped workload %q: %w", name, err)
	}
	return Parse("workloads/"+name, data)
}
