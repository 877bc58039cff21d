package cmd

import (
	"encoding/json"
	"io"
)

// writeEvent prints a server's event as one JSON line (--json) or as text
// rendered by text, so every server command reports alike.
func writeEvent[E any](w io.Writer, asJSON bool, ev E, text func(E) string) error {
	if asJSON {
		return json.NewEncoder(w).Encode(ev)
	}
	_, err := io.WriteString(w, text(ev))
	return err
}
