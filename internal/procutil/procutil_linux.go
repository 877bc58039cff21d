package procutil

import (
	"errors"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Processes lists the pids in /proc for which match returns true, in
// /proc's order. A process that exits meanwhile may or may not be listed;
// match should treat files it cannot read as a non-match.
func Processes(match func(pid int) bool) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if match(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// WaitExit waits until the process of pidfd fd exits or deadline passes.
// It does not close fd.
func WaitExit(fd int, deadline time.Time) {
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms <= 0 {
			return
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		// A pidfd becomes readable when its process exits.
		if _, err := unix.Poll(fds, ms); !errors.Is(err, unix.EINTR) {
			return
		}
	}
}
