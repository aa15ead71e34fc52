package registry_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"

	"github.com/regscribe/regscribe/internal/fault"
)

// TestFetchHead: the first bytes of a blob, asked for with a Range header,
// from a registry that honours it and from one that ignores it (and sends
// the whole blob); a blob shorter than asked for whole; a missing blob is
// a skip.
func TestFetchHead(t *testing.T) {
	t.Parallel()
	blob := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for _, reg := range registries {
		for _, ignoresRange := range []bool{false, true} {
			name := reg.name
			if ignoresRange {
				name += " ignoring Range"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				var mu sync.Mutex
				var ranges []string
				host := proxy(t, reg.start(t), func(w http.ResponseWriter, r *http.Request, next http.Handler) {
					if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
						mu.Lock()
						ranges = append(ranges, r.Header.Get("Range"))
						mu.Unlock()
						if ignoresRange {
							r.Header.Del("Range")
						}
					}
					next.ServeHTTP(w, r)
				})
				c, repo := client(t, host)
				ctx := context.Background()
				big, err := oras.PushBytes(ctx, repo, "application/vnd.oci.image.layer.v1.tar", blob)
				require.NoError(t, err)
				small, err := oras.PushBytes(ctx, repo, "application/octet-stream", []byte("Dune"))
				require.NoError(t, err)

				head, err := c.FetchHead(ctx, repo, big, 512)
				require.NoError(t, err)
				require.Equal(t, blob[:512], head)
				head, err = c.FetchHead(ctx, repo, small, 512)
				require.NoError(t, err)
				require.Equal(t, []byte("Dune"), head)
				mu.Lock()
				require.Equal(t, []string{"bytes=0-511", "bytes=0-3"}, ranges, "each read asks for the first bytes only")
				mu.Unlock()

				missing := big
				missing.Digest = digest.FromString("never pushed")
				_, err = c.FetchHead(ctx, repo, missing, 512)
				require.True(t, fault.Is(err, fault.KindSkip), "%v", err)
			})
		}
	}
}
