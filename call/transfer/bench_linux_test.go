package transfer

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// processCPU returns the process's user and system CPU time in ns.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// udpDrops returns the system-wide count of UDP datagrams dropped for a
// full receive buffer (Udp RcvbufErrors in /proc/net/snmp), or -1.
func udpDrops() int64 {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return -1
	}
	lines := strings.Split(string(data), "\n")
	for i := 0; i+1 < len(lines); i++ {
		keys, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(keys) == 0 || keys[0] != "Udp:" || len(values) != len(keys) || values[0] != "Udp:" {
			continue
		}
		for j, k := range keys {
			if k == "RcvbufErrors" {
				n, err := strconv.ParseInt(values[j], 10, 64)
				if err != nil {
					return -1
				}
				return n
			}
		}
	}
	return -1
}
