//go:build !amd64 && !arm64 && !riscv64 && !loong64

package natlab

// sysSetns is unknown on this architecture: Lab.Do fails with ENOSYS.
const sysSetns = -1
