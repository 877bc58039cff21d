package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// fallbackName replaces a name that sanitises to nothing.
const fallbackName = "file"

// maxNameBytes bounds a sanitised name, leaving room for a " (n)" suffix
// within the 255-byte limit of common file systems.
const maxNameBytes = 200

// maxUniqueTries bounds the " (n)" suffixes tried for a free name.
const maxUniqueTries = 10000

// SanitizeName turns a peer's display name into a safe file name: only the
// part after the last '/' or '\', invalid UTF-8, control and format
// characters (bidirectional overrides, zero-width marks) and characters
// Windows forbids (<>:"|?*) replaced by '_', no leading dots or spaces (no
// hidden files, no "." or ".."), no trailing dots or spaces, Windows device
// names (CON, NUL, COM1, ...) prefixed with '_', at most 200 bytes keeping
// the extension, and "file" when nothing is left.
func SanitizeName(name string) string {
	name = strings.ToValidUTF8(name, "_")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || strings.ContainsRune(`<>:"|?*`, r) {
			return '_'
		}
		return r
	}, name)
	name = strings.TrimLeft(name, ". ")
	name = strings.TrimRight(name, ". ")
	if name == "" {
		return fallbackName
	}
	if isWindowsDevice(name) {
		name = "_" + name
	}
	return truncateName(name, maxNameBytes)
}

// isWindowsDevice reports whether name, up to its first dot, is a Windows
// device name, which Windows will not create as a file whatever the
// extension.
func isWindowsDevice(name string) bool {
	base, _, _ := strings.Cut(name, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) {
		return base[3] >= '0' && base[3] <= '9'
	}
	return false
}

// truncateName shortens name to at most limit bytes on a rune boundary,
// keeping a short extension.
func truncateName(name string, limit int) string {
	if len(name) <= limit {
		return name
	}
	ext := filepath.Ext(name)
	if len(ext) > limit/4 {
		ext = ""
	}
	stem := name[:len(name)-len(ext)]
	cut := limit - len(ext)
	for cut > 0 && !utf8.RuneStart(stem[cut]) {
		cut--
	}
	return strings.TrimRight(stem[:cut], ". ") + ext
}

// numberedName returns name with " (n)" before its extension; n = 0 is
// name itself.
func numberedName(name string, n int) string {
	if n == 0 {
		return name
	}
	ext := filepath.Ext(name)
	if ext == name {
		ext = ""
	}
	return fmt.Sprintf("%s (%d)%s", name[:len(name)-len(ext)], n, ext)
}

// placeFile moves the finished temporary file tmp into dir under name, or
// name with the first free " (n)" suffix, never replacing an existing file,
// and returns the final path. On success tmp is gone; on error nothing was
// placed and tmp is still there.
func placeFile(tmp, dir, name string) (string, error) {
	for n := range maxUniqueTries {
		dst := filepath.Join(dir, numberedName(name, n))
		err := os.Link(tmp, dst)
		if err == nil {
			if err := os.Remove(tmp); err != nil {
				// Not placed after all: a file in dir means a transfer
				// reported as done.
				return "", errors.Join(err, os.Remove(dst))
			}
			return dst, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		// No hard links here (some file systems): reserve the name, then
		// rename over the reservation.
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := f.Close(); err != nil {
			return "", err
		}
		if err := os.Rename(tmp, dst); err != nil {
			_ = os.Remove(dst)
			return "", err
		}
		return dst, nil
	}
	return "", fmt.Errorf("no free name for %q in %s", name, dir)
}
