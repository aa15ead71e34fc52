package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/regscribe/regscribe/internal/fault"
)

// FetchHead returns the first n bytes of a blob (all of it when it is
// shorter), to tell what it holds without downloading it: it asks for
// them with a Range header (OCI distribution spec, "Pulling blobs") and
// reads no more than n bytes of the answer, so a registry that ignores
// Range and sends the whole blob costs the same. The bytes are not
// verified against the digest (only a whole blob can be); callers use
// them as a hint of the content and fetch the blob with [Client.FetchBlob]
// before trusting it.
func (c *Client) FetchHead(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, n int64) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, Classify(fmt.Errorf("fetch the head of blob %s@%s: %w", repo.Reference, desc.Digest, errdef.ErrInvalidDigest))
	}
	n = min(n, max(desc.Size, 0))
	if n == 0 {
		return []byte{}, nil
	}
	ref := repo.Reference
	ref.Reference = desc.Digest.String()
	ctx = auth.AppendRepositoryScope(ctx, ref, auth.ActionPull)
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	url := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", scheme, ref.Host(), ref.Repository, desc.Digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("fetch the head of blob %s@%s: %w", repo.Reference, desc.Digest, err))
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=0-%d", n-1))
	client := repo.Client
	if client == nil {
		client = c.client
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, Classify(fmt.Errorf("fetch the head of blob %s@%s: %w", repo.Reference, desc.Digest, err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
	case http.StatusNotFound:
		return nil, Classify(fmt.Errorf("fetch the head of blob %s@%s: %w", repo.Reference, desc.Digest, errdef.ErrNotFound))
	default:
		return nil, Classify(fmt.Errorf("fetch the head of blob %s@%s: %w", repo.Reference, desc.Digest,
			&errcode.ErrorResponse{Method: req.Method, URL: req.URL, StatusCode: resp.StatusCode}))
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, n))
	if err != nil {
		return nil, Classify(fmt.Errorf("read the head of blob %s@%s: %w", repo.Reference, desc.Digest, err))
	}
	return head, nil
}
