package faultproxy

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// ResetConn returns a loopback TCP connection that its peer has already
// reset, with the reset consumed: the next Write fails with the kernel's
// EPIPE inside a *net.OpError, as a write on a connection that a router
// or server dropped does. Tests use it to see what the layers above make
// of a real socket errno.
func ResetConn() (net.Conn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	dialed := make(chan struct{})
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			// Reset only once Dial has returned: a reset during the
			// handshake makes Dial itself fail.
			<-dialed
			_ = c.(*net.TCPConn).SetLinger(0) // close with RST
			err = c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	close(dialed)
	if err != nil {
		return nil, err
	}
	if err := <-accepted; err != nil {
		c.Close()
		return nil, err
	}
	// Wait for the RST: the read that sees it reports ECONNRESET.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		c.Close()
		return nil, errors.Join(errors.New("faultproxy: expected a connection reset"), err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, nil
}
