package loadgen

import (
	"io"
	"time"
)

// stampedReader is a connection's reader that knows when the kernel
// received what it read last (the newest segment of that read): later
// than or at the arrival of every message completed by that read.
type stampedReader interface {
	io.Reader
	// arrived is the receive time of the last read; zero before one.
	arrived() time.Time
}
