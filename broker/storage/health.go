package storage

// Failed returns the error that took the log offline (a write that failed and could not be
// undone, after which appends refuse), or nil while the log is healthy. Kafka marks the
// whole log directory offline on such an error; DescribeLogDirs reports it.
func (l *Log) Failed() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.failed
}
