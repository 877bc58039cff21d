package media

import (
	"bytes"
	"testing"
	"time"
)

// annexB joins NAL units with start codes, alternating three- and
// four-byte ones.
func annexB(nals ...[]byte) []byte {
	var b []byte
	for i, n := range nals {
		if i%2 == 0 {
			b = append(b, 0, 0, 0, 1)
		} else {
			b = append(b, 0, 0, 1)
		}
		b = append(b, n...)
	}
	return b
}

// frameOf joins NAL units the way h264Source returns them.
func frameOf(nals ...[]byte) []byte {
	var b []byte
	for _, n := range nals {
		b = append(append(b, annexBStartCode...), n...)
	}
	return b
}

func TestH264AccessUnits(t *testing.T) {
	var (
		aud    = []byte{0x09, 0xf0}
		sps    = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda}
		pps    = []byte{0x68, 0xce, 0x3c, 0x80}
		sei    = []byte{0x06, 0x05, 0x01, 0xaa, 0x80}
		idr0   = []byte{0x65, 0x88, 0x84, 0x21} // first_mb_in_slice = 0
		idr1   = []byte{0x65, 0x41, 0x9a, 0x10} // first_mb_in_slice != 0: same picture
		p0     = []byte{0x41, 0x9a, 0x22, 0x11}
		p1     = []byte{0x41, 0x40, 0x12}
		filler = []byte{0x0c, 0xff, 0xff, 0x80}
		p2     = []byte{0x01, 0x80, 0x07}
	)
	stream := annexB(aud, sps, pps, sei, idr0, idr1, aud, p0, filler, p1, p2, sps, pps, idr0)
	src, err := openReader(bytes.NewReader(stream), nil, "t.h264", OpenOptions{FrameRate: 25})
	if err != nil {
		t.Fatal(err)
	}
	if src.Codec().MimeType != "video/H264" {
		t.Errorf("codec %s", src.Codec().MimeType)
	}
	frames, durs := readAll(t, src, 100)
	want := [][]byte{
		frameOf(sps, pps, idr0, idr1), // AUD and SEI dropped
		frameOf(p0, p1),               // filler dropped
		frameOf(p2),
		frameOf(sps, pps, idr0),
	}
	if len(frames) != len(want) {
		t.Fatalf("got %d frames, want %d", len(frames), len(want))
	}
	for i := range want {
		if !bytes.Equal(frames[i], want[i]) {
			t.Errorf("frame %d = % x, want % x", i, frames[i], want[i])
		}
		if durs[i] != 40*time.Millisecond {
			t.Errorf("frame %d lasts %v, want 40ms", i, durs[i])
		}
		if key := h264HasIDR(frames[i]); key != (i == 0 || i == 3) {
			t.Errorf("frame %d: IDR %v", i, key)
		}
	}
}
