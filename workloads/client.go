package workloads

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/token"
)

// ClientProperty is a Kafka client property given to a run: from the workload's client: map,
// an OMB driver file's config blocks or a --client-config file.
type ClientProperty struct {
	// Key is the property name, Kafka's spelling.
	Key string
	// Value is its value; it may be a secret (a password in sasl.jaas.config): never print it.
	Value string
	// Where names the source: "FILE:LINE" or "FILE:LINE:COL".
	Where string
	// Scope is the clients it applies to: "" every client, ScopeProducer or ScopeConsumer
	// (an OMB driver's producerConfig and consumerConfig).
	Scope string
}

// Client property scopes.
const (
	ScopeProducer = "producer"
	ScopeConsumer = "consumer"
)

// Options are a workload's inputs from outside its file.
type Options struct {
	// Client are client properties after the workload's own client: map, later entries
	// winning over earlier ones as in Kafka's layered configs (an OMB driver file's blocks,
	// then a --client-config file).
	Client []ClientProperty
	// ReplicationFactor, when not 0, and TopicConfig (an OMB driver file's) apply where the
	// workload does not set them; a workload value that differs is an error.
	ReplicationFactor      int
	ReplicationFactorWhere string
	TopicConfig            []ClientProperty
}

// clientSetting maps a Kafka producer or consumer property onto a workload field.
type clientSetting struct {
	scope string
	// field is the workload field's dotted path.
	field string
	// unit converts the value: "ms" (milliseconds to Duration), "bytes", "int", "bool" or ""
	// (the string as is).
	unit string
}

// clientSettings are the producer and consumer properties that set workload fields, so a
// properties file or an OMB driver file configures a run as the workload's own fields would.
// Both drivers honour every one.
var clientSettings = map[string]clientSetting{
	"acks":                                  {ScopeProducer, "producer.acks", ""},
	"linger.ms":                             {ScopeProducer, "producer.linger", "ms"},
	"batch.size":                            {ScopeProducer, "producer.batchSize", "bytes"},
	"compression.type":                      {ScopeProducer, "producer.compression", ""},
	"enable.idempotence":                    {ScopeProducer, "producer.idempotence", "bool"},
	"max.in.flight.requests.per.connection": {ScopeProducer, "producer.maxInFlight", "int"},
	"retries":                               {ScopeProducer, "producer.retries", "int"},
	"request.timeout.ms":                    {ScopeProducer, "producer.requestTimeout", "ms"},
	"delivery.timeout.ms":                   {ScopeProducer, "producer.deliveryTimeout", "ms"},
	"isolation.level":                       {ScopeConsumer, "consumer.isolationLevel", ""},
	"enable.auto.commit":                    {ScopeConsumer, "consumer.commit", "bool"},
	"auto.commit.interval.ms":               {ScopeConsumer, "consumer.autoCommitInterval", "ms"},
	"session.timeout.ms":                    {ScopeConsumer, "consumer.sessionTimeout", "ms"},
	"heartbeat.interval.ms":                 {ScopeConsumer, "consumer.heartbeatInterval", "ms"},
	"max.poll.interval.ms":                  {ScopeConsumer, "consumer.maxPollInterval", "ms"},
	"fetch.min.bytes":                       {ScopeConsumer, "consumer.fetchMinBytes", "bytes"},
	"fetch.max.wait.ms":                     {ScopeConsumer, "consumer.fetchMaxWait", "ms"},
	"fetch.max.bytes":                       {ScopeConsumer, "consumer.fetchMaxBytes", "bytes"},
	"max.partition.fetch.bytes":             {ScopeConsumer, "consumer.maxPartitionFetchBytes", "bytes"},
	"max.poll.records":                      {ScopeConsumer, "consumer.maxPollRecords", "int"},
	"auto.offset.reset":                     {ScopeConsumer, "", ""},
}

// IsClientSetting reports whether a Kafka client property sets a workload field (acks,
// linger.ms, fetch.min.bytes, ...) rather than how clients connect.
func IsClientSetting(key string) bool {
	_, ok := clientSettings[key]
	return ok
}

var clientKeyPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)

// clientProperties lists the workload's client: map (lowest precedence) and then opts.Client,
// each key once with its last value.
func (rc *RunConfig) clientProperties(v *validator, opts Options) []ClientProperty {
	var out []ClientProperty
	add := func(p ClientProperty) {
		for i := range out {
			if out[i].Key == p.Key {
				out = slices.Delete(out, i, i+1)
				break
			}
		}
		out = append(out, p)
	}
	for _, k := range slices.Sorted(maps.Keys(rc.Workload.Client)) {
		field := "client." + k
		val := rc.Workload.Client[k]
		if !clientKeyPattern.MatchString(k) {
			v.errf(field, "%q is not a Kafka client property name (words joined by dots)", k)
			continue
		}
		switch val.(type) {
		case map[string]any, []any, nil:
			v.errf(field, "want a single value")
			continue
		}
		where := v.file
		if p := v.pos[field]; p != nil {
			where = fmt.Sprintf("%s:%d:%d", v.file, p.Line, p.Column)
		}
		add(ClientProperty{Key: k, Value: fmt.Sprint(val), Where: where})
	}
	for _, p := range opts.Client {
		add(p)
	}
	return out
}

// applyClient sets the fields that client properties and an OMB driver's replication factor
// and topic configs name, before defaults are filled. A field the workload or its matrix sets
// explicitly (pos) keeps its value; a property that says otherwise is an error naming both.
// The remaining properties (how clients connect) go to rc.Client.
func (rc *RunConfig) applyClient(pos map[string]*token.Position, opts Options) error {
	v := &validator{file: rc.File, pos: pos}
	explicit := func(field string) string {
		if p := pos[field]; p != nil {
			return fmt.Sprintf("%s:%d:%d", rc.File, p.Line, p.Column)
		}
		return ""
	}
	fail := func(where, key, format string, args ...any) {
		v.errs = append(v.errs, fmt.Errorf("workloads: %s: %s: %s", where, key, fmt.Sprintf(format, args...)))
	}
	if n := opts.ReplicationFactor; n != 0 {
		if at := explicit("replicationFactor"); at != "" && rc.ReplicationFactor != n {
			fail(opts.ReplicationFactorWhere, "replicationFactor", "%d contradicts replicationFactor: %d at %s", n, rc.ReplicationFactor, at)
		} else {
			rc.ReplicationFactor = n
		}
	}
	for _, p := range opts.TopicConfig {
		field := "topicConfig." + p.Key
		if old, ok := rc.TopicConfig[p.Key]; ok && fmt.Sprint(old) != p.Value {
			fail(p.Where, p.Key, "%q contradicts %s: %v at %s", p.Value, field, old, explicit(field))
			continue
		}
		if rc.TopicConfig == nil {
			rc.TopicConfig = map[string]any{}
		}
		rc.TopicConfig[p.Key] = p.Value
	}
	rc.Client = nil
	for _, p := range rc.clientProperties(v, opts) {
		s, ok := clientSettings[p.Key]
		if !ok {
			rc.Client = append(rc.Client, p)
			continue
		}
		if p.Scope != "" && p.Scope != s.scope {
			fail(p.Where, p.Key, "a %s property; it cannot be in the %s configuration", s.scope, p.Scope)
			continue
		}
		at := explicit(s.field)
		if err := rc.applySetting(p, s, at); err != nil {
			fail(p.Where, p.Key, "%s", err.Error())
		} else if at == "" && s.field != "" {
			if rc.setBy == nil {
				rc.setBy = map[string]string{}
			}
			rc.setBy[s.field] = p.Where + " (" + p.Key + ")"
		}
	}
	return errors.Join(v.errs...)
}

// applySetting sets one property's field; at is where the workload set the field explicitly,
// or "".
func (rc *RunConfig) applySetting(p ClientProperty, s clientSetting, at string) error {
	val := strings.TrimSpace(p.Value)
	switch p.Key {
	case "auto.offset.reset":
		if val != "earliest" {
			return fmt.Errorf("%q is not honoured: kchaos consumers read from the earliest offset when their group has none; allowed: earliest", val)
		}
		return nil
	case "enable.auto.commit":
		auto, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("%q is not allowed; allowed: true, false", val)
		}
		if at != "" {
			if auto != (rc.Consumer.Commit == CommitAuto) {
				return fmt.Errorf("%s contradicts consumer.commit: %s at %s", val, rc.Consumer.Commit, at)
			}
			return nil
		}
		rc.Consumer.Commit = CommitAfterProcessing
		if auto {
			rc.Consumer.Commit = CommitAuto
		}
		return nil
	case "batch.size":
		if val == "0" {
			return fmt.Errorf("0 (no batching) is not honoured by the drivers; use 1")
		}
	}
	f := fieldAt(&rc.Workload, s.field)
	nv := reflect.New(f.Type()).Elem()
	target := nv
	if target.Kind() == reflect.Pointer {
		target.Set(reflect.New(target.Type().Elem()))
		target = target.Elem()
	}
	switch s.unit {
	case "ms":
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil || n < 0 || n > int64(1<<62)/int64(time.Millisecond) {
			return fmt.Errorf("%q is not allowed; want milliseconds (an integer of at least 0)", val)
		}
		target.SetInt(n * int64(time.Millisecond))
	case "bytes", "int":
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil || n < 0 || (s.unit == "int" && n > 1<<31-1) {
			return fmt.Errorf("%q is not allowed; want an integer of at least 0", val)
		}
		target.SetInt(n)
	case "bool":
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("%q is not allowed; allowed: true, false", val)
		}
		target.SetBool(b)
	default:
		target.SetString(val)
	}
	if at != "" {
		old, now := f, nv
		if old.Kind() == reflect.Pointer && !old.IsNil() {
			old, now = old.Elem(), now.Elem()
		}
		if !reflect.DeepEqual(old.Interface(), now.Interface()) {
			return fmt.Errorf("%q contradicts %s: %v at %s", val, s.field, old.Interface(), at)
		}
		return nil
	}
	f.Set(nv)
	return nil
}

// fieldAt returns the settable field at a dotted path of w (a path of clientSettings).
func fieldAt(w *Workload, path string) reflect.Value {
	v := reflect.ValueOf(w).Elem()
	for _, part := range strings.Split(path, ".") {
		f, _ := fieldByTag(v.Type(), part)
		v = v.FieldByIndex(f.Index)
	}
	return v
}
