// Package peer holds what rtckit needs to reach and configure WebRTC peers,
// starting with ICE server URIs.
//
// ParseICEServerURI parses and validates STUN (RFC 7064) and TURN (RFC 7065)
// server URIs such as
//
//	stun:stun.example.org
//	stuns:[2001:db8::1]:443
//	turn:alice:s3cret@turn.example.org:3478?transport=tcp
//
// filling in default ports and transports, and returns errors that name the
// problem and the offending input. Every error wraps ErrBadURI and one
// specific sentinel (ErrScheme, ErrHost, ErrPort, ...), so callers can test
// for them with errors.Is. Passwords never appear in error messages, in
// ICEServerURI.String or in JSON.
//
// The package does no I/O and does not depend on any command-line framework.
package peer
