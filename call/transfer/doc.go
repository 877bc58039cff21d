// Package transfer sends and receives files over WebRTC data channels in
// the format of docs/file-transfer.md, the one rtckit's browser call page
// speaks: one channel labelled "file" per transfer carrying a JSON header,
// binary chunks of exactly ChunkSize bytes (the last may be shorter), a JSON
// "eof", and the receiver's JSON "file-ack" with the SHA-256 it computed.
//
// Send streams a file from disk on a new channel with flow control and
// waits for the acknowledgement. A Receiver accepts incoming "file"
// channels and writes each file to a temporary file in its directory,
// renaming it into place only when its size and SHA-256 match the header,
// under a sanitised, unique name: the sender's name is never used as a path.
package transfer
