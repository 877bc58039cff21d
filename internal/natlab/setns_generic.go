//go:build arm64 || riscv64 || loong64

package natlab

// sysSetns is the setns(2) system call number in the generic system call
// table, which the syscall package lacks.
const sysSetns = 268
