package media

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// oggPage builds one Ogg page holding packets, each laced; a packet ending
// in a 255 lacing value continues on the next page. A nil packet list with
// cont gives a page continuing a packet with data.
func oggPage(flags byte, serial, seq uint32, packets ...[]byte) []byte {
	var lacing, data []byte
	for _, p := range packets {
		n := len(p)
		for n >= 255 {
			lacing = append(lacing, 255)
			n -= 255
		}
		lacing = append(lacing, byte(n))
		data = append(data, p...)
	}
	return rawOggPage(flags, serial, seq, lacing, data)
}

// rawOggPage builds an Ogg page from a lacing table and data.
func rawOggPage(flags byte, serial, seq uint32, lacing, data []byte) []byte {
	h := make([]byte, oggPageHeaderLen)
	copy(h, "OggS")
	h[5] = flags
	binary.LittleEndian.PutUint32(h[14:], serial)
	binary.LittleEndian.PutUint32(h[18:], seq)
	h[26] = byte(len(lacing))
	binary.LittleEndian.PutUint32(h[22:], oggCRC(h, lacing, data))
	return append(append(h, lacing...), data...)
}

// opusHead is a mono OpusHead packet.
var opusHead = []byte("OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00")

// opusTags is an OpusTags packet with an empty vendor and no comments.
var opusTags = []byte("OpusTags\x00\x00\x00\x00\x00\x00\x00\x00")

func TestOggPacketsAcrossPagesAndStreams(t *testing.T) {
	p20 := append([]byte{0xfc}, bytes.Repeat([]byte{1}, 40)...) // CELT FB 20 ms
	p10 := []byte{0xf4, 2, 2}                                   // CELT FB 10 ms
	long := append([]byte{0xfd, 3}, bytes.Repeat([]byte{7}, 600)...)
	// long (code 1: two 20 ms frames) is split: 510 bytes on one page, the rest on the next.
	var file []byte
	file = append(file, oggPage(2, 7, 0, opusHead)...)
	file = append(file, oggPage(2, 9, 0, []byte("\x80theora"))...) // another stream, skipped
	file = append(file, oggPage(0, 7, 1, opusTags)...)
	file = append(file, oggPage(0, 7, 2, p20, p10)...)
	file = append(file, oggPage(0, 9, 1, []byte("video data"))...)
	file = append(file, rawOggPage(0, 7, 3, []byte{10, 255, 255}, append(append([]byte{}, p20[:10]...), long[:510]...))...)
	file = append(file, rawOggPage(1, 7, 4, []byte{byte(len(long) - 510), 3}, append(append([]byte{}, long[510:]...), p10...))...)
	file = append(file, oggPage(4, 7, 5)...)      // empty EOS page
	file = append(file, oggPage(0, 7, 6, p20)...) // after EOS: ignored

	src, err := openReader(bytes.NewReader(file), nil, "t.ogg", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	frames, durs := readAll(t, src, 100)
	want := [][]byte{p20, p10, p20[:10], long, p10}
	wantDur := []time.Duration{20, 10, 20, 40, 10}
	if len(frames) != len(want) {
		t.Fatalf("got %d packets, want %d", len(frames), len(want))
	}
	for i := range want {
		if !bytes.Equal(frames[i], want[i]) {
			t.Errorf("packet %d: got %d bytes % x..., want %d bytes", i, len(frames[i]), frames[i][:3], len(want[i]))
		}
		if durs[i] != wantDur[i]*time.Millisecond {
			t.Errorf("packet %d lasts %v, want %v ms", i, durs[i], wantDur[i])
		}
	}
}

func TestOpusDuration(t *testing.T) {
	tests := []struct {
		packet []byte
		want   time.Duration
		ok     bool
	}{
		{[]byte{0x00}, 10 * time.Millisecond, true},        // SILK NB 10 ms
		{[]byte{0x18}, 60 * time.Millisecond, true},        // SILK NB 60 ms
		{[]byte{0x19}, 120 * time.Millisecond, true},       // two 60 ms frames
		{[]byte{0x68}, 20 * time.Millisecond, true},        // Hybrid SWB 20 ms
		{[]byte{0x80}, 2500 * time.Microsecond, true},      // CELT 2.5 ms
		{[]byte{0xfb, 0x03}, 60 * time.Millisecond, true},  // code 3, three 20 ms frames
		{[]byte{0xfb, 0x07}, 0, false},                     // code 3, 140 ms: too long
		{[]byte{0xfb, 0x00}, 0, false},                     // code 3 with no frames
		{[]byte{0xfb}, 0, false},                           // code 3 without a count
		{nil, 0, false},                                    // empty
		{[]byte{0xe3, 0x31}, 0, false},                     // 49 × 2.5 ms is over 120 ms
		{[]byte{0xe3, 0x30}, 120 * time.Millisecond, true}, // 48 × 2.5 ms
	}
	for _, tt := range tests {
		got, ok := opusDuration(tt.packet)
		if got != tt.want || ok != tt.ok {
			t.Errorf("opusDuration(% x) = %v, %v; want %v, %v", tt.packet, got, ok, tt.want, tt.ok)
		}
	}
}
