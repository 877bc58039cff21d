package natlab

// sysSetns is the setns(2) system call number, which the syscall package
// lacks on this architecture.
const sysSetns = 308
