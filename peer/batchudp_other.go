//go:build !linux

package peer

import "net"

// offloadSupported tells that this platform can send with UDP GSO and
// receive with UDP GRO.
const offloadSupported = false

func enableGRO(*net.UDPConn) bool { return false }

func gsoControl(int) []byte { return nil }

func groSegmentSize([]byte) int { return 0 }

func isGSOUnsupported(error) bool { return true }
