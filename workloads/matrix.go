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
var notInMatrix = map[string]bool{"name": true, "chaos": true, "matrix": true, "description": true}

// combo is one matrix combination before it is applied.
type combo struct {
	values []MatrixValue
	paths  []string
	nodes  []ast.Node
	pos    map[string]*token.Position
}

// expand lists the combinations of a matrix, last key varying fastest. A nil matrix gives
// one empty combination.
func expand(file string, m *Raw) ([]combo, error) {
	if m == nil || m.Node == nil {
		return []combo{{}}, nil
	}
	var entries []*ast.MappingValueNode
	switch n := m.Node.(type) {
	case *ast.MappingNode:
		entries = n.Values
	case *ast.MappingValueNode:
		entries = []*ast.MappingValueNode{n}
	default:
		return nil, fmt.Errorf("workloads: %s:%d:%d: matrix: want a mapping of field to list of values, e.g. acks: [0, 1, all]", file, m.Line, m.Column)
	}
	type axis struct {
		key, path string
		values    []ast.Node
	}
	var axes []axis
	for _, e := range entries {
		key := scalarText(e.Key)
		path := key
		if p, ok := MatrixAliases[key]; ok {
			path = p
		}
		if err := checkMatrixPath(path); err != nil {
			return nil, fmt.Errorf("workloads: %s:%d:%d: matrix.%s: %w", file, line(e.Key), column(e.Key), key, err)
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
	var names []string
	for i, path := range c.paths {
		n := c.nodes[i]
		if err := setPath(&rc.Workload, path, n); err != nil {
			return rc, positioned(file, err)
		}
		c.pos[path] = n.GetToken().Position
		names = append(names, c.values[i].Field+"="+c.values[i].Value)
	}
	if len(names) > 0 {
		rc.Config = strings.Join(names, ",")
	}
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
			p := reflect.New(v.Type())
			if err := yaml.NodeToValue(n, p.Interface(), yaml.Strict()); err != nil {
				return err
			}
			v.Set(p.Elem())
		}
	}
	return nil
}
