package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// MinTokenLength is the shortest REGSCRIBE_WEB_TOKEN accepted off loopback.
const MinTokenLength = 16

// CheckExposure refuses a listen address (host:port) that other machines
// can reach unless a token of at least [MinTokenLength] characters guards
// it. A loopback address (127.0.0.0/8, ::1, localhost) needs none; "off"
// serves nothing.
func CheckExposure(listen, token string) error {
	if listen == "off" {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("REGSCRIBE_WEB_LISTEN %q: %w", listen, err)
	}
	if isLoopbackHost(host) {
		return nil
	}
	switch {
	case token == "":
		return fmt.Errorf("REGSCRIBE_WEB_LISTEN %s is reachable from other machines: set REGSCRIBE_WEB_TOKEN (at least %d characters, e.g. from `openssl rand -hex 24`), or listen on 127.0.0.1", listen, MinTokenLength)
	case len(token) < MinTokenLength:
		return fmt.Errorf("REGSCRIBE_WEB_TOKEN is %d characters: off loopback it must have at least %d", len(token), MinTokenLength)
	}
	return nil
}

// isLoopbackHost reports whether host (no port) is a loopback name or address.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type userKey struct{}

// userOf returns the basic-auth user name of the request ("" when unknown).
func userOf(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// authenticate decides whether r may be served, and who sent it. With a
// token, the request must carry it (bearer, or the password of basic auth
// with any user name). Without one, the server listens on loopback only
// (CheckExposure), and the request must name a loopback host too: a web page
// elsewhere cannot rebind its own name to 127.0.0.1 and read the gallery.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (user string, ok bool) {
	if s.opts.Token == "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !isLoopbackHost(host) {
			http.Error(w, "this web address serves loopback names only (set REGSCRIBE_WEB_TOKEN to reach it by another name)", http.StatusForbidden)
			return "", false
		}
		return "", true
	}
	if bearer, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		if s.tokenMatches(strings.TrimSpace(bearer)) {
			return "", true
		}
	} else if name, password, basic := r.BasicAuth(); basic && s.tokenMatches(password) {
		return name, true
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="regscribe", charset="UTF-8"`)
	http.Error(w, "credentials required: REGSCRIBE_WEB_TOKEN as a bearer token, or as the password of basic auth", http.StatusUnauthorized)
	return "", false
}

// tokenMatches compares in constant time (hashes first, so the length of
// the token does not show either).
func (s *Server) tokenMatches(given string) bool {
	a := sha256.Sum256([]byte(given))
	b := sha256.Sum256([]byte(s.opts.Token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// csrfToken is the token every form of the gallery carries for user: an
// HMAC with a secret drawn when the process started.
func (s *Server) csrfToken(user string) string {
	m := hmac.New(sha256.New, s.csrfSecret)
	m.Write([]byte("regscribe-csrf\x00" + user))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkPost refuses a POST from another site: the browser's Sec-Fetch-Site
// and Origin, when sent, must say same origin, and the form's CSRF token
// must be this process's for this user.
func (s *Server) checkPost(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return fmt.Errorf("a %s request", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return fmt.Errorf("origin %q is not this site", origin)
		}
	}
	given := r.PostFormValue("csrf")
	want := s.csrfToken(userOf(r.Context()))
	if subtle.ConstantTimeCompare([]byte(given), []byte(want)) != 1 {
		return fmt.Errorf("the form's token is missing or stale (reload the page)")
	}
	return nil
}
