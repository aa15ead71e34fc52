package vision_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/vision"
)

func newOllama(t *testing.T, f *modeltest.Ollama, model string) *vision.Ollama {
	t.Helper()
	u, err := url.Parse(f.URL)
	require.NoError(t, err)
	return vision.NewOllama(vision.OllamaOptions{BaseURL: u, Model: model, Timeout: 10 * time.Second})
}

func TestOllamaPull(t *testing.T) {
	t.Parallel()
	f := modeltest.NewOllama()
	t.Cleanup(f.Close)
	o := newOllama(t, f, "qwen2.5vl:3b")
	err := o.Check(context.Background())
	require.ErrorContains(t, err, "REGSCRIBE_PULL=true")

	var progress bytes.Buffer
	require.NoError(t, o.Pull(context.Background(), &progress))
	out := progress.String()
	require.Contains(t, out, "pulling manifest")
	weights, projector := modeltest.Digest([]byte("qwen2.5vl:3b/weights")), modeltest.Digest([]byte("qwen2.5vl:3b/projector"))
	require.Contains(t, out, "pulling "+weights[7:19], "one bar per layer, named as Ollama names it")
	require.Contains(t, out, "3.1/3.1 MB", "the bar counts bytes")
	require.Contains(t, out, "pulling "+projector[7:19])
	require.Contains(t, out, "1.0/1.0 MB")
	require.Contains(t, out, "success")
	require.NoError(t, o.Check(context.Background()), "the model is there after the pull")
}

func TestOllamaPullFailures(t *testing.T) {
	t.Parallel()
	f := modeltest.NewUnstartedOllama()
	f.Library = []string{"qwen2.5vl:3b"}
	f.Start()
	t.Cleanup(f.Close)

	err := newOllama(t, f, "qwen9vl:1b").Pull(context.Background(), nil)
	require.True(t, fault.Is(err, fault.KindPermanent), "got %v", err)
	require.ErrorContains(t, err, "file does not exist")
	require.ErrorContains(t, err, "REGSCRIBE_MODEL")
	requireOneLine(t, err)

	u, err := url.Parse("http://" + deadAddr(t))
	require.NoError(t, err)
	err = vision.NewOllama(vision.OllamaOptions{BaseURL: u, Model: "qwen2.5vl:3b"}).Pull(context.Background(), nil)
	require.True(t, fault.Is(err, fault.KindUnavailable), "got %v", err)
	require.ErrorContains(t, err, "OLLAMA_HOST")
	requireOneLine(t, err)
}

func TestOllamaKeepsTheCallersHTTPClient(t *testing.T) {
	t.Parallel()
	f := modeltest.NewUnstartedOllama("qwen2.5vl:3b")
	f.Answer = func(modeltest.Call) modeltest.Reply {
		return modeltest.Reply{Status: http.StatusServiceUnavailable, Content: "server busy, please try again. maximum pending requests exceeded", Header: http.Header{"Retry-After": {"7"}}}
	}
	f.Start()
	t.Cleanup(f.Close)
	u, err := url.Parse(f.URL)
	require.NoError(t, err)
	counting := &countingTransport{next: http.DefaultTransport}
	hc := &http.Client{Transport: counting}
	o := vision.NewOllama(vision.OllamaOptions{BaseURL: u, Model: "qwen2.5vl:3b", HTTPClient: hc})
	_, err = o.Describe(context.Background(), vision.Image{Data: testJPEG(t), MediaType: "image/jpeg"})
	kind, after := fault.Classify(err)
	require.Equal(t, fault.KindRetry, kind)
	require.Equal(t, 7*time.Second, after, "Retry-After is read through the caller's transport")
	require.Equal(t, 1, counting.n, "the caller's transport carried the request")
	require.Equal(t, counting, hc.Transport, "the caller's client is not modified")
}

type countingTransport struct {
	next http.RoundTripper
	n    int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n++
	return c.next.RoundTrip(r)
}
