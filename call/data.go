package call

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/call/chat"
	"github.com/rtckit/rtckit/call/transfer"
)

// byeFlush is how long a hang-up on the control channel gets to leave.
const byeFlush = 200 * time.Millisecond

// byeOpenWait is how long a hang-up waits for a control channel that is
// still opening: SCTP starts only once DTLS is connected, and a call that
// ends at once (a file to send that is gone) would otherwise close it
// unopened, leaving the peer of a call without hub or media to find out
// when ICE fails, 30 s later.
const byeOpenWait = time.Second

// dataSet runs the call's data channels: chat, file transfers both ways,
// and the control channel of serverless calls.
type dataSet struct {
	s *session

	mu      sync.Mutex
	files   []FileReport
	control *webrtc.DataChannel
	chatDC  *webrtc.DataChannel
	// transfers counts running incoming transfers; sends is the
	// goroutine that sends the --send files one after another.
	transfers sync.WaitGroup
	sends     sync.WaitGroup
	// ending is set when the call starts to end: no new transfer starts.
	ending bool
}

func newDataSet(s *session) *dataSet { return &dataSet{s: s} }

// hasChannels tells whether open created any data channel.
func (d *dataSet) hasChannels() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.control != nil || d.chatDC != nil
}

// open creates the caller's channels, so that they are in the first offer.
func (d *dataSet) open(ctx context.Context) error {
	s := d.s
	if !s.sig.Trickle() || s.opts.Chat || s.opts.ReceiveDir != "" || len(s.opts.SendFiles) > 0 {
		// A control channel puts SCTP into the first offer, so that later
		// channels need no renegotiation (impossible without a hub).
		if err := d.openControl(); err != nil {
			return err
		}
	}
	if s.opts.Chat {
		dc, err := s.pc.CreateDataChannel(chat.Label, nil)
		if err != nil {
			return fmt.Errorf("%w: chat channel: %v", ErrSetup, err)
		}
		d.startChat(ctx, dc)
	}
	return nil
}

// openControl creates the control channel, which carries the bye.
func (d *dataSet) openControl() error {
	dc, err := d.s.pc.CreateDataChannel(controlLabel, nil)
	if err != nil {
		return fmt.Errorf("%w: data channel: %v", ErrSetup, err)
	}
	d.setControl(dc)
	return nil
}

// needControl adds the caller's control channel, renegotiating through
// the hub, when the answer shows a call with no media either way and no
// channel (the answerer waits for the caller's):
// such a call would learn of a hang-up over neither RTCP nor SCTP once the
// hub is gone, only when ICE gives up.
func (d *dataSet) needControl(answer webrtc.SessionDescription) error {
	s := d.s
	if !s.setup.Caller || !s.sig.Trickle() || d.hasChannels() || !(s.opts.Media.NoVideo && s.opts.Media.NoAudio) ||
		peerSendsMedia(answer) {
		return nil
	}
	return d.openControl()
}

// peerSendsMedia tells whether a remote description sends audio or video
// (a media section that is not rejected, sendrecv or sendonly); an
// unparsable one is taken to send.
func peerSendsMedia(d webrtc.SessionDescription) bool {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(d.SDP); err != nil {
		return true
	}
	for _, md := range sd.MediaDescriptions {
		if kind := md.MediaName.Media; (kind != "audio" && kind != "video") || md.MediaName.Port.Value == 0 {
			continue
		}
		direction := "sendrecv" // RFC 8866 6.7: the default
		for _, a := range md.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				direction = a.Key
			}
		}
		if direction == "sendrecv" || direction == "sendonly" {
			return true
		}
	}
	return false
}

// incoming dispatches a channel the peer opened.
func (d *dataSet) incoming(dc *webrtc.DataChannel) {
	s := d.s
	switch dc.Label() {
	case transfer.Label:
		if s.opts.ReceiveDir == "" {
			s.log.Warn("call: the peer sends a file; refused (use --receive DIR to accept files)")
			_ = dc.Close()
			return
		}
		d.receive(dc)
	case chat.Label:
		if s.opts.Chat {
			d.startChat(s.ctx, dc)
		}
	case controlLabel:
		d.setControl(dc)
	}
}

func (d *dataSet) setControl(dc *webrtc.DataChannel) {
	d.mu.Lock()
	d.control = dc
	d.mu.Unlock()
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if m.IsString && string(m.Data) == "bye" {
			d.s.sig.Close()
			d.s.endCall(EndPeerHungUp, nil)
		}
	})
}

// sayBye tells the peer over the control channel that we hang up.
func (d *dataSet) sayBye() {
	d.mu.Lock()
	dc := d.control
	d.mu.Unlock()
	if dc == nil {
		return
	}
	if dc.ReadyState() == webrtc.DataChannelStateConnecting && d.s.isConnected() {
		waitOpen(dc, byeOpenWait)
	}
	if dc.ReadyState() != webrtc.DataChannelStateOpen {
		return
	}
	if dc.SendText("bye") == nil {
		// The buffered amount falls when the peer acknowledges the
		// message, which it may delay by up to 200 ms; a peer that closes
		// its connection on the bye closes the channel first.
		deadline := time.Now().Add(byeFlush)
		for dc.BufferedAmount() > 0 && dc.ReadyState() == webrtc.DataChannelStateOpen && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// waitOpen waits up to timeout for dc to open. It takes dc's OnOpen
// handler, which nothing else sets on the control channel.
func waitOpen(dc *webrtc.DataChannel, timeout time.Duration) {
	opened := make(chan struct{})
	var once sync.Once
	dc.OnOpen(func() { once.Do(func() { close(opened) }) })
	if dc.ReadyState() != webrtc.DataChannelStateConnecting {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-opened:
	case <-t.C:
	}
}

func (d *dataSet) startChat(ctx context.Context, dc *webrtc.DataChannel) {
	d.mu.Lock()
	if d.chatDC != nil {
		d.mu.Unlock()
		return
	}
	d.chatDC = dc
	d.mu.Unlock()
	out, in := d.s.io.Out, d.s.io.In
	if out == nil {
		out = io.Discard
	}
	if in == nil {
		in = strings.NewReader("")
	}
	// The end of the input does not end the chat: the peer may still write.
	in = io.MultiReader(in, waitReader{ctx})
	c := chat.Attach(dc, out, chat.Options{PeerName: d.s.setup.Peer, Logger: d.s.log})
	go func() {
		if err := c.Run(ctx, in); err != nil && !errors.Is(err, context.Canceled) {
			d.s.log.Debug("call: chat ended", "err", err)
		}
	}()
}

// connected starts the outgoing transfers, one after another; with no
// --duration, the call ends when they are done.
func (d *dataSet) connected(ctx context.Context) {
	s := d.s
	if s.opts.Chat && !s.setup.Caller {
		// The caller opens the chat; if it did not ask for one, open it.
		go func() {
			time.Sleep(time.Second)
			d.mu.Lock()
			has := d.chatDC != nil
			d.mu.Unlock()
			if !has && ctx.Err() == nil {
				if dc, err := s.pc.CreateDataChannel(chat.Label, nil); err == nil {
					d.startChat(ctx, dc)
				}
			}
		}()
	}
	if len(s.opts.SendFiles) == 0 {
		return
	}
	d.sends.Add(1)
	go func() {
		defer d.sends.Done()
		for i, path := range s.opts.SendFiles {
			res, err := transfer.Send(ctx, s.pc, path, transfer.SendOptions{Logger: s.log, Progress: d.progress(path)})
			fr := FileReport{Direction: "out", Name: res.Name, Path: path, Size: res.Size, SHA256: res.SHA256, OK: res.OK && err == nil}
			if res.Throughput > 0 {
				fr.MBps = res.Throughput / 1e6
			}
			if err != nil {
				fr.Error = err.Error()
				if errors.Is(err, context.Canceled) {
					fr.Error = "the call ended before the transfer completed"
				}
			}
			d.addFile(fr)
			if ctx.Err() != nil {
				for _, rest := range s.opts.SendFiles[i+1:] {
					d.addFile(FileReport{Direction: "out", Name: filepath.Base(rest), Path: rest,
						Error: "the call ended before the transfer started"})
				}
				return
			}
		}
		if s.opts.Duration == 0 {
			s.endCall(EndTransfersDone, nil)
		}
	}()
}

func (d *dataSet) progress(path string) func(sent, size int64) {
	if d.s.io.Status == nil {
		return nil
	}
	name := filepath.Base(path)
	last := time.Time{}
	return func(sent, size int64) {
		if time.Since(last) < 200*time.Millisecond && sent != size {
			return
		}
		last = time.Now()
		pct := 100.0
		if size > 0 {
			pct = float64(sent) * 100 / float64(size)
		}
		d.s.status(fmt.Sprintf("sending %s: %.0f%% of %d bytes", name, pct, size))
	}
}

// receive accepts one incoming file transfer into ReceiveDir.
func (d *dataSet) receive(dc *webrtc.DataChannel) {
	s := d.s
	d.mu.Lock()
	if d.ending {
		d.mu.Unlock()
		_ = dc.Close()
		return
	}
	d.transfers.Add(1) // under mu, so never after end's waits began
	d.mu.Unlock()
	r := &transfer.Receiver{Dir: s.opts.ReceiveDir, Logger: s.log, Done: func(res transfer.Received, err error) {
		defer d.transfers.Done()
		fr := FileReport{Direction: "in", Name: res.Name, Path: res.Path, Size: res.Size, SHA256: res.SHA256, OK: res.OK && err == nil}
		if res.Duration > 0 {
			fr.MBps = float64(res.Size) / res.Duration.Seconds() / 1e6
		}
		if err != nil {
			fr.Error = err.Error()
		}
		d.addFile(fr)
		if fr.OK {
			s.log.Info("call: received a file", "name", res.Name, "path", res.Path, "size", res.Size)
		}
	}}
	r.Accept(s.ctx, dc)
}

func (d *dataSet) addFile(fr FileReport) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.files = append(d.files, fr)
}

// end refuses transfers that start from now on: the call is ending.
func (d *dataSet) end() {
	d.mu.Lock()
	d.ending = true
	d.mu.Unlock()
}

// waitTransfers waits (bounded) for incoming transfers to finish.
func (d *dataSet) waitTransfers(timeout time.Duration) {
	waitBounded(timeout, d.transfers.Wait)
}

// settle waits (bounded) until every transfer, both ways, has reported:
// after the call's context ends, outgoing ones give up and incoming ones
// abort and remove their temporary files.
func (d *dataSet) settle(timeout time.Duration) {
	if !waitBounded(timeout, d.sends.Wait, d.transfers.Wait) {
		d.s.log.Debug("call: file transfers still running at the end of the call")
	}
}

// waitBounded runs waits one after another and tells whether they all
// returned within timeout.
func waitBounded(timeout time.Duration, waits ...func()) bool {
	done := make(chan struct{})
	go func() {
		for _, wait := range waits {
			wait()
		}
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// fileReports returns the transfers so far.
func (d *dataSet) fileReports() []FileReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]FileReport(nil), d.files...)
}

// waitReader blocks until its context ends, then reports the end of input.
type waitReader struct{ ctx context.Context }

func (w waitReader) Read([]byte) (int, error) {
	<-w.ctx.Done()
	return 0, io.EOF
}
