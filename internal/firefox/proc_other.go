//go:build !linux

package firefox

import (
	"os"
	"syscall"
	"time"
)

// sysProcAttr adds nothing outside Linux.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// killGroup kills Firefox's main process; outside Linux its content
// processes are left to notice that it is gone.
func killGroup(p *os.Process, _ time.Duration) error {
	_ = p.Kill()
	return nil
}
