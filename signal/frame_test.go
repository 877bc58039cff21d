package signal

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// clientFrame encodes a masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var b []byte
	switch n := len(payload); {
	case n <= 125:
		b = []byte{b0, 0x80 | byte(n)}
	case n <= 0xffff:
		b = []byte{b0, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		b = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	p := append([]byte(nil), payload...)
	unmask(p, key) // masking and unmasking are the same XOR
	return append(b, p...)
}

// recordingSink records what a frameParser finds.
type recordingSink struct{ got []string }

func (r *recordingSink) message(p []byte) { r.got = append(r.got, "msg:"+string(p)) }
func (r *recordingSink) tooLarge()        { r.got = append(r.got, "too-large") }
func (r *recordingSink) control(op byte, p []byte) {
	r.got = append(r.got, map[byte]string{opPing: "ping:", opPong: "pong:", opClose: "close:"}[op]+string(p))
}

func TestFrameParser(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 300)
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	for _, tc := range []struct {
		name string
		in   []byte
		want []string
		code int
	}{
		{"text", clientFrame(true, opText, []byte("hello")), []string{"msg:hello"}, 0},
		{"16-bit length", clientFrame(true, opBinary, big[:200]), []string{"msg:" + string(big[:200])}, 0},
		{"fragments around a ping", cat(
			clientFrame(false, opText, []byte("he")),
			clientFrame(true, opPing, []byte("p")),
			clientFrame(false, opContinuation, []byte("ll")),
			clientFrame(true, opContinuation, []byte("o")),
		), []string{"ping:p", "msg:hello"}, 0},
		{"too large, then on", cat(
			clientFrame(true, opText, big[:257]),
			clientFrame(true, opText, []byte("next")),
		), []string{"too-large", "msg:next"}, 0},
		{"fragmented too large", cat(
			clientFrame(false, opText, big[:200]),
			clientFrame(true, opContinuation, big[:200]),
			clientFrame(true, opText, []byte("next")),
		), []string{"too-large", "msg:next"}, 0},
		{"beyond the hard limit", clientFrame(true, opText, big[:257]), nil, -1},
		{"unmasked", []byte{0x81, 0x01, 'x'}, nil, statusProtocolError},
		{"reserved bits", append([]byte{0xc1}, clientFrame(true, opText, nil)[1:]...), nil, statusProtocolError},
		{"fragmented control", clientFrame(false, opPing, nil), nil, statusProtocolError},
		{"unknown opcode", clientFrame(true, 0x3, nil), nil, statusProtocolError},
		{"stray continuation", clientFrame(true, opContinuation, nil), nil, statusProtocolError},
		{"message inside a message", cat(clientFrame(false, opText, nil), clientFrame(true, opText, nil)), nil, statusProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := frameParser{limit: 256, hard: 1024}
			if tc.code == -1 {
				f.hard, tc.code = 256, statusMessageTooBig
			}
			sink := &recordingSink{}
			// Byte by byte: every frame arrives in pieces.
			var buf []byte
			var perr *parseError
			for _, c := range tc.in {
				buf = append(buf, c)
				var n int
				if n, perr = f.parse(buf, sink); perr != nil {
					break
				}
				buf = buf[n:]
			}
			switch {
			case tc.code != 0 && (perr == nil || perr.code != tc.code):
				t.Fatalf("error %+v, want code %d", perr, tc.code)
			case tc.code == 0 && perr != nil:
				t.Fatalf("error %+v", perr)
			case tc.code == 0 && len(buf) != 0:
				t.Fatalf("%d bytes left", len(buf))
			}
			if len(sink.got) != len(tc.want) {
				t.Fatalf("got %q, want %q", sink.got, tc.want)
			}
			for i := range tc.want {
				if sink.got[i] != tc.want[i] {
					t.Fatalf("got %q, want %q", sink.got, tc.want)
				}
			}
		})
	}
}

func TestServerFrames(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xffff, 0x10000} {
		b := appendFrame(nil, opText, bytes.Repeat([]byte("y"), n))
		if size, op := frameSize(b); size != len(b) || op != opText {
			t.Errorf("frame of %d bytes: frameSize = %d, %x", n, size, op)
		}
	}
	if got := appendClose(nil, StatusGoingAway, "bye"); !bytes.Equal(got, []byte{0x88, 5, 0x03, 0xe9, 'b', 'y', 'e'}) {
		t.Errorf("close frame % x", got)
	}
	// RFC 6455 section 1.3's example.
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("accept key %q", got)
	}
}
