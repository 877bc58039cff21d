package firefox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
			waitExit(fd, deadline)
			_ = unix.Close(fd)
		}
	}
	if pids := groupMembers(pgid); len(pids) > 0 {
		return fmt.Errorf("firefox: processes %v of group %d still running", pids, pgid)
	}
	return nil
}

// waitExit waits until the process of pidfd fd exits or deadline passes.
func waitExit(fd int, deadline time.Time) {
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

// groupMembers lists the live (not zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte(strconv.Itoa(pgid))
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// After the parenthesised command name: state ppid pgrp ...
		i := bytes.LastIndexByte(stat, ')')
		f := bytes.Fields(stat[i+1:])
		if len(f) > 2 && string(f[0]) != "Z" && bytes.Equal(f[2], want) {
			pids = append(pids, pid)
		}
	}
	return pids
}
