package firefox

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtckit/rtckit/internal/procutil"
)

// sysProcAttr starts Firefox in a process group of its own, so that its
// content processes can be killed with it, and has it killed if this
// process dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills every process in the process group led by p (Firefox and
// its content processes) and waits, at most timeout, until each has exited.
func killGroup(p *os.Process, timeout time.Duration) error {
	pgid := p.Pid
	deadline := time.Now().Add(timeout)
	// A process can fork while the group is being killed, so look again
	// until a pass finds nobody.
	for range 5 {
		pids := groupMembers(pgid)
		if len(pids) == 0 {
			return nil
		}
		// Pin the processes before the signal, so that their exit can be
		// waited for even once their pids are free again.
		var fds []int
		for _, pid := range pids {
			if fd, err := unix.PidfdOpen(pid, 0); err == nil {
				fds = append(fds, fd)
			}
		}
		_ = unix.Kill(-pgid, unix.SIGKILL)
		for _, fd := range fds {
			procutil.WaitExit(fd, deadline)
			_ = unix.Close(fd)
		}
	}
	if pids := groupMembers(pgid); len(pids) > 0 {
		return fmt.Errorf("firefox: processes %v of group %d still running", pids, pgid)
	}
	return nil
}

// groupMembers lists the live (not zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	want := []byte(strconv.Itoa(pgid))
	return procutil.Processes(func(pid int) bool {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		// After the parenthesised command name: state ppid pgrp ...
		i := bytes.LastIndexByte(stat, ')')
		f := bytes.Fields(stat[i+1:])
		return len(f) > 2 && string(f[0]) != "Z" && bytes.Equal(f[2], want)
	})
}
