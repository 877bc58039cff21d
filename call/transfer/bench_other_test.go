//go:build !linux

package transfer

// processCPU is not measured on this platform.
func processCPU() int64 { return 0 }

// udpDrops is not measured on this platform.
func udpDrops() int64 { return -1 }
