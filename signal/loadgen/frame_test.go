package loadgen

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// serverFrames parses every whole frame of data, in one piece or cut at
// cut as the event loop receives it (the rest of a frame kept for the
// next read), and returns the frames' first bytes and payloads.
func serverFrames(data []byte, cut int) (heads []byte, payloads [][]byte, err error) {
	var in []byte
	for _, part := range [][]byte{data[:cut], data[cut:]} {
		in = append(in, part...)
		used := 0
		for {
			h0, payload, n, err := serverFrame(in[used:])
			if err != nil {
				return heads, payloads, err
			}
			if n == 0 {
				break
			}
			heads = append(heads, h0)
			payloads = append(payloads, bytes.Clone(payload))
			used += n
		}
		in = append(in[:0], in[used:]...)
	}
	return heads, payloads, nil
}

// frameOf is one unmasked server frame.
func frameOf(h0 byte, payload []byte) []byte {
	b := []byte{h0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
	return append(b, payload...)
}

func TestServerFrame(t *testing.T) {
	text := frameOf(0x81, []byte(`{"type":"pong"}`))
	long := frameOf(0x81, bytes.Repeat([]byte("x"), 300))
	huge := frameOf(0x82, bytes.Repeat([]byte("y"), 70000))
	stream := append(append(append([]byte(nil), text...), long...), huge...)
	for cut := 0; cut <= len(stream); cut += 97 {
		heads, payloads, err := serverFrames(stream, cut)
		if err != nil || len(heads) != 3 || len(payloads[1]) != 300 || len(payloads[2]) != 70000 || heads[2] != 0x82 {
			t.Fatalf("cut %d: %d frames, err %v", cut, len(heads), err)
		}
	}
	masked := []byte{0x81, 0x80 | 1, 1, 2, 3, 4, 'x'}
	if _, _, _, err := serverFrame(masked); err == nil {
		t.Error("a masked server frame was accepted")
	}
	tooBig := binary.BigEndian.AppendUint64([]byte{0x82, 127}, maxServerSize+1)
	if _, _, _, err := serverFrame(tooBig); err == nil {
		t.Error("a frame over maxServerSize was accepted")
	}
}

// FuzzServerFrame: parsing server input never panics, and a stream cut
// anywhere yields the same frames as in one piece.
func FuzzServerFrame(f *testing.F) {
	f.Add(frameOf(0x81, []byte(`{"type":"pong"}`)), 3)
	f.Add(append(frameOf(0x89, []byte("ping")), frameOf(0x88, []byte{3, 232})...), 7)
	f.Add(frameOf(0x01, bytes.Repeat([]byte("z"), 200)), 2)
	f.Add([]byte{0x81, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 5)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		if cut < 0 {
			cut = -cut
		}
		cut %= len(data) + 1
		heads, payloads, err := serverFrames(data, len(data))
		cutHeads, cutPayloads, cutErr := serverFrames(data, cut)
		if (err != nil) != (cutErr != nil) || !bytes.Equal(heads, cutHeads) || len(payloads) != len(cutPayloads) {
			t.Fatalf("whole: %d frames, %v; cut at %d: %d frames, %v", len(heads), err, cut, len(cutHeads), cutErr)
		}
		for i := range payloads {
			if !bytes.Equal(payloads[i], cutPayloads[i]) {
				t.Fatalf("frame %d differs when cut at %d", i, cut)
			}
		}
	})
}
