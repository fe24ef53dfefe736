package broker

// Flexible-request guard. kmsg's decoders read a tagged-field count and then loop that many
// times even after the input has run out (up to 2^32 iterations, minutes of CPU for a frame of
// a few bytes). Kafka's parser fails at the first read past the end. Before handing a
// flexible request body to kmsg, checkFlexible walks it with the request's schema and fails
// when a tagged-field count or an array length claims more entries than there are bytes
// left, which no valid request does; once it passes, every loop kmsg runs is bounded by the
// frame. The schemas below cover the flexible versions of every API in versions.go and are
// checked against kmsg's encoders in flexguard_test.go.

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type fieldKind uint8

const (
	fInt8 fieldKind = iota // also booleans
	fInt16
	fInt32
	fInt64
	fUUID
	fString      // compact string or nullable string
	fBytes       // compact (nullable) bytes
	fArray       // compact array of structs (sub), each ending in tagged fields
	fInt32Array  // compact array of int32
	fInt64Array  // compact array of int64
	fStringArray // compact array of compact strings
)

// field is one field of a request schema, present for versions [min, max] (max -1: open).
type field struct {
	kind     fieldKind
	min, max int16
	sub      []field
}

func f(k fieldKind) field                  { return field{kind: k, max: -1} }
func fv(k fieldKind, min, max int16) field { return field{kind: k, min: min, max: max} }
func farr(sub ...field) field              { return field{kind: fArray, max: -1, sub: sub} }
func farrv(min, max int16, sub ...field) field {
	return field{kind: fArray, min: min, max: max, sub: sub}
}
func (fd field) present(version int16) bool {
	return version >= fd.min && (fd.max < 0 || version <= fd.max)
}

// flexSchemas are the request bodies by API key, for their flexible versions.
var flexSchemas = map[kmsg.Key][]field{
	kmsg.Produce: {
		f(fString), f(fInt16), f(fInt32),
		farr(fv(fString, 0, 12), fv(fUUID, 13, -1), farr(f(fInt32), f(fBytes))),
	},
	kmsg.Fetch: {
		fv(fInt32, 0, 14), f(fInt32), f(fInt32), f(fInt32), f(fInt8), f(fInt32), f(fInt32),
		farr(fv(fString, 0, 12), fv(fUUID, 13, -1),
			farr(f(fInt32), f(fInt32), f(fInt64), f(fInt32), f(fInt64), f(fInt32))),
		farr(fv(fString, 0, 12), fv(fUUID, 13, -1), f(fInt32Array)),
		f(fString),
	},
	kmsg.ListOffsets: {
		f(fInt32), f(fInt8),
		farr(f(fString), farr(f(fInt32), f(fInt32), f(fInt64))),
		fv(fInt32, 10, -1),
	},
	kmsg.Metadata: {
		farr(fv(fUUID, 10, -1), f(fString)),
		f(fInt8), fv(fInt8, 8, 10), f(fInt8),
	},
	kmsg.ApiVersions: {f(fString), f(fString)},
	kmsg.CreateTopics: {
		farr(f(fString), f(fInt32), f(fInt16),
			farr(f(fInt32), f(fInt32Array)),
			farr(f(fString), f(fString))),
		f(fInt32), f(fInt8),
	},
	kmsg.DeleteTopics: {
		fv(fStringArray, 0, 5),
		farrv(6, -1, f(fString), f(fUUID)),
		f(fInt32),
	},
	kmsg.OffsetForLeaderEpoch: {
		f(fInt32),
		farr(f(fString), farr(f(fInt32), f(fInt32), f(fInt32))),
	},
	kmsg.DescribeConfigs: {
		farr(f(fInt8), f(fString), f(fStringArray)),
		f(fInt8), f(fInt8),
	},
	kmsg.CreatePartitions: {
		farr(f(fString), f(fInt32), farr(f(fInt32Array))),
		f(fInt32), f(fInt8),
	},
	kmsg.IncrementalAlterConfigs: {
		farr(f(fInt8), f(fString), farr(f(fString), f(fInt8), f(fString))),
		f(fInt8),
	},
	kmsg.AlterConfigs: {
		farr(f(fInt8), f(fString), farr(f(fString), f(fString))),
		f(fInt8),
	},
	kmsg.DeleteRecords: {
		farr(f(fString), farr(f(fInt32), f(fInt64))),
		f(fInt32),
	},
	kmsg.DescribeLogDirs: {farr(f(fString), f(fInt32Array))},
	kmsg.ElectLeaders: {
		fv(fInt8, 1, -1),
		farr(f(fString), f(fInt32Array)),
		f(fInt32),
	},
	kmsg.AlterPartitionAssignments: {
		f(fInt32), fv(fInt8, 1, -1),
		farr(f(fString), farr(f(fInt32), f(fInt32Array))),
	},
	kmsg.ListPartitionReassignments: {
		f(fInt32),
		farr(f(fString), f(fInt32Array)),
	},
	kmsg.DescribeCluster: {f(fInt8), fv(fInt8, 1, -1), fv(fInt8, 2, -1)},
	kmsg.OffsetCommit: {
		f(fString), f(fInt32), f(fString), f(fString),
		farr(f(fString), farr(f(fInt32), f(fInt64), f(fInt32), f(fString))),
	},
	kmsg.OffsetFetch: {
		fv(fString, 0, 7), farrv(0, 7, f(fString), f(fInt32Array)),
		farrv(8, -1, f(fString), fv(fString, 9, -1), fv(fInt32, 9, -1), farr(f(fString), f(fInt32Array))),
		fv(fInt8, 7, -1),
	},
	kmsg.FindCoordinator: {fv(fString, 0, 3), f(fInt8), fv(fStringArray, 4, -1)},
	kmsg.JoinGroup: {
		f(fString), f(fInt32), f(fInt32), f(fString), f(fString), f(fString),
		farr(f(fString), f(fBytes)), fv(fString, 8, -1),
	},
	kmsg.Heartbeat:  {f(fString), f(fInt32), f(fString), f(fString)},
	kmsg.LeaveGroup: {f(fString), farr(f(fString), f(fString), fv(fString, 5, -1))},
	kmsg.SyncGroup: {
		f(fString), f(fInt32), f(fString), f(fString), fv(fString, 5, -1), fv(fString, 5, -1),
		farr(f(fString), f(fBytes)),
	},
	kmsg.DescribeGroups: {f(fStringArray), f(fInt8)},
	kmsg.ListGroups:     {fv(fStringArray, 4, -1), fv(fStringArray, 5, -1)},
	kmsg.DeleteGroups:   {f(fStringArray)},
	kmsg.InitProducerID: {f(fString), f(fInt32), fv(fInt64, 3, -1), fv(fInt16, 3, -1)},
	kmsg.WriteTxnMarkers: {
		farr(f(fInt64), f(fInt16), f(fInt8), farr(f(fString), f(fInt32Array)), f(fInt32), fv(fInt8, 2, -1)),
	},
	kmsg.DescribeProducers: {farr(f(fString), f(fInt32Array))},
	kmsg.AddPartitionsToTxn: {
		f(fString), f(fInt64), f(fInt16), farr(f(fString), f(fInt32Array)),
	},
	kmsg.AddOffsetsToTxn: {f(fString), f(fInt64), f(fInt16), f(fString)},
	kmsg.EndTxn:          {f(fString), f(fInt64), f(fInt16), f(fInt8)},
	kmsg.TxnOffsetCommit: {
		f(fString), f(fString), f(fInt64), f(fInt16), fv(fInt32, 3, -1), fv(fString, 3, -1), fv(fString, 3, -1),
		farr(f(fString), farr(f(fInt32), f(fInt64), fv(fInt32, 2, -1), f(fString))),
	},
	kmsg.DescribeTransactions: {f(fStringArray)},
	kmsg.ListTransactions:     {f(fStringArray), f(fInt64Array), fv(fInt64, 1, -1)},
	kmsg.AlterPartition: {
		f(fInt32), f(fInt64),
		farr(fv(fString, 0, 1), fv(fUUID, 2, -1),
			farr(f(fInt32), f(fInt32), fv(fInt32Array, 0, 2), farrv(3, -1, f(fInt32), f(fInt64)), fv(fInt8, 1, -1), f(fInt32))),
	},
	kmsg.BrokerRegistration: {
		f(fInt32), f(fString), f(fUUID),
		farr(f(fString), f(fString), f(fInt16), f(fInt16)),
		farr(f(fString), f(fInt16), f(fInt16)),
		f(fString),
	},
	kmsg.BrokerHeartbeat: {f(fInt32), f(fInt64), f(fInt64), f(fInt8), f(fInt8)},
}

// fetchReplicaState is the body of Fetch's top-level tagged field 1 (ReplicaState), which kmsg
// decodes as a struct with tagged fields of its own.
var fetchReplicaState = []field{f(fInt32), f(fInt64)}

var errFlexibleOverrun = errors.New("a tagged-field count or array length claims more entries than the bytes left")

// checkFlexible walks a flexible request body of key at version and returns an error when it
// is truncated or claims more entries than it has bytes (see the file comment).
func checkFlexible(key int16, version int16, body []byte) error {
	_, err := walkFlexible(key, version, body)
	return err
}

// walkFlexible is checkFlexible returning the bytes left after the body's tagged fields.
func walkFlexible(key int16, version int16, body []byte) (int, error) {
	schema, ok := flexSchemas[kmsg.Key(key)]
	if !ok {
		return 0, fmt.Errorf("no flexible schema for %s", kmsg.NameForKey(key))
	}
	r := kbin.Reader{Src: body}
	if !walkStruct(&r, schema, version, kmsg.Key(key) == kmsg.Fetch) || !r.Ok() {
		return 0, errFlexibleOverrun
	}
	return len(r.Src), nil
}

// walkStruct skips the fields of one struct and its tagged fields; fetchTop marks Fetch's top
// level, whose tagged field 1 is itself a struct.
func walkStruct(r *kbin.Reader, schema []field, version int16, fetchTop bool) bool {
	for _, fd := range schema {
		if !fd.present(version) {
			continue
		}
		if !walkField(r, fd, version) || !r.Ok() {
			return false
		}
	}
	n := r.Uvarint()
	if int64(n) > int64(len(r.Src))/2 {
		return false
	}
	for ; n > 0 && r.Ok(); n-- {
		tag := r.Uvarint()
		val := r.Span(int(r.Uvarint()))
		if fetchTop && tag == 1 && r.Ok() {
			sub := kbin.Reader{Src: val}
			if !walkStruct(&sub, fetchReplicaState, version, false) || !sub.Ok() {
				return false
			}
		}
	}
	return r.Ok()
}

func walkField(r *kbin.Reader, fd field, version int16) bool {
	switch fd.kind {
	case fInt8:
		r.Int8()
	case fInt16:
		r.Int16()
	case fInt32:
		r.Int32()
	case fInt64:
		r.Int64()
	case fUUID:
		r.Span(16)
	case fString, fBytes:
		if l := r.Uvarint(); l > 0 {
			r.Span(int(l - 1))
		}
	case fArray, fInt32Array, fInt64Array, fStringArray:
		n := r.Uvarint()
		if n == 0 { // null
			return r.Ok()
		}
		count := int64(n - 1)
		if count > int64(len(r.Src)) { // every element takes at least one byte
			return false
		}
		for i := int64(0); i < count && r.Ok(); i++ {
			switch fd.kind {
			case fInt32Array:
				r.Int32()
			case fInt64Array:
				r.Int64()
			case fStringArray:
				walkField(r, field{kind: fString}, version)
			default:
				if !walkStruct(r, fd.sub, version, false) {
					return false
				}
			}
		}
	}
	return r.Ok()
}
