package cmd

import (
	"bufio"
	"io"
	"strings"
	"testing"

	"github.com/rtckit/rtckit/call"
)

// TestReadTokenLine: --accept - takes the first non-empty line as the
// token and leaves what follows (chat) on the reader.
func TestReadTokenLine(t *testing.T) {
	r := bufio.NewReaderSize(strings.NewReader("\n  \n rtc1.token \nhello peer\n"), call.MaxTokenLen+4)
	tok, err := readTokenLine(r)
	if err != nil || tok != "rtc1.token" {
		t.Fatalf("token %q, %v", tok, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "hello peer\n" {
		t.Errorf("rest %q, want the chat line", rest)
	}
	if tok, err := readTokenLine(bufio.NewReader(strings.NewReader("rtc1.last"))); err != nil || tok != "rtc1.last" {
		t.Errorf("token without a newline: %q, %v", tok, err)
	}
	for name, in := range map[string]string{
		"empty":    "",
		"blank":    "\n \n",
		"too long": strings.Repeat("A", call.MaxTokenLen+10) + "\n",
	} {
		if _, err := readTokenLine(bufio.NewReaderSize(strings.NewReader(in), call.MaxTokenLen+4)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
