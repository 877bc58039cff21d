// Package procutil holds the Linux process plumbing that rtckit's browser
// launchers share to clean up after a browser: listing processes from
// /proc and waiting, through a pidfd, for a killed process to exit.
// Outside Linux the package is empty.
package procutil
