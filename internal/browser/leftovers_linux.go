package browser

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtckit/rtckit/internal/procutil"
)

// killLeftovers kills every process whose command line names a path under
// dir and waits, at most timeout, for each to exit. Every Chromium process of
// a Browser does: the helpers (zygote, renderers, network service) carry the
// --user-data-dir under dir, the crash handlers their database under its
// home. They normally die with the main process; this is the backstop for a
// browser that was killed rather than closed. dir is unique to one Browser,
// so the match cannot hit anybody else's process.
func killLeftovers(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	// A helper can fork while its parent is being killed, so look again
	// until a pass finds nothing.
	for range 5 {
		pids := processesUsing(dir)
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			killAndWait(pid, dir, deadline)
		}
	}
	if pids := processesUsing(dir); len(pids) > 0 {
		return fmt.Errorf("browser: chromium processes %v still use %s", pids, dir)
	}
	return nil
}

// killAndWait sends SIGKILL to pid through a pidfd, so that a recycled pid is
// never signalled, and waits until the process exits or deadline passes.
func killAndWait(pid int, dir string, deadline time.Time) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // already gone
	}
	defer unix.Close(fd)
	// The pidfd pins the process we looked at; check it is still ours.
	if !usesDir(pid, dir) {
		return
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		return
	}
	procutil.WaitExit(fd, deadline)
}

// processesUsing lists the processes whose command line names a path
// under dir.
func processesUsing(dir string) []int {
	self := os.Getpid()
	return procutil.Processes(func(pid int) bool { return pid != self && usesDir(pid, dir) })
}

func usesDir(pid int, dir string) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	// Chromium's zygote children rewrite their argv into one
	// space-separated string, so look for the path anywhere in it. The
	// trailing slash keeps /tmp/x1 from matching /tmp/x12.
	return bytes.Contains(cmdline, []byte(dir+"/"))
}
