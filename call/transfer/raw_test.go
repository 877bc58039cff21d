package transfer

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/internal/pcpair"
	"github.com/rtckit/rtckit/internal/testenv"
	"github.com/rtckit/rtckit/peer"
)

// rawSender is a hand-written sender on a "file" channel of p's a side.
type rawSender struct {
	dc     *webrtc.DataChannel
	acks   chan Ack
	closed chan struct{}
}

func newRawSender(t *testing.T, p *pcpair.Pair) *rawSender {
	t.Helper()
	dc, err := p.A.CreateDataChannel(Label, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &rawSender{dc: dc, acks: make(chan Ack, 4), closed: make(chan struct{})}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	dc.OnClose(func() { close(s.closed) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		msg, err := parseMessage(m.Data)
		if err != nil || msg.kind != kindAck {
			t.Errorf("receiver sent %q (%v)", m.Data, err)
			return
		}
		s.acks <- msg.ack
	})
	select {
	case <-opened:
	case <-time.After(testTimeout):
		t.Fatal("channel did not open")
	}
	return s
}

// text sends a text message.
func (s *rawSender) text(t *testing.T, msg string) {
	t.Helper()
	if err := s.dc.SendText(msg); err != nil {
		t.Fatal(err)
	}
}

// binary sends a binary message.
func (s *rawSender) binary(t *testing.T, data []byte) {
	t.Helper()
	if err := s.dc.Send(data); err != nil {
		t.Fatal(err)
	}
}

// ack waits for the receiver's file-ack.
func (s *rawSender) ack(t *testing.T) Ack {
	t.Helper()
	select {
	case a := <-s.acks:
		return a
	case <-time.After(testTimeout):
		t.Fatal("no file-ack")
		return Ack{}
	}
}

// header returns a header message for data.
func header(t *testing.T, name string, data []byte) string {
	t.Helper()
	b, err := encodeHeader(Header{Name: name, Size: int64(len(data)), SHA256: sha(data)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReceiveRejects(t *testing.T) {
	data := []byte("hello, world")
	tests := []struct {
		name    string
		send    func(t *testing.T, s *rawSender)
		wantErr error
		ack     string
		ackSHA  string
	}{
		{"not json", func(t *testing.T, s *rawSender) { s.text(t, "{") }, ErrBadHeader, ackBadHeader, ""},
		{"negative size", func(t *testing.T, s *rawSender) {
			s.text(t, `{"type":"file","name":"a","size":-1,"sha256":"`+sha(data)+`"}`)
		}, ErrBadHeader, ackBadHeader, ""},
		{"fractional size", func(t *testing.T, s *rawSender) {
			s.text(t, `{"type":"file","name":"a","size":1.5,"sha256":"`+sha(data)+`"}`)
		}, ErrBadHeader, ackBadHeader, ""},
		{"short sha256", func(t *testing.T, s *rawSender) { s.text(t, `{"type":"file","name":"a","size":1,"sha256":"abc"}`) }, ErrBadHeader, ackBadHeader, ""},
		{"eof first", func(t *testing.T, s *rawSender) { s.text(t, eofMessage) }, ErrBadHeader, ackBadHeader, ""},
		{"data first", func(t *testing.T, s *rawSender) { s.binary(t, data) }, ErrProtocol, ackDataFirst, ""},
		{"too many bytes", func(t *testing.T, s *rawSender) {
			s.text(t, header(t, "a", data[:4]))
			s.binary(t, data)
		}, ErrSizeMismatch, "size: more than 4 bytes", ""},
		{"too few bytes", func(t *testing.T, s *rawSender) {
			s.text(t, header(t, "a", data))
			s.binary(t, data[:4])
			s.text(t, eofMessage)
		}, ErrSizeMismatch, "size: got 4 bytes, want 12", sha(data[:4])},
		{"second header", func(t *testing.T, s *rawSender) {
			s.text(t, header(t, "a", data))
			s.text(t, header(t, "a", data))
		}, ErrProtocol, ackBadMessage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			p := pcpair.New(t, peer.APIConfig{})
			dst := t.TempDir()
			out := receiveInto(ctx, p, &Receiver{Dir: dst})
			s := newRawSender(t, p)
			tt.send(t, s)
			a := s.ack(t)
			if a.OK || a.Error != tt.ack || a.SHA256 != tt.ackSHA {
				t.Errorf("file-ack %+v, want error %q sha256 %q", a, tt.ack, tt.ackSHA)
			}
			if o := waitOutcome(t, out); !errors.Is(o.err, tt.wantErr) {
				t.Errorf("receive error %v, want %v", o.err, tt.wantErr)
			}
			// Messages after the ack are ignored: no second ack, no file.
			s.binary(t, data)
			s.text(t, eofMessage)
			_ = s.dc.Close()
			<-s.closed
			select {
			case a := <-s.acks:
				t.Errorf("second file-ack %+v", a)
			default:
			}
			if names := testenv.DirNames(t, dst); len(names) != 0 {
				t.Errorf("receive dir holds %v", names)
			}
		})
	}
}

func TestReceiveChannelClosed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	p := pcpair.New(t, peer.APIConfig{})
	dst := t.TempDir()
	rx := &Receiver{Dir: dst}
	got := make(chan int64, 64)
	rx.Progress = func(_ Header, n int64) { got <- n }
	out := receiveInto(ctx, p, rx)
	s := newRawSender(t, p)
	data := bytes.Repeat([]byte{7}, 5*ChunkSize)
	s.text(t, header(t, "partial.bin", data))
	s.binary(t, data[:ChunkSize])
	for n := range got {
		if n == ChunkSize {
			break
		}
	}
	if names := testenv.DirNames(t, dst); len(names) != 1 || !strings.HasPrefix(names[0], ".rtckit-receive-") {
		t.Errorf("during the transfer the dir holds %v, want one hidden temporary file", names)
	}
	_ = s.dc.Close()
	o := waitOutcome(t, out)
	if !errors.Is(o.err, ErrClosed) || o.res.Size != ChunkSize {
		t.Errorf("received %+v, %v; want ErrClosed after %d bytes", o.res, o.err, ChunkSize)
	}
	if names := testenv.DirNames(t, dst); len(names) != 0 {
		t.Errorf("receive dir holds %v after the channel closed", names)
	}
}

func TestReceiveCancelled(t *testing.T) {
	p := pcpair.New(t, peer.APIConfig{})
	dst := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rx := &Receiver{Dir: dst}
	rx.Progress = func(_ Header, n int64) {
		if n > 0 {
			cancel()
		}
	}
	out := receiveInto(ctx, p, rx)
	s := newRawSender(t, p)
	data := bytes.Repeat([]byte{7}, 3*ChunkSize)
	s.text(t, header(t, "f", data))
	s.binary(t, data[:ChunkSize])
	if a := s.ack(t); a.OK || a.Error != ackCancelled {
		t.Errorf("file-ack %+v, want %q", a, ackCancelled)
	}
	select {
	case <-s.closed:
	case <-time.After(testTimeout):
		t.Error("the receiver did not close the channel")
	}
	if o := waitOutcome(t, out); !errors.Is(o.err, context.Canceled) {
		t.Errorf("received %+v, %v; want context.Canceled", o.res, o.err)
	}
	if names := testenv.DirNames(t, dst); len(names) != 0 {
		t.Errorf("receive dir holds %v after cancellation", names)
	}
}

func TestSendAckTimeoutAndClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	p := pcpair.New(t, peer.APIConfig{})
	// A peer that never answers.
	silent := make(chan *webrtc.DataChannel, 2)
	p.Handle(func(dc *webrtc.DataChannel) { silent <- dc })
	dc, err := p.A.CreateDataChannel(Label, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("abc")
	_, err = SendOn(ctx, dc, Header{Name: "a", Size: 3, SHA256: sha(data)}, bytes.NewReader(data), SendOptions{AckTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrAckTimeout) {
		t.Errorf("SendOn to a silent peer = %v, want ErrAckTimeout", err)
	}
	// A peer that closes the channel instead of answering.
	p.Handle(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			if m.IsString && string(m.Data) == eofMessage {
				_ = dc.Close()
			}
		})
	})
	dc, err = p.A.CreateDataChannel(Label, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = SendOn(ctx, dc, Header{Name: "a", Size: 3, SHA256: sha(data)}, bytes.NewReader(data), SendOptions{})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("SendOn to a closing peer = %v, want ErrClosed", err)
	}
}

func TestSendStalled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	p := pcpair.New(t, peer.APIConfig{})
	// A peer that stops reading after the header: its SCTP receive window
	// fills and stays full while the connection is up.
	release := make(chan struct{})
	defer close(release)
	p.Handle(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(webrtc.DataChannelMessage) { <-release })
	})
	dc, err := p.A.CreateDataChannel(Label, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{7}, 8<<20)
	_, err = SendOn(ctx, dc, Header{Name: "a", Size: int64(len(data)), SHA256: sha(data)}, bytes.NewReader(data),
		SendOptions{HighWater: 256 << 10, StallTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrStalled) {
		t.Errorf("SendOn to a peer that stopped reading = %v, want ErrStalled", err)
	}
}
