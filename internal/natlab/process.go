package natlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// StopGrace is how long Process.Stop waits after SIGTERM before it sends
	// SIGKILL to the process group.
	StopGrace = 2 * time.Second
	// processWaitDelay bounds how long a process's output pipes may stay
	// open after it exits (a grandchild may hold them).
	processWaitDelay = 2 * time.Second
	// killWait bounds how long Stop and Close wait for a killed process to
	// be reaped.
	killWait = 5 * time.Second
	// outputTail is how many bytes of output an ErrProcessExited error quotes.
	outputTail = 2048
)

// Process is a program running in a lab namespace, in its own process group.
// Its stdout and stderr are captured; the lab kills it on Close.
type Process struct {
	// NS is the namespace the process runs in.
	NS string
	// Args is the command line, program name first.
	Args []string

	cmd  *exec.Cmd
	done chan struct{} // closed once the process is reaped and output flushed

	mu      sync.Mutex
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	lines   []string      // complete lines of stdout and stderr, in arrival order
	changed chan struct{} // closed and replaced when lines grows
	err     error         // cmd.Wait's result, set before done is closed
}

// Pid returns the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited and its output is complete.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits until the process exits or ctx ends, and returns the process's
// exit error (nil for a zero exit status) or ctx's error.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.exitErr()
	case <-ctx.Done():
		return fmt.Errorf("natlab: wait for %s: %w", p.Args[0], ctx.Err())
	}
}

func (p *Process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stop sends SIGTERM to the process group, then SIGKILL after StopGrace, and
// returns once the process is reaped. It returns an error only when the
// process could not be stopped; Wait reports how it ended.
func (p *Process) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := killGroup(p.Pid(), syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(StopGrace):
	}
	return p.kill()
}

// kill sends SIGKILL to the process group and waits, bounded, for the
// process to be reaped.
func (p *Process) kill() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := killGroup(p.Pid(), syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("natlab: %s (pid %d) not reaped %v after SIGKILL", p.Args[0], p.Pid(), killWait)
	}
}

// Output returns the stdout and stderr captured so far.
func (p *Process) Output() (stdout, stderr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String(), p.stderr.String()
}

// WaitLine waits for a line of output, on stdout or stderr, for which match
// returns true, and returns that line without its newline. Lines already
// printed count, so calling it after the line appeared is fine. It fails
// with ErrProcessExited when the process ends without such a line, and with
// ctx's error when ctx ends first.
func (p *Process) WaitLine(ctx context.Context, match func(line string) bool) (string, error) {
	next := 0
	for {
		p.mu.Lock()
		lines := p.lines[next:]
		changed := p.changed
		p.mu.Unlock()
		// Lines are only appended, so the snapshot is safe to read unlocked.
		for _, line := range lines {
			if match(line) {
				return line, nil
			}
		}
		next += len(lines)

		select {
		case <-changed:
		case <-p.done:
			p.mu.Lock()
			more := len(p.lines) > next
			p.mu.Unlock()
			if !more {
				return "", p.exitedError()
			}
		case <-ctx.Done():
			return "", fmt.Errorf("natlab: waiting for output of %s: %w", p.Args[0], ctx.Err())
		}
	}
}

// exitedError describes the exit of a process for callers that needed it
// alive, quoting the end of its output.
func (p *Process) exitedError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	tail := func(b *bytes.Buffer) string {
		s := b.String()
		if len(s) > outputTail {
			s = "…" + s[len(s)-outputTail:]
		}
		return strings.TrimSpace(s)
	}
	return fmt.Errorf("%w: %s: %v; stdout: %q; stderr: %q",
		ErrProcessExited, strings.Join(p.Args, " "), p.err, tail(&p.stdout), tail(&p.stderr))
}

// reap waits for the process and publishes how it ended.
func (p *Process) reap(outs ...*lineWriter) {
	err := p.cmd.Wait()
	p.mu.Lock()
	for _, w := range outs {
		w.flushLocked()
	}
	p.err = err
	p.mu.Unlock()
	close(p.done)
}

// lineWriter captures one output stream of a Process and splits it into
// lines.
type lineWriter struct {
	p       *Process
	buf     *bytes.Buffer
	partial []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.buf.Write(b)
	w.partial = append(w.partial, b...)
	added := false
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.p.lines = append(w.p.lines, strings.TrimSuffix(string(w.partial[:i]), "\r"))
		w.partial = w.partial[i+1:]
		added = true
	}
	if added {
		w.p.notifyLocked()
	}
	return len(b), nil
}

// flushLocked publishes a last line that had no newline.
func (w *lineWriter) flushLocked() {
	if len(w.partial) == 0 {
		return
	}
	w.p.lines = append(w.p.lines, string(w.partial))
	w.partial = nil
	w.p.notifyLocked()
}

func (p *Process) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// killGroup signals the process group pgid; a group that is already gone is
// not an error.
func killGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 0 {
		return fmt.Errorf("natlab: bad process group %d", pgid)
	}
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("natlab: signal process group %d: %w", pgid, err)
	}
	return nil
}
