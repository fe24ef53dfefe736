package workloads

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Plan is a loaded workload file: the file as written and its expanded, validated runs.
type Plan struct {
	// File is the path or name the workload was read from.
	File string
	// Workload is the file as written, before defaults.
	Workload Workload
	// Configs has one entry per matrix combination (one entry without a matrix), in the
	// order of the matrix keys as written, the last key varying fastest.
	Configs []RunConfig
	// Claims are the claims the file is an experiment for, each side resolved to Configs.
	Claims []Claim
	// Trials is the most times the whole plan runs (Workload.Trials, default 1); TrialBudget
	// bounds their wall time (0: no bound).
	Trials      int
	TrialBudget time.Duration
}

// RunConfig is one run: a workload with defaults applied and matrix values set.
type RunConfig struct {
	// Workload is the resolved configuration; its Matrix is nil.
	Workload
	// File is the workload file.
	File string
	// Config names the combination by its matrix values, e.g. "acks=all,batchSize=16KiB";
	// "default" without a matrix.
	Config string
	// Values are the matrix values of this combination, in matrix order.
	Values []MatrixValue
	// Client are the client properties that say how clients connect (the ones that set no
	// workload field), each key once; see Options and package clientconfig.
	Client []ClientProperty
	// setBy names the client property that set a field, for validation errors.
	setBy map[string]string
}

// MatrixValue is one field's value in a matrix combination.
type MatrixValue struct {
	Field string
	Value string
}

// Load reads and validates the workload file at path.
func Load(path string) (*Plan, error) { return LoadWith(path, Options{}) }

// LoadWith is Load with client properties and topic settings from outside the file.
func LoadWith(path string, opts Options) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("workloads: %w", err)
	}
	return ParseWith(path, data, opts)
}

// Parse reads and validates a workload from data; file names it in errors and defaults
// the workload name.
func Parse(file string, data []byte) (*Plan, error) { return ParseWith(file, data, Options{}) }

// ParseWith is Parse with client properties and topic settings from outside the file.
func ParseWith(file string, data []byte, opts Options) (*Plan, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, positioned(file, err)
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil, fmt.Errorf("workloads: %s: want exactly one YAML document with a mapping", file)
	}
	body := f.Docs[0].Body
	if _, ok := body.(*ast.MappingNode); !ok {
		if _, ok := body.(*ast.MappingValueNode); !ok {
			return nil, fmt.Errorf("workloads: %s:%d: want a mapping of workload fields", file, line(body))
		}
	}
	pos := map[string]*token.Position{}
	collectPositions(body, "", pos)
	var w Workload
	if err := yaml.NodeToValue(body, &w, yaml.Strict()); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && te.Token != nil && te.Token.Position != nil {
			return nil, typeError(file, te, pos)
		}
		return nil, positioned(file, err)
	}
	for _, r := range []*Raw{w.Chaos, w.Matrix, w.Claims} {
		if r != nil {
			r.File = file
		}
	}
	if w.Name == "" {
		w.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	plan := &Plan{File: file, Workload: w}
	combos, err := expand(file, w.Matrix)
	if err != nil {
		return nil, err
	}
	var errs []error
	seen := map[string]bool{}
	for _, c := range combos {
		rc, err := c.apply(file, w, pos)
		if err == nil {
			err = rc.applyClient(c.pos, opts)
		}
		if err == nil {
			err = rc.validate(c.pos)
		}
		if err != nil {
			for _, e := range unjoin(err) {
				if !seen[e.Error()] {
					seen[e.Error()] = true
					errs = append(errs, e)
				}
			}
			continue
		}
		plan.Configs = append(plan.Configs, rc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if plan.Claims, err = parseClaims(file, w.Claims, plan.Configs); err != nil {
		return nil, err
	}
	if err := plan.trials(pos); err != nil {
		return nil, err
	}
	return plan, nil
}

// trials checks and defaults the trial settings.
func (p *Plan) trials(pos map[string]*token.Position) error {
	v := &validator{file: p.File, pos: pos}
	if _, has := pos["trials"]; has {
		v.atLeast("trials", float64(p.Workload.Trials), 1)
	}
	p.Trials = max(1, p.Workload.Trials)
	p.TrialBudget = time.Duration(p.Workload.TrialBudget)
	return errors.Join(v.errs...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// collectPositions maps dotted field paths ("producer.acks") to the position of their key.
func collectPositions(n ast.Node, prefix string, pos map[string]*token.Position) {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		return
	}
	for _, mv := range values {
		key := scalarText(mv.Key)
		if prefix != "" {
			key = prefix + "." + key
		}
		if tk := mv.Key.GetToken(); tk != nil {
			pos[key] = tk.Position
		}
		if key == "chaos" || key == "matrix" || key == "claims" {
			continue
		}
		collectPositions(mv.Value, key, pos)
	}
}

// positioned turns a go-yaml or decoding error into "workloads: file:line:col: message".
func positioned(file string, err error) error {
	var ne *nodeError
	if errors.As(err, &ne) {
		return fmt.Errorf("workloads: %s:%d:%d: %s", file, line(ne.node), column(ne.node), ne.msg)
	}
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg := ye.GetMessage()
		var ue *yaml.UnknownFieldError
		if errors.As(err, &ue) {
			msg += " (unknown fields are errors; see the Workload type for the accepted fields)"
		}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			return fmt.Errorf("workloads: %s:%d:%d: %s", file, tk.Position.Line, tk.Position.Column, msg)
		}
		return fmt.Errorf("workloads: %s: %s", file, msg)
	}
	return fmt.Errorf("workloads: %s: %w", file, err)
}

// typeError names the field whose value has the wrong type and the type it wants.
func typeError(file string, te *yaml.TypeError, pos map[string]*token.Position) error {
	p := te.Token.Position
	field := ""
	for path, kp := range pos {
		if kp.Line == p.Line && kp.Column < p.Column && (field == "" || pos[field].Column < kp.Column) {
			field = path
		}
	}
	want := te.DstType.String()
	switch te.DstType.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		want = "an integer"
	case reflect.Float64:
		want = "a number"
	case reflect.Bool:
		want = "true or false"
	case reflect.String:
		want = "a string"
	case reflect.Struct, reflect.Map:
		want = "a mapping"
	}
	if field == "" {
		field = "value"
	}
	return fmt.Errorf("workloads: %s:%d:%d: %s: %q is not allowed; want %s", file, p.Line, p.Column, field, te.Token.Value, want)
}

func line(n ast.Node) int {
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

func column(n ast.Node) int {
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Column
	}
	return 0
}
