// Package rawsys holds the system calls of rtckit's event loops (the hub's
// and the load generator's) made without telling the Go scheduler: on
// non-blocking descriptors they never block, or block only briefly on a
// thread the loop owns. A scheduler-aware call checks whether the
// runtime's monitor thread (sysmon) sleeps because every processor was
// idle, and wakes it; a loop that idles between messages did that on
// almost every message: a futex wake, the monitor's 20 µs naps on the
// loop's core, its futex sleep again — about an eighth of the hub's CPU at
// 45,000 messages/s. Linux only.
package rawsys
