package sftp

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// recorder records every write the coalescer makes to the channel.
type recorder struct{ writes [][]byte }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func (r *recorder) Close() error { return nil }

// request returns an SFTP request as pkg/sftp writes it: header (length,
// type, id, fields) and data.
func request(fields, data int) (header, payload []byte) {
	header = make([]byte, 4+fields)
	binary.BigEndian.PutUint32(header, uint32(fields+data))
	for i := 4; i < len(header); i++ {
		header[i] = byte(i)
	}
	payload = make([]byte, data)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	return header, payload
}

// TestCoalescer: a request with data leaves in as few channel writes as
// SSH packets it needs (header joined with the start of its data); whole
// requests pass through; the byte stream is exactly what pkg/sftp wrote.
func TestCoalescer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fields     int
		data       int
		wantWrites int
	}{
		{"4 KiB write", 30, 4096, 1},
		{"data fills the first packet", 30, sshPacketData - 34, 1},
		{"256 KiB write", 30, 256 << 10, 2}, // first packet full, the rest in one channel write (split by x/crypto/ssh)
		{"request without data", 40, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			c := &coalescer{w: r, closer: r}
			h, p := request(tc.fields, tc.data)
			var want bytes.Buffer
			for range 3 {
				if tc.data == 0 {
					whole := append(bytes.Clone(h), p...)
					if n, err := c.Write(whole); n != len(whole) || err != nil {
						t.Fatalf("Write = %d, %v", n, err)
					}
					want.Write(whole)
					continue
				}
				if n, err := c.Write(h); n != len(h) || err != nil {
					t.Fatalf("Write(header) = %d, %v", n, err)
				}
				if n, err := c.Write(p); n != len(p) || err != nil {
					t.Fatalf("Write(data) = %d, %v", n, err)
				}
				want.Write(h)
				want.Write(p)
			}
			if got := len(r.writes); got != 3*tc.wantWrites {
				t.Errorf("%d channel writes for 3 requests, want %d", got, 3*tc.wantWrites)
			}
			if len(r.writes) > 0 && len(r.writes[0]) > sshPacketData {
				t.Errorf("first channel write of %d bytes exceeds one SSH packet (%d)", len(r.writes[0]), sshPacketData)
			}
			if got := bytes.Join(r.writes, nil); !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("byte stream differs from what was written (%d vs %d bytes)", len(got), want.Len())
			}
		})
	}
}

// TestCoalescerKeepsOrderOnSurprises: data split over several writes, and
// a held header followed by something that is not its data, still leave
// in order and nothing stays held once a request is complete.
func TestCoalescerKeepsOrderOnSurprises(t *testing.T) {
	r := &recorder{}
	c := &coalescer{w: r, closer: r}
	h, p := request(30, 10000)
	var want bytes.Buffer
	// Data in three pieces: only the first joins the header; the rest
	// passes through as data, never mistaken for a header.
	for _, b := range [][]byte{h, p[:100], p[100:5000], p[5000:]} {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		want.Write(b)
	}
	if len(c.pending) != 0 || c.missing != 0 {
		t.Fatalf("after a complete request: %d bytes held, %d missing", len(c.pending), c.missing)
	}
	// A header followed by more than its data: both go out as written.
	h2, _ := request(30, 10)
	big := bytes.Repeat([]byte{9}, 100)
	for _, b := range [][]byte{h2, big} {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		want.Write(b)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := bytes.Join(r.writes, nil); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("byte stream differs: %d vs %d bytes", len(got), want.Len())
	}
}
