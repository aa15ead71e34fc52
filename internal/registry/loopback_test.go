package registry_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/registry"
)

// basicAuth puts go-containerregistry's registry behind HTTP basic auth, as
// a Distribution registry with htpasswd auth answers: 401 with a Basic
// challenge without the right credentials.
func basicAuth(user, pass string) http.Handler {
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("Www-Authenticate", `Basic realm="regscribe-test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	})
}

// localhostCert returns a self-signed certificate valid for the name
// "localhost" only (no IP addresses) and a pool that trusts it.
func localhostCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// A loopback registry is reached by the name it is configured with (a
// certificate for localhost holds), and credentials stored by `oras login`
// under any loopback spelling are found; without credentials the job fails
// at once, with the hint, rather than after every attempt.
func TestLoopbackRegistryKeepsItsNameAndCredentials(t *testing.T) {
	t.Parallel()
	const user, pass = "photographer", "s3cret"

	plain := httptest.NewServer(basicAuth(user, pass))
	t.Cleanup(plain.Close)
	plainPort := plain.URL[strings.LastIndex(plain.URL, ":")+1:]

	cert, pool := localhostCert(t)
	secure := httptest.NewUnstartedServer(basicAuth(user, pass))
	secure.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	secure.StartTLS()
	t.Cleanup(secure.Close)
	securePort := secure.URL[strings.LastIndex(secure.URL, ":")+1:]
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	cases := []struct {
		name       string
		endpoint   registry.Endpoint
		jobHost    string
		loginAs    string // where `oras login` stored the credentials; "" for none
		httpClient *http.Client
		kind       fault.Kind // of resolving a tag that does not exist: skip means the registry answered
	}{
		{"configured localhost over TLS, job names 127.0.0.1", registry.Endpoint{Host: "localhost:" + securePort},
			"127.0.0.1:" + securePort, "localhost:" + securePort, tlsClient, fault.KindSkip},
		{"configured localhost over TLS, job names localhost", registry.Endpoint{Host: "localhost:" + securePort},
			"localhost:" + securePort, "localhost:" + securePort, tlsClient, fault.KindSkip},
		{"configured 127.0.0.1, login as localhost", registry.Endpoint{Host: "127.0.0.1:" + plainPort, PlainHTTP: true},
			"localhost:" + plainPort, "localhost:" + plainPort, nil, fault.KindSkip},
		{"configured localhost, login as 127.0.0.1", registry.Endpoint{Host: "localhost:" + plainPort, PlainHTTP: true},
			"[::1]:" + plainPort, "127.0.0.1:" + plainPort, nil, fault.KindSkip},
		{"no credentials", registry.Endpoint{Host: "127.0.0.1:" + plainPort, PlainHTTP: true},
			"localhost:" + plainPort, "", nil, fault.KindPermanent},
		{"credentials for another port", registry.Endpoint{Host: "127.0.0.1:" + plainPort, PlainHTTP: true},
			"127.0.0.1:" + plainPort, "localhost:1", nil, fault.KindPermanent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			store := credentials.NewMemoryStore()
			if tc.loginAs != "" {
				require.NoError(t, store.Put(ctx, tc.loginAs, auth.Credential{Username: user, Password: pass}))
			}
			c, err := registry.New([]registry.Endpoint{tc.endpoint}, registry.Options{Credentials: store, HTTPClient: tc.httpClient})
			require.NoError(t, err)
			repo, err := c.Repository(tc.jobHost, "photos/x")
			require.NoError(t, err)
			require.Equal(t, tc.endpoint.Host, repo.Reference.Registry, "the configured name is the one connected to")
			_, err = c.Resolve(ctx, repo, "missing")
			require.True(t, fault.Is(err, tc.kind), "want %v, got %v", tc.kind, err)
			if tc.kind == fault.KindPermanent {
				require.Contains(t, err.Error(), "oras login")
			}
		})
	}
}
