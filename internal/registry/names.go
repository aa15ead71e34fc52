package registry

import (
	"fmt"
	"net"
	"strings"
)

// Names says which registry a host name means: the one place regscribe
// decides that two spellings are one registry. A registry's canonical name
// is its host as configured (REGSCRIBE_REGISTRIES, lower-cased); the
// loopback spellings of a configured loopback registry (localhost,
// 127.0.0.1, [::1] on its port) and the aliases configured for a registry
// (REGSCRIBE_REGISTRY_ALIASES: one registry behind two host names) are that
// registry too. Jobs, description events, index entries, leases and the
// gallery's addresses carry the canonical name, so one registry is one
// entry everywhere, whichever name a photo was pushed to or a command named.
type Names struct {
	// byKey maps the [Key] of every name of a configured registry to the
	// registry's endpoint.
	byKey map[string]Endpoint
}

// NewNames returns the names of endpoints. Where two endpoints are one
// registry (localhost:5000 and 127.0.0.1:5000), the first is kept. An alias
// that is the name of another configured registry, or of two, is an error.
func NewNames(endpoints []Endpoint) (*Names, error) {
	n := &Names{byKey: make(map[string]Endpoint, len(endpoints))}
	for _, e := range endpoints {
		e.Host = strings.ToLower(e.Host)
		if _, dup := n.byKey[Key(e.Host)]; !dup {
			n.byKey[Key(e.Host)] = e
		}
	}
	for _, e := range endpoints {
		owner := n.byKey[Key(e.Host)]
		for _, a := range e.Aliases {
			k := Key(a)
			if other, taken := n.byKey[k]; taken && other.Host != owner.Host {
				return nil, fmt.Errorf("registry alias %s of %s is already the name of %s", a, owner.Host, other.Host)
			}
			n.byKey[k] = owner
		}
	}
	return n, nil
}

// Canonical is the name regscribe knows the registry host by: the
// configured name of a configured registry (by any of its spellings or
// aliases), else host lower-cased.
func (n *Names) Canonical(host string) string {
	if e, ok := n.Endpoint(host); ok {
		return e.Host
	}
	return strings.ToLower(host)
}

// Endpoint is the configured registry host names, by any of its names.
func (n *Names) Endpoint(host string) (Endpoint, bool) {
	if n == nil {
		return Endpoint{}, false
	}
	e, ok := n.byKey[Key(host)]
	return e, ok
}

// Key is a spelling-independent key of a registry host[:port] without
// configuration: lower-cased, every loopback name (localhost, 127.0.0.1,
// ::1) spelt 127.0.0.1, since `oras push localhost:5000/…` and a registry
// configured as 127.0.0.1:5000 are one registry on this machine. No other
// host is ever rewritten, and no request goes to a key: it only compares
// names ([Names], leases).
func Key(hostport string) string {
	hostport = strings.ToLower(hostport)
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
	}
	if !isLoopback(host) {
		return hostport
	}
	if port == "" {
		return "127.0.0.1"
	}
	return net.JoinHostPort("127.0.0.1", port)
}
