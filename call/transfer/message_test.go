package transfer

import (
	"errors"
	"strings"
	"testing"
)

const testSHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestParseMessage(t *testing.T) {
	upper := strings.ToUpper(testSHA)
	tests := []struct {
		in      string
		want    message
		wantErr error
	}{
		{`{"type":"file","name":"a.pdf","size":12,"sha256":"` + testSHA + `","mime":"application/pdf"}`,
			message{kind: kindHeader, header: Header{Name: "a.pdf", Size: 12, SHA256: testSHA, MIME: "application/pdf"}}, nil},
		{`{"type":"file","size":0,"sha256":"` + upper + `","extra":[1,2]}`,
			message{kind: kindHeader, header: Header{Name: "file", SHA256: testSHA}}, nil},
		{`{"type":"file","name":"","size":1e3,"sha256":"` + testSHA + `"}`,
			message{kind: kindHeader, header: Header{Size: 1000, SHA256: testSHA}}, nil},
		{`{"type":"file","name":"a","size":9007199254740991,"sha256":"` + testSHA + `"}`,
			message{kind: kindHeader, header: Header{Name: "a", Size: maxSafeInteger, SHA256: testSHA}}, nil},
		{`{"type":"file","name":"a","size":9007199254740992,"sha256":"` + testSHA + `"}`, message{}, ErrBadHeader},
		{`{"type":"file","name":"a","size":-1,"sha256":"` + testSHA + `"}`, message{}, ErrBadHeader},
		{`{"type":"file","name":"a","size":"1","sha256":"` + testSHA + `"}`, message{}, ErrBadHeader},
		{`{"type":"file","name":"a","sha256":"` + testSHA + `"}`, message{}, ErrBadHeader},
		{`{"type":"file","name":"a","size":1,"sha256":null}`, message{}, ErrBadHeader},
		{`{"type":"file","name":"a","size":1,"sha256":"` + testSHA[:63] + `g"}`, message{}, ErrBadHeader},
		{`{"type":"file","name":7,"size":1,"sha256":"` + testSHA + `"}`, message{}, ErrBadHeader},
		{`{"type":"eof"}`, message{kind: kindEOF}, nil},
		{`{"type":"file-ack","sha256":"` + upper + `","ok":true}`, message{kind: kindAck, ack: Ack{SHA256: testSHA, OK: true}}, nil},
		{`{"type":"file-ack","sha256":null,"ok":false,"error":"too large"}`, message{kind: kindAck, ack: Ack{Error: "too large"}}, nil},
		{`{"type":"file-ack","ok":"yes"}`, message{}, ErrProtocol},
		{`{"type":"hello"}`, message{kind: kindOther}, nil},
		{`[]`, message{}, ErrProtocol},
		{`{`, message{}, ErrProtocol},
		{``, message{}, ErrProtocol},
	}
	for _, tt := range tests {
		got, err := parseMessage([]byte(tt.in))
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("parseMessage(%s) error %v, want %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("parseMessage(%s) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	h := Header{Name: `a "b" \ c.txt`, Size: 5, SHA256: testSHA, MIME: "text/plain"}
	b, err := encodeHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"file","name":"a \"b\" \\ c.txt","size":5,"sha256":"` + testSHA + `","mime":"text/plain"}`; string(b) != want {
		t.Errorf("encodeHeader = %s, want %s", b, want)
	}
	for _, a := range []Ack{{SHA256: testSHA, OK: true}, {Error: "bad header"}} {
		b, err := encodeAck(a)
		if err != nil {
			t.Fatal(err)
		}
		m, err := parseMessage(b)
		if err != nil || m.kind != kindAck || m.ack != a {
			t.Errorf("ack %+v encoded as %s parsed back as %+v, %v", a, b, m, err)
		}
	}
	if b, _ := encodeAck(Ack{Error: "x"}); string(b) != `{"type":"file-ack","sha256":null,"ok":false,"error":"x"}` {
		t.Errorf("failed ack encoded as %s", b)
	}
}
