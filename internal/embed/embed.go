// Package embed turns description texts into vectors for semantic search:
// [Ollama] (Ollama's /api/embed through github.com/ollama/ollama/api) and
// [OpenAI] (/v1/embeddings of OpenAI, Azure OpenAI and compatible servers
// through github.com/sashabaranov/go-openai). Both implement
// index.Embedder; [FromConfig] builds the configured one, on the same
// server (REGSCRIBE_PROVIDER, OLLAMA_HOST, OPENAI_*) as the vision model.
//
// Failures are classified with package fault as the vision providers do:
// a server that is not there is unavailable, as is an Ollama model not
// pulled; timeouts, 429 and 5xx are retryable; other 4xx permanent.
// Errors name the server without its password.
//
// It must not touch the index, queues or the environment.
package embed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	openai "github.com/sashabaranov/go-openai"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/index"
)

// DefaultTimeout bounds one embedding call unless an Options says.
const DefaultTimeout = time.Minute

var (
	_ index.Embedder = (*Ollama)(nil)
	_ index.Embedder = (*OpenAI)(nil)
)

// FromConfig builds the embedder of cfg: REGSCRIBE_EMBED_MODEL on
// REGSCRIBE_PROVIDER's server. With no embedding model it returns nil:
// text search only.
func FromConfig(cfg config.Config) (index.Embedder, error) {
	if strings.TrimSpace(cfg.EmbedModel) == "" {
		return nil, nil
	}
	if cfg.Provider == "openai" {
		return NewOpenAI(OpenAIOptions{
			BaseURL: cfg.OpenAIBaseURL, APIKey: cfg.OpenAIAPIKey, Model: cfg.EmbedModel,
			Azure: cfg.OpenAIAzure, APIVersion: cfg.OpenAIVersion,
		})
	}
	u, err := config.OllamaURL(cfg.OllamaHost)
	if err != nil {
		return nil, err
	}
	return NewOllama(OllamaOptions{BaseURL: u, Model: cfg.EmbedModel}), nil
}

// OllamaOptions configure [NewOllama].
type OllamaOptions struct {
	// BaseURL of the Ollama server, e.g. http://localhost:11434.
	BaseURL *url.URL
	// Model is the embedding model, e.g. "nomic-embed-text".
	Model string
	// Timeout of one call. If zero, DefaultTimeout.
	Timeout time.Duration
	// HTTPClient carries the requests. If nil, http.DefaultClient.
	HTTPClient *http.Client
}

// Ollama embeds texts with a model served by Ollama (/api/embed).
type Ollama struct {
	client *api.Client
	opts   OllamaOptions
	host   string // BaseURL without its password
}

// NewOllama returns an Ollama embedder.
func NewOllama(opts OllamaOptions) *Ollama {
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Ollama{client: api.NewClient(opts.BaseURL, hc), opts: opts, host: opts.BaseURL.Redacted()}
}

// Model is "ollama/<model>".
func (o *Ollama) Model() string { return "ollama/" + o.opts.Model }

// Embed returns one vector per text, in order.
func (o *Ollama) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	ctx, cancel := context.WithTimeout(ctx, o.opts.Timeout)
	defer cancel()
	resp, err := o.client.Embed(ctx, &api.EmbedRequest{Model: o.opts.Model, Input: texts})
	if err != nil {
		return nil, o.classify(ctx, err)
	}
	if len(resp.Embeddings) != len(texts) {
		return nil, fault.Retry(fmt.Errorf("ollama %s: %d vectors for %d texts", o.opts.Model, len(resp.Embeddings), len(texts)))
	}
	return resp.Embeddings, nil
}

func (o *Ollama) classify(ctx context.Context, err error) error {
	var se api.StatusError
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fault.Retry(fmt.Errorf("ollama %s: no embedding within %s", o.opts.Model, o.opts.Timeout))
	case errors.As(err, &se):
		msg := fmt.Errorf("ollama %s: %s", o.opts.Model, strings.TrimSpace(se.Error()))
		if se.StatusCode == http.StatusNotFound && strings.Contains(se.ErrorMessage, "not found") {
			return fault.Unavailable(fmt.Errorf("%w; pull it with `ollama pull %s` (REGSCRIBE_EMBED_MODEL)", msg, o.opts.Model))
		}
		return fault.FromStatus(se.StatusCode, 0, msg)
	case fault.Unreachable(err):
		return fault.Unavailable(fmt.Errorf("ollama at %s is not reachable: %w", o.host, err))
	}
	return fault.Retry(fmt.Errorf("ollama %s: %w", o.opts.Model, err))
}

// OpenAIOptions configure [NewOpenAI].
type OpenAIOptions struct {
	// BaseURL of the API including /v1 (empty: https://api.openai.com/v1;
	// Azure: the resource endpoint).
	BaseURL string
	// APIKey is sent as a bearer token (Azure: the api-key header).
	APIKey string
	// Model is the embedding model, e.g. "text-embedding-3-small" (Azure:
	// the deployment).
	Model string
	// Azure selects the Azure OpenAI API.
	Azure bool
	// APIVersion of the Azure API. If empty, 2024-10-21.
	APIVersion string
	// Timeout of one call. If zero, DefaultTimeout.
	Timeout time.Duration
	// HTTPClient carries the requests. If nil, a plain client.
	HTTPClient *http.Client
}

// OpenAI embeds texts with an OpenAI-compatible /v1/embeddings.
type OpenAI struct {
	client *openai.Client
	opts   OpenAIOptions
	where  string // BaseURL without its password
}

// NewOpenAI returns an OpenAI embedder. It fails when the settings cannot
// work: no model, no key for the official API or Azure.
func NewOpenAI(opts OpenAIOptions) (*OpenAI, error) {
	opts.BaseURL = strings.TrimRight(strings.TrimSpace(opts.BaseURL), "/")
	if opts.Model == "" {
		return nil, errors.New("no embedding model set: set REGSCRIBE_EMBED_MODEL, e.g. text-embedding-3-small")
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	var cfg openai.ClientConfig
	switch {
	case opts.Azure:
		if opts.BaseURL == "" || opts.APIKey == "" {
			return nil, errors.New("Azure OpenAI needs OPENAI_BASE_URL and OPENAI_API_KEY")
		}
		cfg = openai.DefaultAzureConfig(opts.APIKey, opts.BaseURL)
		cfg.APIVersion = "2024-10-21"
		if opts.APIVersion != "" {
			cfg.APIVersion = opts.APIVersion
		}
	default:
		if opts.BaseURL == "" {
			opts.BaseURL = "https://api.openai.com/v1"
		}
		if u, err := url.Parse(opts.BaseURL); err == nil && opts.APIKey == "" && strings.EqualFold(u.Hostname(), "api.openai.com") {
			return nil, errors.New("OPENAI_API_KEY is not set: the OpenAI API needs a key for embeddings")
		}
		cfg = openai.DefaultConfig(opts.APIKey)
		cfg.BaseURL = opts.BaseURL
	}
	if opts.HTTPClient != nil {
		cfg.HTTPClient = opts.HTTPClient
	}
	where := "OPENAI_BASE_URL (not a URL)"
	if u, err := url.Parse(opts.BaseURL); err == nil {
		where = u.Redacted()
	}
	return &OpenAI{client: openai.NewClientWithConfig(cfg), opts: opts, where: where}, nil
}

// Model is "openai/<model>".
func (o *OpenAI) Model() string { return "openai/" + o.opts.Model }

// Embed returns one vector per text, in order.
func (o *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	ctx, cancel := context.WithTimeout(ctx, o.opts.Timeout)
	defer cancel()
	resp, err := o.client.CreateEmbeddings(ctx, openai.EmbeddingRequest{Input: texts, Model: openai.EmbeddingModel(o.opts.Model)})
	if err != nil {
		return nil, o.classify(ctx, err)
	}
	out := make([][]float32, len(texts))
	for _, d := range resp.Data {
		if d.Index < 0 || d.Index >= len(out) || out[d.Index] != nil {
			return nil, fault.Retry(fmt.Errorf("openai %s: an embedding with index %d for %d texts", o.opts.Model, d.Index, len(texts)))
		}
		out[d.Index] = d.Embedding
	}
	for i, v := range out {
		if len(v) == 0 {
			return nil, fault.Retry(fmt.Errorf("openai %s: no embedding for text %d", o.opts.Model, i))
		}
	}
	return out, nil
}

func (o *OpenAI) classify(ctx context.Context, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return fault.Retry(fmt.Errorf("openai %s: no embedding within %s", o.opts.Model, o.opts.Timeout))
	}
	var ae *openai.APIError
	if errors.As(err, &ae) {
		msg := fmt.Errorf("openai %s: %d %s: %s", o.opts.Model, ae.HTTPStatusCode, http.StatusText(ae.HTTPStatusCode), ae.Message)
		return fault.FromStatus(ae.HTTPStatusCode, 0, msg)
	}
	var re *openai.RequestError
	if errors.As(err, &re) {
		return fault.FromStatus(re.HTTPStatusCode, 0, fmt.Errorf("openai %s: %d %s", o.opts.Model, re.HTTPStatusCode, http.StatusText(re.HTTPStatusCode)))
	}
	if fault.Unreachable(err) {
		return fault.Unavailable(fmt.Errorf("no OpenAI-compatible server at %s: %w", o.where, err))
	}
	return fault.Retry(fmt.Errorf("openai %s: %w", o.opts.Model, err))
}
