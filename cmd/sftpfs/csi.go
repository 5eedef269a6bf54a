package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sftpfs/sftpfs/csi"
)

// runCSI is `sftpfs csi`: the CSI plugin (Identity, Controller and Node
// services) for Docker Swarm cluster volumes and Kubernetes. Package csi
// holds the logic; this only wires flags, the socket and signals.
func runCSI(args []string, _, stderr io.Writer) int {
	tuneGC(os.Getenv)
	fl := flag.NewFlagSet("csi", flag.ContinueOnError)
	fl.SetOutput(stderr)
	endpoint := fl.String("endpoint", os.Getenv("CSI_ENDPOINT"),
		"CSI socket: unix:///path/csi.sock or /path/csi.sock (env CSI_ENDPOINT)")
	nodeID := fl.String("node-id", envOr("CSI_NODE_ID", ""), "this node's ID (env CSI_NODE_ID; default the host name)")
	name := fl.String("driver-name", envOr("CSI_DRIVER_NAME", csi.DefaultDriverName), "CSI driver name (env CSI_DRIVER_NAME)")
	stateDir := fl.String("state-dir", os.Getenv("CSI_STATE_DIR"),
		"directory for the controller's volume list, which holds no secret (env CSI_STATE_DIR; empty: memory only)")
	logLevel := fl.String("log-level", envOr("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	fl.Usage = func() {
		fmt.Fprintf(stderr, "usage: sftpfs csi [flags]\n\nServes the CSI Identity, Controller and Node services (docs/csi.md).\n\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "sftpfs csi: unexpected argument %q\n", fl.Arg(0))
		return 2
	}
	if *endpoint == "" {
		fmt.Fprintln(stderr, "sftpfs csi: no endpoint: set CSI_ENDPOINT or -endpoint (e.g. unix:///run/csi/csi.sock)")
		return 2
	}
	sock, err := csi.ParseEndpoint(*endpoint)
	if err != nil {
		fmt.Fprintf(stderr, "sftpfs csi: %v\n", err)
		return 2
	}
	levelVar, err := parseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "sftpfs csi: %v\n", err)
		return 2
	}
	log := levelLogger(stderr, levelVar)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)

	d, err := csi.New(csi.Config{Name: *name, Version: version, NodeID: *nodeID, StateDir: *stateDir, Logger: log})
	if err != nil {
		log.Error("cannot start the CSI driver", "error", err)
		return 1
	}
	l, err := csi.Listen(sock)
	if err != nil {
		log.Error("cannot listen on the CSI socket", "socket", sock, "error", err)
		return 1
	}
	srv := d.NewServer()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	log.Info("serving CSI", "socket", sock, "driver", *name, "node_id", *nodeID)

	code := 0
	select {
	case s := <-sig:
		log.Info("stopping", "signal", s.String())
	case err := <-served:
		log.Error("the CSI socket stopped serving", "error", err)
		code = 1
	}
	srv.Stop()
	d.Shutdown()
	os.Remove(sock)
	return code
}
