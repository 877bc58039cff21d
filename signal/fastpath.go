// The relay fast path: offers, answers, candidates and hang-ups in their
// usual shape are checked and re-encoded by a single scan, without
// decoding them into a Message. Anything unusual (escaped keys, keys that
// match a Message field only case-insensitively, whitespace or characters
// that encoding/json would rewrite in the payload, a duplicate key) takes
// the full decoder, so both paths answer every input alike.

package signal

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// maxFastDepth bounds the nesting the fast scanner follows.
const maxFastDepth = 32

// fastMessage is a relayed message recognized by scanFast.
type fastMessage struct {
	typ     string // TypeVideoOffer, TypeVideoAnswer, TypeNewICECandidate or TypeHangUp
	target  []byte // the target's name as JSON string contents, needing no escape
	payload []byte // the sdp or candidate value as encoding/json writes it; nil for hang-up
}

// messageFields are the JSON names of Message's fields, lower case.
var messageFields = map[string]bool{
	"type": true, "id": true, "name": true, "date": true, "text": true, "target": true,
	"sdp": true, "candidate": true, "users": true, "version": true, "iceservers": true,
	"ts": true, "code": true, "message": true, "ref": true, "token": true, "resume_ms": true,
}

// fastScanner walks one message. A clean value needs no rewriting by
// encoding/json's compaction with HTML escaping.
type fastScanner struct {
	b     []byte
	clean bool
}

// scanFast recognizes a relayed message that the full decoder would accept
// and the encoder would copy unchanged; false means "use the decoder".
func scanFast(data []byte) (fastMessage, bool) {
	var m fastMessage
	s := fastScanner{b: data}
	i := s.ws(0)
	if i >= len(data) || data[i] != '{' {
		return m, false
	}
	var sdp, cand []byte
	var seenSDP, seenCand, seenName bool
	for i = s.ws(i + 1); ; {
		key, vs, ok := s.member(i)
		if !ok {
			return m, false
		}
		s.clean = true
		var ve int
		if string(key) == "sdp" && vs < len(data) && data[vs] == '{' {
			ve, ok = s.sdpObject(vs)
		} else {
			ve, ok = s.value(vs, 0)
		}
		if !ok {
			return m, false
		}
		v := data[vs:ve]
		switch string(key) {
		case "type":
			if m.typ != "" || !s.clean {
				return m, false
			}
			if m.typ = relayType(v); m.typ == "" {
				return m, false
			}
		case "target":
			if m.target != nil || !s.clean || len(v) < 3 || v[0] != '"' || !plainString(v) {
				return m, false
			}
			m.target = v[1 : len(v)-1]
		case "sdp", "candidate":
			if !s.clean || (key[0] == 's' && seenSDP) || (key[0] == 'c' && seenCand) {
				return m, false
			}
			if key[0] == 's' {
				sdp, seenSDP = v, true
			} else {
				cand, seenCand = v, true
			}
		case "name":
			if seenName || (v[0] != '"' && string(v) != "null") {
				return m, false
			}
			seenName = true
		default:
			if messageFields[strings.ToLower(string(key))] {
				return m, false
			}
		}
		i = s.ws(ve)
		if i < len(data) && data[i] == ',' {
			i = s.ws(i + 1)
			continue
		}
		if i >= len(data) || data[i] != '}' {
			return m, false
		}
		break
	}
	if s.ws(i+1) != len(data) || m.typ == "" || m.target == nil {
		return m, false
	}
	switch m.typ {
	case TypeVideoOffer, TypeVideoAnswer:
		if len(sdp) == 0 || sdp[0] != '{' {
			return m, false
		}
		m.payload = sdp
	case TypeNewICECandidate:
		if len(cand) == 0 || (cand[0] != '{' && string(cand) != "null") {
			return m, false
		}
		m.payload = cand
	}
	return m, true
}

// relayType returns the relay type a JSON string names, or "".
func relayType(v []byte) string {
	switch string(v) {
	case `"video-offer"`:
		return TypeVideoOffer
	case `"video-answer"`:
		return TypeVideoAnswer
	case `"new-ice-candidate"`:
		return TypeNewICECandidate
	case `"hang-up"`:
		return TypeHangUp
	}
	return ""
}

// plainString reports whether a JSON string has no escape sequence.
func plainString(v []byte) bool {
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' {
			return false
		}
	}
	return true
}

// sdpObject checks the session description object at i: its "type" is a
// non-empty string, its "sdp", if any, is a string, and no other key is
// one that the decoder would take for either. Anything else makes the
// message take the decoder.
func (s *fastScanner) sdpObject(i int) (int, bool) {
	v := s.b
	var typ, sdp bool
	j := s.skipWS(i + 1)
	for j < len(v) && v[j] != '}' {
		key, vs, ok := s.member(j)
		if !ok || vs >= len(v) {
			return 0, false
		}
		if vs > j+len(key)+3 { // whitespace around the colon
			s.clean = false
		}
		ve, ok := s.value(vs, 1)
		if !ok {
			return 0, false
		}
		switch string(key) {
		case "type":
			if typ || v[vs] != '"' || ve-vs < 3 {
				return 0, false
			}
			typ = true
		case "sdp":
			if sdp || (v[vs] != '"' && string(v[vs:ve]) != "null") {
				return 0, false
			}
			sdp = true
		default:
			if k := strings.ToLower(string(key)); k == "type" || k == "sdp" {
				return 0, false
			}
		}
		j = s.skipWS(ve)
		if j < len(v) && v[j] == ',' {
			if j = s.skipWS(j + 1); j < len(v) && v[j] == '}' {
				return 0, false // a trailing comma
			}
		} else if j >= len(v) || v[j] != '}' {
			return 0, false
		}
	}
	if j >= len(v) || !typ {
		return 0, false
	}
	return j + 1, true
}

// member reads `"key":` at i and returns the key and where its value
// starts. Keys with escapes or non-ASCII characters are refused, as the
// decoder may match them to a field by case folding.
func (s *fastScanner) member(i int) ([]byte, int, bool) {
	if i >= len(s.b) || s.b[i] != '"' {
		return nil, 0, false
	}
	j := i + 1
	for ; j < len(s.b) && s.b[j] != '"'; j++ {
		if c := s.b[j]; c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return nil, 0, false
		} else if c == '<' || c == '>' || c == '&' {
			s.clean = false
		}
	}
	if j >= len(s.b) {
		return nil, 0, false
	}
	k := s.ws(j + 1)
	if k >= len(s.b) || s.b[k] != ':' {
		return nil, 0, false
	}
	return s.b[i+1 : j], s.ws(k + 1), true
}

// ws skips JSON whitespace.
func (s *fastScanner) ws(i int) int {
	for i < len(s.b) {
		switch s.b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value checks the JSON value at i and returns its end; whitespace inside
// it clears s.clean.
func (s *fastScanner) value(i, depth int) (int, bool) {
	if i >= len(s.b) || depth > maxFastDepth {
		return 0, false
	}
	switch c := s.b[i]; {
	case c == '"':
		return s.str(i)
	case c == '{' || c == '[':
		return s.composite(i, depth)
	case c == 't':
		return s.literal(i, "true")
	case c == 'f':
		return s.literal(i, "false")
	case c == 'n':
		return s.literal(i, "null")
	default:
		return s.number(i)
	}
}

// composite checks an object or array at i.
func (s *fastScanner) composite(i, depth int) (int, bool) {
	obj := s.b[i] == '{'
	end := byte(']')
	if obj {
		end = '}'
	}
	j := s.skipWS(i + 1)
	if j < len(s.b) && s.b[j] == end {
		return j + 1, true
	}
	for {
		if obj {
			if j >= len(s.b) || s.b[j] != '"' {
				return 0, false
			}
			k, ok := s.str(j)
			if !ok {
				return 0, false
			}
			if k = s.skipWS(k); k >= len(s.b) || s.b[k] != ':' {
				return 0, false
			}
			j = s.skipWS(k + 1)
		}
		k, ok := s.value(j, depth+1)
		if !ok {
			return 0, false
		}
		j = s.skipWS(k)
		if j >= len(s.b) {
			return 0, false
		}
		switch s.b[j] {
		case ',':
			j = s.skipWS(j + 1)
		case end:
			return j + 1, true
		default:
			return 0, false
		}
	}
}

// skipWS skips whitespace inside a value, which makes it unclean.
func (s *fastScanner) skipWS(i int) int {
	j := s.ws(i)
	if j != i {
		s.clean = false
	}
	return j
}

// literal checks true, false or null at i.
func (s *fastScanner) literal(i int, lit string) (int, bool) {
	if len(s.b)-i < len(lit) || string(s.b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// number checks a JSON number at i.
func (s *fastScanner) number(i int) (int, bool) {
	b, j := s.b, i
	digits := func() bool {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case !digits():
		return 0, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return 0, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return 0, false
		}
	}
	return j, true
}

// str checks a JSON string at i: valid escapes, no control characters,
// valid UTF-8. Characters that encoding/json escapes in HTML-safe output
// (<, >, &, U+2028, U+2029) make it unclean.
func (s *fastScanner) str(i int) (int, bool) {
	b := s.b
	for j := i + 1; j < len(b); {
		for j < len(b) && plainByte[b[j]] {
			j++
		}
		if j >= len(b) {
			break
		}
		c := b[j]
		switch {
		case c == '"':
			return j + 1, true
		case c == '\\':
			if j+1 >= len(b) {
				return 0, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) || !isHex4(b[j+2:j+6]) {
					return 0, false
				}
				j += 6
			default:
				return 0, false
			}
		case c < 0x20:
			return 0, false
		case c == '<' || c == '>' || c == '&':
			s.clean = false
			j++
		case c < utf8.RuneSelf:
			j++
		default:
			r, n := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && n == 1 {
				return 0, false
			}
			if r == '\u2028' || r == '\u2029' {
				s.clean = false
			}
			j += n
		}
	}
	return 0, false
}

// plainByte marks the bytes a JSON string carries as they are and
// encoding/json writes unchanged: printable ASCII but for ", \, <, > and &.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, rune(c))
	}
	return t
}()

// isHex4 reports whether b is four hexadecimal digits.
func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// appendFast encodes m from the sender called name as Encode would encode
// the Message that relay builds.
func appendFast(b []byte, m fastMessage, name string) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, m.typ...)
	b = append(b, `","name":`...)
	b = appendJSONString(b, name)
	b = append(b, `,"target":"`...)
	b = append(b, m.target...)
	b = append(b, '"')
	switch m.typ {
	case TypeVideoOffer, TypeVideoAnswer:
		b = append(b, `,"sdp":`...)
		b = append(b, m.payload...)
	case TypeNewICECandidate:
		b = append(b, `,"candidate":`...)
		b = append(b, m.payload...)
	}
	return append(b, '}')
}

// appendJSONString appends s as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s) // strings always marshal
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
