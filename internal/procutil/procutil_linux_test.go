package procutil

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtckit/rtckit/internal/testenv"
)

func TestProcesses(t *testing.T) {
	self := os.Getpid()
	if got := Processes(func(pid int) bool { return pid == self }); !slices.Equal(got, []int{self}) {
		t.Errorf("Processes(self) = %v, want [%d]", got, self)
	}
	if got := Processes(func(int) bool { return false }); len(got) != 0 {
		t.Errorf("Processes(none) = %v", got)
	}
}

func TestWaitExit(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sleep: %v", err)
	}
	fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		testenv.Require(t, fmt.Errorf("pidfd_open: %w", err))
	}
	defer unix.Close(fd)
	done := make(chan struct{})
	go func() {
		WaitExit(fd, time.Now().Add(10*time.Second))
		close(done)
	}()
	// A running process keeps WaitExit waiting until its deadline.
	start := time.Now()
	WaitExit(fd, time.Now().Add(50*time.Millisecond))
	if time.Since(start) < 40*time.Millisecond {
		t.Error("WaitExit returned before the deadline for a running process")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("WaitExit did not return once the process exited")
	}
}
