package broker

// DescribeLogDirs (key 35), versions 1-5.
//
// Behaviour: the broker has one log directory, its data directory (absolute path). For it,
// the partitions this broker hosts (all, or those of the Topics asked for; partitions it does
// not host are left out) with Size (bytes of the segment files) and OffsetLag computed as
// Kafka does for a current replica: max(high watermark - log end offset, 0). v4+ adds the
// volume's TotalBytes and UsableBytes (statfs; -1 when unknown); IsCordoned (v5) is always
// false. When the directory is gone, is not a directory, or a log in it failed a write it
// could not undo, the directory is offline: KAFKA_STORAGE_ERROR and no topics, as Kafka
// reports an offline log dir. What differs from Kafka: one log directory per broker
// (log.dirs with several entries is not supported), and no future replicas (IsFuture is
// always false: AlterReplicaLogDirs is not served).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

func handleDescribeLogDirs(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	b := c.b
	d := kmsg.NewDescribeLogDirsResponseDir()
	d.Dir = b.cfg.DataDir
	if abs, err := filepath.Abs(d.Dir); err == nil {
		d.Dir = abs
	}
	var st unix.Statfs_t
	if err := unix.Statfs(d.Dir, &st); err == nil {
		d.TotalBytes, d.UsableBytes = int64(st.Blocks)*int64(st.Bsize), int64(st.Bavail)*int64(st.Bsize)
	}
	var want map[string][]int32
	if r.Topics != nil {
		want = map[string][]int32{}
		for _, rt := range r.Topics {
			want[rt.Topic] = append(want[rt.Topic], rt.Partitions...)
		}
	}
	parts := b.allPartitions()
	if err := b.logDirOffline(parts); err != nil {
		b.log.Warn("log directory offline", "dir", d.Dir, "err", err)
		d.ErrorCode = kerr.KafkaStorageError.Code
		resp.Dirs = append(resp.Dirs, d)
		return resp, nil
	}
	byTopic := map[string]*kmsg.DescribeLogDirsResponseDirTopic{}
	for _, p := range parts {
		if want != nil && !slices.Contains(want[p.topic.name], p.index) {
			continue
		}
		dt := byTopic[p.topic.name]
		if dt == nil {
			t := kmsg.NewDescribeLogDirsResponseDirTopic()
			t.Topic = p.topic.name
			dt = &t
			byTopic[p.topic.name] = dt
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition = p.index
		dp.Size = p.log.Size()
		dp.OffsetLag = max(p.HighWatermark()-p.LogEndOffset(), 0)
		dt.Partitions = append(dt.Partitions, dp)
	}
	for _, name := range sortedKeys(byTopic) {
		dt := byTopic[name]
		slices.SortFunc(dt.Partitions, func(a, b kmsg.DescribeLogDirsResponseDirTopicPartition) int { return int(a.Partition - b.Partition) })
		d.Topics = append(d.Topics, *dt)
	}
	resp.Dirs = append(resp.Dirs, d)
	return resp, nil
}

// logDirOffline returns why the data directory is offline, or nil: it is gone or not a
// directory, or one of the logs in it failed a write it could not undo.
func (b *Broker) logDirOffline(parts []*partition) error {
	fi, err := os.Stat(b.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("broker: log directory: %w", err)
	}
	if !fi.IsDir() {
		return errors.New("broker: log directory is not a directory")
	}
	for _, p := range parts {
		if err := p.log.Failed(); err != nil {
			return fmt.Errorf("broker: log of %s-%d: %w", p.topic.name, p.index, err)
		}
	}
	return nil
}
