package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// The pion pair is the reference setting of docs/benchmarks.md: two
// processes of bare pion/webrtc with pion's defaults (loopback candidates
// aside), one data channel, the file in 64 KiB messages with the flow
// control of pion's data-channels-flow-control example, the SHA-256
// checked by the receiver. callbench runs itself as each peer
// (pionSendCommand, pionReceiveCommand) and passes the offer and the
// answer between them, one JSON line each, non-trickle.
const (
	pionSendCommand    = "pion-send"
	pionReceiveCommand = "pion-receive"

	// pionMessageSize is the size of each binary message but the last.
	pionMessageSize = 64 << 10
	// pionHighWater and pionLowWater are the example's flow control.
	pionHighWater = 1 << 20
	pionLowWater  = 512 << 10
	// pionCloseWait bounds the receiver's wait for the sender to close
	// after the acknowledgement.
	pionCloseWait = 5 * time.Second
)

// pionResult is the last line a pion peer prints.
type pionResult struct {
	Bytes  int64   `json:"bytes"`
	SHA256 string  `json:"sha256"`
	MBps   float64 `json:"mbps"`
	// TransferMS runs from the channel's open (sender) or the first
	// message (receiver) to the peer's acknowledgement or the last byte.
	TransferMS float64 `json:"transfer_ms"`
	Error      string  `json:"error,omitempty"`
}

// runPionPeer runs one peer of the pion pair (args after the command
// name) with stdin and stdout as its signaling, and prints its result.
func runPionPeer(command string, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	file := fs.String("file", "", "the file to send (pion-send)")
	size := fs.Int64("size", 0, "the bytes to expect (pion-receive)")
	loopback := fs.Bool("loopback", true, "gather loopback candidates")
	timeout := fs.Duration("timeout", defaultTimeout, "bound on the whole transfer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(*loopback)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer func() { _ = pc.Close() }()
	sig := &pionSignals{in: bufio.NewScanner(stdin), out: json.NewEncoder(stdout)}
	var res pionResult
	if command == pionSendCommand {
		res, err = pionSend(ctx, pc, sig, *file)
	} else {
		res, err = pionReceive(ctx, pc, sig, *size)
	}
	if err != nil {
		res.Error = err.Error()
	}
	if werr := sig.out.Encode(res); werr != nil {
		return werr
	}
	return err
}

// pionSignals carries one description each way as JSON lines.
type pionSignals struct {
	in  *bufio.Scanner
	out *json.Encoder
}

// send sets local as pc's local description, waits for gathering to
// complete and prints the description with every candidate.
func (s *pionSignals) send(ctx context.Context, pc *webrtc.PeerConnection, local webrtc.SessionDescription) error {
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(local); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("gathering: %w", ctx.Err())
	}
	return s.out.Encode(pc.LocalDescription())
}

// receive reads the peer's description and sets it.
func (s *pionSignals) receive(pc *webrtc.PeerConnection) error {
	if !s.in.Scan() {
		return fmt.Errorf("no description from the peer: %w", errors.Join(s.in.Err(), io.ErrUnexpectedEOF))
	}
	var d webrtc.SessionDescription
	if err := json.Unmarshal(s.in.Bytes(), &d); err != nil {
		return fmt.Errorf("the peer's description: %w", err)
	}
	return pc.SetRemoteDescription(d)
}

// pionSend offers a data channel, sends the file on it and waits for the
// receiver's SHA-256.
func pionSend(ctx context.Context, pc *webrtc.PeerConnection, sig *pionSignals, path string) (pionResult, error) {
	var res pionResult
	f, err := os.Open(path) //nolint:gosec // G304: the benchmark's own file.
	if err != nil {
		return res, err
	}
	defer func() { _ = f.Close() }()
	sum := sha256.New()
	if res.Bytes, err = io.Copy(sum, f); err != nil {
		return res, err
	}
	res.SHA256 = hex.EncodeToString(sum.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, err
	}
	dc, err := pc.CreateDataChannel("file", nil)
	if err != nil {
		return res, err
	}
	opened, low, acks := make(chan struct{}), make(chan struct{}, 1), make(chan string, 1)
	dc.OnOpen(func() { close(opened) })
	dc.SetBufferedAmountLowThreshold(pionLowWater)
	dc.OnBufferedAmountLow(func() {
		select {
		case low <- struct{}{}:
		default:
		}
	})
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case acks <- string(m.Data):
		default:
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return res, err
	}
	if err := sig.send(ctx, pc, offer); err != nil {
		return res, err
	}
	if err := sig.receive(pc); err != nil {
		return res, err
	}
	select {
	case <-opened:
	case <-ctx.Done():
		return res, fmt.Errorf("the data channel did not open: %w", ctx.Err())
	}
	start := time.Now()
	buf := make([]byte, pionMessageSize)
	for {
		n, rerr := io.ReadFull(f, buf)
		if n > 0 {
			for dc.BufferedAmount() > pionHighWater {
				select {
				case <-low:
				case <-ctx.Done():
					return res, ctx.Err()
				}
			}
			if err := dc.Send(buf[:n]); err != nil {
				return res, err
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return res, rerr
		}
	}
	select {
	case got := <-acks:
		res.setRate(time.Since(start))
		if got != res.SHA256 {
			return res, fmt.Errorf("the receiver's SHA-256 is %s, want %s", got, res.SHA256)
		}
		return res, nil
	case <-ctx.Done():
		return res, fmt.Errorf("no acknowledgement: %w", ctx.Err())
	}
}

// pionReceive answers, hashes size bytes from the first data channel and
// sends back their SHA-256 in hex.
func pionReceive(ctx context.Context, pc *webrtc.PeerConnection, sig *pionSignals, size int64) (pionResult, error) {
	var (
		received atomic.Int64
		result   = make(chan pionResult, 1)
		closed   = make(chan struct{})
	)
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		sum := sha256.New()
		var start time.Time
		dc.OnClose(func() { close(closed) })
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			if received.Load() == 0 {
				start = time.Now()
			}
			sum.Write(m.Data)
			if n := received.Add(int64(len(m.Data))); n == size {
				res := pionResult{Bytes: n, SHA256: hex.EncodeToString(sum.Sum(nil))}
				res.setRate(time.Since(start))
				_ = dc.SendText(res.SHA256)
				result <- res
			}
		})
	})
	if err := sig.receive(pc); err != nil {
		return pionResult{}, err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return pionResult{}, err
	}
	if err := sig.send(ctx, pc, answer); err != nil {
		return pionResult{}, err
	}
	var res pionResult
	select {
	case res = <-result:
	case <-ctx.Done():
		return pionResult{Bytes: received.Load()}, fmt.Errorf("%d of %d bytes: %w", received.Load(), size, ctx.Err())
	}
	// The sender closes once it has the acknowledgement.
	t := time.NewTimer(pionCloseWait)
	defer t.Stop()
	select {
	case <-closed:
	case <-t.C:
	case <-ctx.Done():
	}
	return res, nil
}

// setRate sets the transfer time and rate of Bytes in d.
func (r *pionResult) setRate(d time.Duration) {
	r.TransferMS = float64(d.Microseconds()) / 1e3
	if s := d.Seconds(); s > 0 {
		r.MBps = float64(r.Bytes) / s / 1e6
	}
}
