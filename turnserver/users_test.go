package turnserver

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParseUsers(t *testing.T) {
	in := `# lab users
alice:wonderland

  bob:pass:with:colons  
carol:p w d
	# indented comment
dave:#not-a-comment
`
	got, err := ParseUsers(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"alice": "wonderland", "bob": "pass:with:colons", "carol": "p w d", "dave": "#not-a-comment"}
	if !maps.Equal(got, want) {
		t.Errorf("ParseUsers = %v, want %v", got, want)
	}
	if got, err := ParseUsers(strings.NewReader("")); err != nil || len(got) != 0 {
		t.Errorf("empty list: %v, %v", got, err)
	}
}

func TestParseUsersErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no colon", "alice:x\nsecret-password\n", "line 2: turnserver: bad user list: want user:password"},
		{"empty password", "alice:\n", "line 1: turnserver: bad user list: user \"alice\" has an empty password"},
		{"empty user", "# c\n:secret-password\n", "line 2: turnserver: bad user list: empty user name"},
		{"space in user", "al ice:secret-password\n", "line 1: turnserver: bad user list: user name \"al ice\" contains white space"},
		{"duplicate", "alice:a\nbob:b\nalice:secret-password\n", "line 3: turnserver: bad user list: user \"alice\" already defined on line 1"},
		{"long user", strings.Repeat("u", 509) + ":secret-password\n", "line 1: turnserver: bad user list: user name is 509 bytes long"},
		{"long line", "alice:a\n" + strings.Repeat("secret-password", 400) + "\n", "line 2: turnserver: bad user list: longer than 4096 bytes"},
		{"invalid UTF-8", "\xff:secret-password\n", "line 1: turnserver: bad user list: user name is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseUsers(strings.NewReader(tt.in))
			if err == nil || !errors.Is(err, ErrBadUsers) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("ParseUsers: %v, want ErrBadUsers starting %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-password") {
				t.Errorf("the error quotes a password: %v", err)
			}
		})
	}
}

func TestParseUser(t *testing.T) {
	for _, tt := range []struct {
		in, user, pass string
		ok             bool
	}{
		{"alice:wonderland", "alice", "wonderland", true},
		{"alice:a:b", "alice", "a:b", true},
		{"alice: padded ", "alice", " padded ", true},
		{"alice", "", "", false},
		{":x", "", "", false},
		{"alice:", "", "", false},
		{" alice:x", "", "", false},
	} {
		user, pass, err := ParseUser(tt.in)
		if (err == nil) != tt.ok || user != tt.user || pass != tt.pass {
			t.Errorf("ParseUser(%q) = %q, %q, %v", tt.in, user, pass, err)
		}
	}
}
