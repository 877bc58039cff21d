package transfer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSanitizeName(t *testing.T) {
	long := strings.Repeat("é", 150) + ".pdf"
	tests := []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../etc/passwd", "passwd"},
		{`..\..\Windows\System32\evil.dll`, "evil.dll"},
		{"/abs/path/x.txt", "x.txt"},
		{"dir/", "file"},
		{"", "file"},
		{".", "file"},
		{"..", "file"},
		{"...", "file"},
		{".bashrc", "bashrc"},
		{" . hidden", "hidden"},
		{"trailing. . ", "trailing"},
		{"a\x00b\nc\x1bd", "a_b_c_d"},
		{"invoice\u202Efdp.exe", "invoice_fdp.exe"},
		{"zero\u200Bwidth", "zero_width"},
		{`a<b>c:d"e|f?g*h`, "a_b_c_d_e_f_g_h"},
		{"bad\xffutf8", "bad_utf8"},
		{"CON", "_CON"},
		{"nul.txt", "_nul.txt"},
		{"com1.tar.gz", "_com1.tar.gz"},
		{"console.txt", "console.txt"},
		{"COM10", "COM10"},
		{"résumé 2024.docx", "résumé 2024.docx"},
		{"日本語.txt", "日本語.txt"},
		{long, strings.Repeat("é", 98) + ".pdf"},
	}
	for _, tt := range tests {
		if got := SanitizeName(tt.in); got != tt.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNumberedName(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a.txt", 0, "a.txt"},
		{"a.txt", 1, "a (1).txt"},
		{"archive.tar.gz", 2, "archive.tar (2).gz"},
		{"noext", 3, "noext (3)"},
	}
	for _, tt := range tests {
		if got := numberedName(tt.in, tt.n); got != tt.want {
			t.Errorf("numberedName(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestPlaceFileNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	for i, content := range []string{"one", "two", "three"} {
		tmp := filepath.Join(dir, ".tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		path, err := placeFile(tmp, dir, "x.txt")
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, numberedName("x.txt", i)); path != want {
			t.Errorf("placed at %q, want %q", path, want)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Errorf("%s holds %q, want %q", path, got, content)
		}
		if _, err := os.Stat(tmp); !os.IsNotExist(err) {
			t.Errorf("temporary file still there: %v", err)
		}
	}
}
