package embedded

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSOptions configure [StartNATS].
type NATSOptions struct {
	// StoreDir holds JetStream's file storage. Required.
	StoreDir string
	// Listen is host:port for client connections; ":0" or "host:0" picks a
	// free port; "off" accepts in-process connections only.
	Listen string
	// ServerName names the server (and, with Cluster, the cluster node).
	ServerName string
	// Cluster, if set, names the NATS cluster this server joins.
	Cluster string
	// ClusterListen is host:port for routes from other nodes.
	ClusterListen string
	// Routes are the other nodes' route URLs (nats-route://host:port).
	Routes []string
}

// NATS is a running embedded NATS server.
type NATS struct {
	*server.Server
}

// StartNATS starts a NATS server with JetStream and waits until it accepts
// connections.
func StartNATS(opts NATSOptions) (*NATS, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("embedded nats: StoreDir is required")
	}
	so := &server.Options{
		ServerName: opts.ServerName,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
	}
	if opts.Listen == "off" {
		so.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: listen address %q: %w", opts.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: port %q: %w", port, err)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		so.Host, so.Port = host, p
	}
	if opts.Cluster != "" {
		host, port, err := net.SplitHostPort(opts.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: cluster address %q: %w", opts.ClusterListen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: cluster port %q: %w", port, err)
		}
		so.Cluster = server.ClusterOpts{Name: opts.Cluster, Host: host, Port: p}
		for _, r := range opts.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("embedded nats: route %q: %w", r, err)
			}
			so.Routes = append(so.Routes, u)
		}
	}
	s, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 10s (is %s in use?)", opts.Listen)
	}
	return &NATS{Server: s}, nil
}

// Stop shuts the server down and waits for it.
func (n *NATS) Stop() {
	n.Shutdown()
	n.WaitForShutdown()
}
