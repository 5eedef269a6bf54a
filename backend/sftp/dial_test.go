package sftp

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestSubsystemTimeoutSaysConnectTimeout: a server that authenticates but
// never answers the sftp subsystem request (a loaded server, or a machine
// too busy to finish the init in time) must give an error that names
// connect_timeout, not one that blames the server for hanging up. The
// deadline closing the connection used to read as "server unexpectedly
// closed connection", which sent users looking at sshd_config.
func TestSubsystemTimeoutSaysConnectTimeout(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	scfg := &ssh.ServerConfig{PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) { return nil, nil }}
	scfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, chans, reqs, err := ssh.NewServerConn(c, scfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for nc := range chans {
					ch, creqs, err := nc.Accept()
					if err != nil {
						continue
					}
					// Hold every request unanswered until the client
					// gives up.
					go func() {
						defer ch.Close()
						for range creqs {
						}
					}()
				}
			}()
		}
	}()
	host, ps, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(ps)
	cfg := Config{Host: host, Port: port, User: "u", Path: ".", Password: []byte("pw-for-timeout-test"),
		HostKeys: []string{ssh.FingerprintSHA256(signer.PublicKey())}, ConnectTimeout: 700 * time.Millisecond}
	start := time.Now()
	b, err := New(context.Background(), cfg)
	if err == nil {
		b.Close()
		t.Fatal("New succeeded against a server that never starts the subsystem")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("New took %v; connect_timeout is 700ms", took)
	}
	msg := err.Error()
	if !strings.Contains(msg, "connect_timeout") || strings.Contains(msg, "sshd_config") {
		t.Errorf("error %q should name connect_timeout and not blame sshd_config", msg)
	}
}
