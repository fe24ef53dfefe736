package chaos

// What the end-to-end tests of package chaos_test (which use the e2e fixture, and so cannot be
// in package chaos) need from inside.
var (
	RecordBatch      = recordBatch
	ViewFromMetadata = viewFromMetadata
	KchaosTables     = kchaosTables
	DialLink         = dialLink
)

// ReadProc is readProc, for the end-to-end tests.
var ReadProc = readProc

// Until and ProcessState are the package's test helpers, shared with the end-to-end tests.
var (
	Until        = until
	ProcessState = processState
)
