package sftp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestBatchConnOrderAndBytes writes records of many sizes from several
// goroutines, each record whole under a lock as x/crypto/ssh does, and
// checks that the peer receives exactly the records written, in order.
func TestBatchConnOrderAndBytes(t *testing.T) {
	c, s := tcpPair(t)
	b := newBatchConn(c)
	var mu sync.Mutex
	var sent bytes.Buffer
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				rec := make([]byte, 8+(i*977+g*131)%70000)
				binary.BigEndian.PutUint32(rec, uint32(len(rec)))
				binary.BigEndian.PutUint32(rec[4:], uint32(g<<16|i))
				mu.Lock()
				sent.Write(rec)
				_, err := b.Write(rec)
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	got := make(chan []byte)
	go func() {
		data, _ := io.ReadAll(s)
		got <- data
	}()
	wg.Wait()
	// Close drops unwritten data: wait until the flusher has caught up.
	for {
		b.mu.Lock()
		n := len(b.pending)
		b.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the last write(2) in progress
	b.Close()
	data := <-got
	if len(data) != sent.Len() || sha256.Sum256(data) != sha256.Sum256(sent.Bytes()) {
		t.Fatalf("peer received %d bytes (different content or order), want the %d written", len(data), sent.Len())
	}
}

// TestBatchConnBackPressureAndClose checks that a writer facing a peer
// that does not read ends up blocked (memory stays bounded) and that
// Close releases it with an error, as a killed transport needs.
func TestBatchConnBackPressureAndClose(t *testing.T) {
	c, _ := tcpPair(t)
	b := newBatchConn(c)
	blocked := make(chan error, 1)
	go func() {
		chunk := make([]byte, 32<<10)
		for {
			if _, err := b.Write(chunk); err != nil {
				blocked <- err
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	b.mu.Lock()
	pending := len(b.pending)
	b.mu.Unlock()
	if pending > maxPendingWrite {
		t.Fatalf("%d bytes pending; want at most %d", pending, maxPendingWrite)
	}
	select {
	case err := <-blocked:
		t.Fatalf("writer stopped before Close: %v", err)
	default:
	}
	b.Close()
	select {
	case err := <-blocked:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked writer got %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release a blocked writer")
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// TestBatchConnWriteErrorSurfaces checks that a failed write(2) (peer
// gone) is reported by a later Write instead of being lost.
func TestBatchConnWriteErrorSurfaces(t *testing.T) {
	c, s := tcpPair(t)
	b := newBatchConn(c)
	defer b.Close()
	s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := b.Write(make([]byte, 4096)); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("writes to a closed peer kept succeeding for 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
