// Package faultfs wraps a storage.FS with the disk faults of the chaos controller, switched
// at run time by a control file in the broker's data directory, and keeps a journal of what
// was fsynced so a simulated power loss can drop every un-fsynced write afterwards.
//
// The control file DATA_DIR/.kchaos-disk-fault holds the current fault:
//
//	full         writes, file creations and fsyncs fail with ENOSPC (the log reports
//	             storage.ErrStorage, producers get KAFKA_STORAGE_ERROR); reads, truncations
//	             and removals still work, as they do on a full disk
//	slow=50ms    every write and fsync sleeps that long first
//	error=EIO ops=read,fsync rate=0.5
//	             the calls named (read: ReadAt, and no sendfile; write: writes and file
//	             creations; fsync: file and directory fsyncs) fail with EIO (or ENOSPC),
//	             each with the chance rate (default 1)
//	(empty)      no fault; an absent file is the same
//
// The file is read at most every CheckInterval, so a change takes effect within that time
// plus the next I/O call. The sync journal DATA_DIR/.kchaos-synced lists, for the broker's
// current lifetime, which files were opened for writing, created, fsynced (with their size),
// truncated, renamed and removed, and which directories were fsynced. After the broker is
// killed, DropUnsynced replays it and cuts every file back to what its last fsync made
// durable, removing files created since their directory's last fsync, like LazyFS does on a
// simulated power failure.
package faultfs
