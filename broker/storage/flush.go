package storage

import "fmt"

// Flush fsyncs every segment up to LogEndOffset together with the indexes of inactive
// segments, moves the recovery point to LogEndOffset and checkpoints it.
func (l *Log) Flush() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.checkOpen(); err != nil {
		return err
	}
	if err := l.flushLocked(false); err != nil {
		return err
	}
	return l.writeCheckpoints()
}

// flushLocked fsyncs unsynced segments and the directory, then advances the recovery point.
// With closing, the active segment's indexes are written too. appendMu must be held.
func (l *Log) flushLocked(closing bool) error {
	act := l.active()
	for _, s := range l.segments {
		if !s.synced {
			if err := s.file.Sync(); err != nil {
				return ioErr("fsync", s.path(logSuffix), err)
			}
			s.synced = true
		}
		if (s != act || closing) && !s.indexSynced {
			l.mu.Lock()
			s.sealTimeIndex()
			offB, timeB := encodeOffsetIndex(s.offIdx), encodeTimeIndex(s.timeIdx)
			l.mu.Unlock()
			if err := s.writeIndexFiles(offB, timeB, true); err != nil {
				return err
			}
			l.dirSyncNeeded = true
		}
	}
	if l.dirSyncNeeded {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return ioErr("fsync dir", l.dir, err)
		}
		l.dirSyncNeeded = false
	}
	l.mu.Lock()
	l.recoveryPoint = l.logEndOffset()
	l.mu.Unlock()
	l.unflushed = 0
	l.lastFlush = l.now()
	if closing {
		if err := l.writeCheckpoints(); err != nil {
			return fmt.Errorf("storage: checkpoint: %w", err)
		}
	}
	return nil
}
