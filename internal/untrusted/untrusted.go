// Package untrusted makes text that came from the network, such as a STUN
// or TURN server's reason phrase or SOFTWARE attribute, fit to display.
package untrusted

// MaxLen caps the text Text returns, in bytes.
const MaxLen = 128

// Text keeps the printable ASCII of s (no control characters, escape
// sequences or padding NULs), at most MaxLen bytes, without surrounding
// spaces.
func Text(s string) string {
	out := make([]byte, 0, min(len(s), MaxLen))
	for i := 0; i < len(s) && len(out) < MaxLen; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	for len(out) > 0 && out[len(out)-1] == ' ' {
		out = out[:len(out)-1]
	}
	for len(out) > 0 && out[0] == ' ' {
		out = out[1:]
	}
	return string(out)
}
