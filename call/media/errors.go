package media

import "errors"

// ErrUnsupported is wrapped by errors about media rtckit cannot handle: an
// unknown file format, a codec it does not send or record, multistream Opus.
var ErrUnsupported = errors.New("unsupported media")

// ErrBadMedia is wrapped by errors about a media file that claims a format
// it does not follow: a bad signature, a truncated or oversized frame, a
// broken Ogg page.
var ErrBadMedia = errors.New("bad media file")

// ErrRecord is wrapped by errors that stop a recording: the directory is
// missing, or a file cannot be created or written (a full disk).
var ErrRecord = errors.New("recording failed")
