package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// pionExitTimeout is how long the pion peers get beyond their own
// -timeout before they are killed.
const pionExitTimeout = 10 * time.Second

// pionRun sends file (size bytes) from one bare pion process to another
// (pionpeer.go): callbench runs itself as both peers and carries the offer
// and the answer between them.
func pionRun(ctx context.Context, index int, file string, size int64, loopback bool, timeout time.Duration, cpus int) Run {
	r := newRun(testFile, pairPion, index)
	c := runPionPair(ctx, file, size, loopback, timeout)
	r.set(mSendMBps, positive(c.send.MBps))
	r.set(mRecvMBps, positive(c.recv.MBps))
	r.set(mTransfer, positive(c.send.TransferMS))
	r.setProcesses(c.wall, c.sendCPU, c.recvCPU)
	r.setCPUBound(size, c.sendCPU+c.recvCPU, cpus)
	r.OK = c.err == nil && c.send.SHA256 != "" && c.send.SHA256 == c.recv.SHA256 && c.recv.Bytes == size
	switch {
	case c.err != nil:
		r.Error = c.err.Error()
	case !r.OK:
		r.Error = "no verified transfer"
	}
	return r
}

// positive is &v, or nil when v is not positive.
func positive(v float64) *float64 {
	if v <= 0 {
		return nil
	}
	return &v
}

// pionCall is what one run of the pion pair produced.
type pionCall struct {
	send, recv       pionResult
	sendCPU, recvCPU time.Duration
	// wall is the sending process's time from start to exit.
	wall time.Duration
	err  error
}

// runPionPair starts the receiving and the sending peer, passes each one's
// first line (its description) to the other, and reads their results.
func runPionPair(ctx context.Context, file string, size int64, loopback bool, timeout time.Duration) pionCall {
	var c pionCall
	ctx, cancel := context.WithTimeout(ctx, timeout+pionExitTimeout)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		c.err = err
		return c
	}
	common := []string{"-loopback=" + strconv.FormatBool(loopback), "-timeout", timeout.String()}
	recv := newPionPeer(ctx, self, append([]string{pionReceiveCommand, "-size", strconv.FormatInt(size, 10)}, common...))
	send := newPionPeer(ctx, self, append([]string{pionSendCommand, "-file", file}, common...))
	start := time.Now()
	if err := recv.start(); err != nil {
		c.err = fmt.Errorf("receiver: %w", err)
		return c
	}
	if err := send.start(); err != nil {
		recv.kill()
		c.err = fmt.Errorf("sender: %w", err)
		return c
	}
	// The sender's offer goes to the receiver, the receiver's answer to
	// the sender; each then prints its result last.
	sendDone, recvDone := make(chan peerOutput, 1), make(chan peerOutput, 1)
	go func() { sendDone <- send.relay(recv.stdin) }()
	go func() { recvDone <- recv.relay(send.stdin) }()
	so, ro := <-sendDone, <-recvDone
	serr := send.cmd.Wait()
	c.wall = time.Since(start)
	rerr := recv.cmd.Wait()
	c.sendCPU, c.recvCPU = cpuTime(send.cmd), cpuTime(recv.cmd)
	c.send, c.recv = so.result, ro.result
	c.err = errors.Join(peerErr("sender", serr, so, send.stderr.String()), peerErr("receiver", rerr, ro, recv.stderr.String()))
	return c
}

// pionPeer is one running peer of the pion pair.
type pionPeer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.Reader
	stderr *bytes.Buffer
}

func newPionPeer(ctx context.Context, self string, args []string) *pionPeer {
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.WaitDelay = waitDelay
	return &pionPeer{cmd: cmd, stderr: &bytes.Buffer{}}
}

func (p *pionPeer) start() error {
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return err
	}
	if p.stdout, err = p.cmd.StdoutPipe(); err != nil {
		return err
	}
	p.cmd.Stderr = p.stderr
	return p.cmd.Start()
}

func (p *pionPeer) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// peerOutput is what relay read from a peer.
type peerOutput struct {
	result pionResult
	err    error
}

// relay copies the peer's first line to other and closes other, then
// decodes the peer's last line as its result.
func (p *pionPeer) relay(other io.WriteCloser) peerOutput {
	var out peerOutput
	sc := bufio.NewScanner(p.stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var last []byte
	for first := true; sc.Scan(); first = false {
		last = append(last[:0], sc.Bytes()...)
		if first {
			_, err := other.Write(append(sc.Bytes(), '\n'))
			_ = other.Close()
			if err != nil {
				out.err = err
			}
		}
	}
	if err := sc.Err(); err != nil && out.err == nil {
		out.err = err
	}
	if last == nil {
		_ = other.Close()
		out.err = errors.Join(out.err, errors.New("no output"))
		return out
	}
	if err := json.Unmarshal(last, &out.result); err != nil {
		out.err = errors.Join(out.err, fmt.Errorf("result %q: %w", last, err))
	}
	return out
}

// peerErr explains a failed peer: its exit, its reported error, its
// stderr's last line.
func peerErr(name string, waitErr error, out peerOutput, stderr string) error {
	err := errors.Join(waitErr, out.err)
	if out.result.Error != "" {
		err = errors.Join(err, errors.New(out.result.Error))
	}
	if err == nil {
		return nil
	}
	if l := lastLine(stderr); l != "" {
		return fmt.Errorf("%s: %w (%s)", name, err, l)
	}
	return fmt.Errorf("%s: %w", name, err)
}
