// Package faultproxy is a TCP proxy on 127.0.0.1 that tests put between a
// client and a server to inject network faults on demand: drop every
// connection abruptly (as a crashed router or a killed server would),
// stall all traffic while keeping connections open (as a hung server or a
// black-holed route would), refuse new connections, or point new
// connections at another server.
//
// It exists so that reconnect, timeout and keepalive behaviour of the
// SFTP backend can be tested against a real OpenSSH server without root
// tricks such as iptables.
package faultproxy
