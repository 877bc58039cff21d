package turnserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// maxUserLineBytes bounds one line of a user list.
const maxUserLineBytes = 4096

// ParseUser parses one "user:password" credential, as given to the CLI's
// --user flag. The user name ends at the first colon, so a password may
// contain colons; a user name may not contain white space. Errors wrap
// ErrBadUsers and never quote the password.
func ParseUser(s string) (user, password string, err error) {
	user, password, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", fmt.Errorf("%w: want user:password", ErrBadUsers)
	}
	if strings.IndexFunc(user, unicode.IsSpace) >= 0 {
		return "", "", fmt.Errorf("%w: user name %q contains white space", ErrBadUsers, user)
	}
	if err := checkCredentials(user, password); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrBadUsers, err)
	}
	return user, password, nil
}

// ParseUsers reads a user list: one "user:password" per line as ParseUser
// takes it, with blank lines and lines starting with # ignored and white
// space around a line trimmed. A user defined twice is an error. Errors wrap
// ErrBadUsers, name the line and never quote a password.
func ParseUsers(r io.Reader) (map[string]string, error) {
	users := make(map[string]string)
	lineOf := make(map[string]int)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxUserLineBytes)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, pass, err := ParseUser(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if prev, dup := lineOf[user]; dup {
			return nil, fmt.Errorf("line %d: %w: user %q already defined on line %d", n, ErrBadUsers, user, prev)
		}
		users[user], lineOf[user] = pass, n
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: %w: longer than %d bytes", n+1, ErrBadUsers, maxUserLineBytes)
		}
		return nil, fmt.Errorf("reading the user list: %w", err)
	}
	return users, nil
}
