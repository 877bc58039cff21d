package turnserver

import (
	"bufio"
	"errors"
	"strings"
	"testing"
	"unicode"
)

// FuzzParseUsers feeds arbitrary user lists to the parser. It must never
// panic; on success every user must come from one line of the input, with
// a valid name and password; on failure the error must wrap ErrBadUsers and
// name a line.
func FuzzParseUsers(f *testing.F) {
	for _, s := range []string{
		"",
		"alice:wonderland\n",
		"# comment\n\nalice:wonderland\nbob:a:b:c\n",
		"alice\n",
		"alice:\n",
		":pw\n",
		"alice:x\nalice:y\n",
		"al ice:x\n",
		"\xff\xfe:x\r\n",
		"  carol:p w d  \r\n# end",
		strings.Repeat("x", 5000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		users, err := ParseUsers(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadUsers) || !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error %q does not wrap ErrBadUsers with a line number", err)
			}
			return
		}
		lines := map[string]bool{}
		sc := bufio.NewScanner(strings.NewReader(in))
		sc.Buffer(nil, maxUserLineBytes)
		for sc.Scan() {
			lines[strings.TrimSpace(sc.Text())] = true
		}
		for user, pass := range users {
			if err := checkCredentials(user, pass); err != nil {
				t.Fatalf("accepted a bad credential for %q: %v", user, err)
			}
			if strings.IndexFunc(user, unicode.IsSpace) >= 0 || strings.HasPrefix(user, "#") {
				t.Fatalf("accepted user name %q", user)
			}
			if !lines[user+":"+pass] {
				t.Fatalf("user %q does not come from one line of the input", user)
			}
		}
	})
}
