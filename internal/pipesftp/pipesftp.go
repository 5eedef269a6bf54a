package pipesftp

import (
	"context"
	"io"
	"net"

	psftp "github.com/pkg/sftp"
)

// Dialer returns a dial function that serves each dial with a new
// pkg/sftp server over a net.Pipe. Without a working directory the server
// takes paths as given. The io.Closer it returns closes both ends of the
// pipe; wrap, when not nil, wraps that closer, so that a test can give
// the transport more methods (such as OpenSFTPStream).
func Dialer(wrap func(io.Closer) io.Closer) func(context.Context) (*psftp.Client, io.Closer, error) {
	return func(ctx context.Context) (*psftp.Client, io.Closer, error) {
		cs, ss := net.Pipe()
		srv, err := psftp.NewServer(ss)
		if err != nil {
			return nil, nil, err
		}
		go func() { _ = srv.Serve(); srv.Close() }()
		cl, err := psftp.NewClientPipe(cs, cs)
		if err != nil {
			cs.Close()
			return nil, nil, err
		}
		var c io.Closer = pipeEnds{cs, ss}
		if wrap != nil {
			c = wrap(c)
		}
		return cl, c, nil
	}
}

type pipeEnds [2]net.Conn

func (p pipeEnds) Close() error {
	p[0].Close()
	p[1].Close()
	return nil
}
