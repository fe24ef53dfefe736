package clientconfig

import (
	"errors"
	"fmt"
	"os"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// OMBKafkaDriverClass is the driverClass of OpenMessaging Benchmark's Kafka driver, the only
// one kchaos can stand in for.
const OMBKafkaDriverClass = "io.openmessaging.benchmark.driver.kafka.KafkaBenchmarkDriver"

// OMBDriver is an OpenMessaging Benchmark Kafka driver file (driver-kafka/kafka*.yaml).
type OMBDriver struct {
	// File is the path the driver was read from.
	File string
	// Name is the driver's display name.
	Name string
	// DriverClass must be OMBKafkaDriverClass.
	DriverClass string
	// ReplicationFactor of the benchmark's topics; 0 when the file does not set it.
	ReplicationFactor int
	// ReplicationFactorWhere is the file:line of replicationFactor.
	ReplicationFactorWhere string
	// Reset is OMB's "delete the benchmark's topics first". kchaos always creates fresh
	// topics named after the run, so both values behave as true.
	Reset bool
	// TopicConfig are the topic configs of created topics (properties block).
	TopicConfig *Properties
	// Common are properties of every client; Producer and Consumer of producers and
	// consumers only (properties blocks).
	Common, Producer, Consumer *Properties
}

// ombFile is the YAML shape of an OMB driver file.
type ombFile struct {
	Name              string `yaml:"name"`
	DriverClass       string `yaml:"driverClass"`
	ReplicationFactor int    `yaml:"replicationFactor"`
	Reset             bool   `yaml:"reset"`
	TopicConfig       string `yaml:"topicConfig"`
	CommonConfig      string `yaml:"commonConfig"`
	ProducerConfig    string `yaml:"producerConfig"`
	ConsumerConfig    string `yaml:"consumerConfig"`
}

// LoadOMBDriver reads an OMB Kafka driver file.
func LoadOMBDriver(path string) (*OMBDriver, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clientconfig: %w", err)
	}
	return ParseOMBDriver(path, data)
}

// ParseOMBDriver parses an OMB Kafka driver file: unknown fields are errors, the config
// fields are .properties blocks whose errors name the file's own lines.
func ParseOMBDriver(file string, data []byte) (*OMBDriver, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, fmt.Errorf("clientconfig: %s: %s", file, yamlMessage(err))
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil, fmt.Errorf("clientconfig: %s: want one YAML document with the driver's fields", file)
	}
	var raw ombFile
	if err := yaml.NodeToValue(f.Docs[0].Body, &raw, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("clientconfig: %s: %s", file, yamlMessage(err))
	}
	lines := blockLines(f.Docs[0].Body)
	d := &OMBDriver{File: file, Name: raw.Name, DriverClass: raw.DriverClass, ReplicationFactor: raw.ReplicationFactor, Reset: raw.Reset}
	if raw.DriverClass != "" && raw.DriverClass != OMBKafkaDriverClass {
		return nil, fmt.Errorf("clientconfig: %s:%d: driverClass: %q is not OMB's Kafka driver; kchaos runs only %s", file, lines["driverClass"], raw.DriverClass, OMBKafkaDriverClass)
	}
	if raw.ReplicationFactor < 0 {
		return nil, fmt.Errorf("clientconfig: %s:%d: replicationFactor: %d is not allowed; must be at least 1", file, lines["replicationFactor"], raw.ReplicationFactor)
	}
	d.ReplicationFactorWhere = fmt.Sprintf("%s:%d", file, lines["replicationFactor"])
	for _, b := range []struct {
		field string
		text  string
		dst   **Properties
	}{
		{"topicConfig", raw.TopicConfig, &d.TopicConfig},
		{"commonConfig", raw.CommonConfig, &d.Common},
		{"producerConfig", raw.ProducerConfig, &d.Producer},
		{"consumerConfig", raw.ConsumerConfig, &d.Consumer},
	} {
		ps, err := ParseProperties(file, lines[b.field], []byte(b.text))
		if err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, b.field)
		}
		*b.dst = ps
	}
	return d, nil
}

// blockLines maps each top-level key to the file line where its value's text starts: the
// line after the indicator of a | or > block, else the key's own line.
func blockLines(body ast.Node) map[string]int {
	out := map[string]int{}
	var values []*ast.MappingValueNode
	switch m := body.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	}
	for _, mv := range values {
		tk := mv.Key.GetToken()
		if tk == nil || tk.Position == nil {
			continue
		}
		line := tk.Position.Line
		if _, ok := mv.Value.(*ast.LiteralNode); ok {
			if vt := mv.Value.GetToken(); vt != nil && vt.Position != nil {
				line = vt.Position.Line + 1
			}
		}
		out[tk.Value] = line
	}
	return out
}

// yamlMessage renders a go-yaml error as "LINE:COL: message".
func yamlMessage(err error) string {
	var ye yaml.Error
	if errors.As(err, &ye) {
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			return fmt.Sprintf("%d:%d: %s", tk.Position.Line, tk.Position.Column, ye.GetMessage())
		}
		return ye.GetMessage()
	}
	return err.Error()
}
