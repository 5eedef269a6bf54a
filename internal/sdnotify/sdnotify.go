package sdnotify

import (
	"fmt"
	"net"
	"strings"
)

// Ready sends READY=1 to socket, the value of $NOTIFY_SOCKET. An empty
// socket (not started by systemd with Type=notify) is not an error. A
// name starting with "@" is in the abstract namespace.
func Ready(socket string) error { return Send(socket, "READY=1") }

// Send sends one sd_notify state string (like "READY=1" or
// "STATUS=...") to socket.
func Send(socket, state string) error {
	if socket == "" {
		return nil
	}
	name := socket
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %s: %v", socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %v", socket, err)
	}
	return nil
}
