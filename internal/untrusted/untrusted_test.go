package untrusted

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"Unsupported address family\x00\x00": "Unsupported address family",
		" \x1b[31mred\x1b[0m ":               "[31mred[0m",
		"café":                               "caf",
		"":                                   "",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Text(strings.Repeat("a", 1000)); len(got) != MaxLen {
		t.Errorf("long text: %d bytes, want %d", len(got), MaxLen)
	}
}
