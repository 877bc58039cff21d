// Package stunprobe discovers a host's public addresses and the behaviour of
// the NATs and firewalls in front of it, using STUN (RFC 8489) Binding
// requests and the NAT behaviour discovery tests of RFC 5780.
//
// All tests run concurrently under one deadline with a short retransmission
// schedule. Each test records its evidence; a pure classifier turns the
// evidence into RFC 4787 mapping and filtering behaviours and a verdict. A
// network failure is data in the Report, never an error of Probe.
package stunprobe
