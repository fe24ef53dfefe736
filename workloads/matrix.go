package workloads

import (
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// MatrixAliases are short matrix keys for producer fields: a matrix may say "acks" for
// "producer.acks". Any other field is named by its dotted path ("consumer.mode",
// "replicationFactor", "topicConfig.min.insync.replicas").
var MatrixAliases = map[string]string{
	"acks":        "producer.acks",
	"batchSize":   "producer.batchSize",
	"linger":      "producer.linger",
	"compression": "producer.compression",
	"idempotence": "producer.idempotence",
	"maxInFlight": "producer.maxInFlight",
	"retries":     "producer.retries",
}

// notInMatrix are fields a matrix may not vary.
var notInMatrix = map[string]bool{"name": true, "chaos": true, "matrix": true, "description": true, "claims": true,
	"trials": true, "trialBudget": true}

// combo is one matrix combination before it is applied.
type combo struct {
	values []MatrixValue
	paths  []string
	nodes  []ast.Node
	pos    map[string]*token.Position
}

// mappingEntries returns the entries of a mapping node, or false when n is no mapping.
func mappingEntries(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

// matrixKey resolves a matrix key (an alias or a dotted path) and checks it names a field
// a matrix may set.
func matrixKey(file string, k ast.Node) (key, path string, err error) {
	key = scalarText(k)
	path = key
	if p, ok := MatrixAliases[key]; ok {
		path = p
	}
	if err := checkMatrixPath(path); err != nil {
		return "", "", fmt.Errorf("workloads: %s:%d:%d: matrix.%s: %w", file, line(k), column(k), key, err)
	}
	return key, path, nil
}

// expand lists the combinations of a matrix. A mapping of fields to lists gives every
// combination, the last key varying fastest; a list of mappings gives exactly its entries, in
// order. A nil matrix gives one empty combination.
func expand(file string, m *Raw) ([]combo, error) {
	if m == nil || m.Node == nil {
		return []combo{{}}, nil
	}
	if seq, ok := m.Node.(*ast.SequenceNode); ok {
		return expandList(file, seq)
	}
	entries, ok := mappingEntries(m.Node)
	if !ok {
		return nil, fmt.Errorf("workloads: %s:%d:%d: matrix: want a mapping of field to list of values, e.g. acks: [0, 1, all], or a list of mappings, e.g. [{acks: 1}, {acks: all, idempotence: true}]", file, m.Line, m.Column)
	}
	type axis struct {
		key, path string
		values    []ast.Node
	}
	var axes []axis
	for _, e := range entries {
		key, path, err := matrixKey(file, e.Key)
		if err != nil {
			return nil, err
		}
		seq, ok := e.Value.(*ast.SequenceNode)
		if !ok || len(seq.Values) == 0 {
			return nil, fmt.Errorf("workloads: %s:%d:%d: matrix.%s: want a non-empty list of values, e.g. [16KiB, 256KiB]", file, line(e.Value), column(e.Value), key)
		}
		axes = append(axes, axis{key: key, path: path, values: seq.Values})
	}
	combos := []combo{{}}
	for _, a := range axes {
		var next []combo
		for _, c := range combos {
			for _, v := range a.values {
				n := combo{
					values: append(append([]MatrixValue(nil), c.values...), MatrixValue{Field: a.key, Value: scalarText(v)}),
					paths:  append(append([]string(nil), c.paths...), a.path),
					nodes:  append(append([]ast.Node(nil), c.nodes...), v),
				}
				next = append(next, n)
			}
		}
		combos = next
	}
	return combos, nil
}

// expandList turns a list of mappings into one combination per entry.
func expandList(file string, seq *ast.SequenceNode) ([]combo, error) {
	if len(seq.Values) == 0 {
		return nil, fmt.Errorf("workloads: %s:%d:%d: matrix: want a non-empty list of combinations", file, line(seq), column(seq))
	}
	var combos []combo
	seen := map[string]ast.Node{}
	for _, item := range seq.Values {
		entries, ok := mappingEntries(item)
		if !ok || len(entries) == 0 {
			return nil, fmt.Errorf("workloads: %s:%d:%d: matrix: want each entry a mapping of field to value, e.g. {acks: all, idempotence: true}", file, line(item), column(item))
		}
		var c combo
		for _, e := range entries {
			key, path, err := matrixKey(file, e.Key)
			if err != nil {
				return nil, err
			}
			if _, ok := e.Value.(ast.ScalarNode); !ok {
				return nil, fmt.Errorf("workloads: %s:%d:%d: matrix.%s: want a single value in a list entry", file, line(e.Value), column(e.Value), key)
			}
			c.values = append(c.values, MatrixValue{Field: key, Value: scalarText(e.Value)})
			c.paths = append(c.paths, path)
			c.nodes = append(c.nodes, e.Value)
		}
		name := c.name()
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("workloads: %s:%d:%d: matrix: entry %s repeats the entry at line %d", file, line(item), column(item), name, line(prev))
		}
		seen[name] = item
		combos = append(combos, c)
	}
	return combos, nil
}

// name is the configuration name of a combination: its values as field=value, joined by
// commas ("default" for none).
func (c *combo) name() string {
	if len(c.values) == 0 {
		return "default"
	}
	names := make([]string, len(c.values))
	for i, v := range c.values {
		names[i] = v.Field + "=" + v.Value
	}
	return strings.Join(names, ",")
}

// checkMatrixPath reports whether path names a settable scalar field of Workload.
func checkMatrixPath(path string) error {
	if notInMatrix[path] {
		return fmt.Errorf("%s cannot vary in a matrix", path)
	}
	if strings.HasPrefix(path, "topicConfig.") {
		return nil
	}
	t := reflect.TypeFor[Workload]()
	for _, part := range strings.Split(path, ".") {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return fmt.Errorf("unknown field %q", path)
		}
		f, ok := fieldByTag(t, part)
		if !ok {
			return fmt.Errorf("unknown field %q; use a field name such as %s, or a dotted path such as consumer.mode", path, strings.Join(sortedKeys(MatrixAliases), ", "))
		}
		t = f.Type
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct || t.Kind() == reflect.Map {
		return fmt.Errorf("%s is not a single value; name one of its fields", path)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == tag {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// apply sets the combination's values on a copy of w and names the result.
func (c *combo) apply(file string, w Workload, base map[string]*token.Position) (RunConfig, error) {
	rc := RunConfig{Workload: w, File: file, Config: "default", Values: c.values}
	rc.Matrix = nil
	rc.TopicConfig = maps.Clone(w.TopicConfig)
	if w.Keys != nil {
		k := *w.Keys
		rc.Keys = &k
	}
	c.pos = maps.Clone(base)
	for i, path := range c.paths {
		n := c.nodes[i]
		if err := setPath(&rc.Workload, path, n); err != nil {
			return rc, positioned(file, err)
		}
		c.pos[path] = n.GetToken().Position
	}
	rc.Config = c.name()
	return rc, nil
}

// setPath decodes node into the field at a dotted path of w.
func setPath(w *Workload, path string, n ast.Node) error {
	if name, ok := strings.CutPrefix(path, "topicConfig."); ok {
		if w.TopicConfig == nil {
			w.TopicConfig = map[string]any{}
		}
		sn, ok := n.(ast.ScalarNode)
		if !ok {
			return &nodeError{node: n, msg: fmt.Sprintf("matrix value for %s must be a scalar", path)}
		}
		w.TopicConfig[name] = sn.GetValue()
		return nil
	}
	v := reflect.ValueOf(w).Elem()
	parts := strings.Split(path, ".")
	for i, part := range parts {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		f, _ := fieldByTag(v.Type(), part)
		v = v.FieldByIndex(f.Index)
		if i == len(parts)-1 {
			// A pointer field (producer.linger, producer.retries) gets a fresh value: decoding
			// into a pointer to a nil pointer leaves it nil for types with an unmarshaler.
			t := v.Type()
			ptr := t.Kind() == reflect.Pointer
			if ptr {
				t = t.Elem()
			}
			p := reflect.New(t)
			if err := yaml.NodeToValue(n, p.Interface(), yaml.Strict()); err != nil {
				return err
			}
			if ptr {
				v.Set(p)
			} else {
				v.Set(p.Elem())
			}
		}
	}
	return nil
}
