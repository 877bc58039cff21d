//go:build !linux

package loadgen

import "net"

// newStampedReader returns nil: receive timestamps are read on Linux only.
func newStampedReader(net.Conn) stampedReader { return nil }
