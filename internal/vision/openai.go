package vision

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/regscribe/regscribe/internal/fault"
)

// OpenAI defaults.
const (
	// OpenAIBaseURL is the official API, used when OpenAIOptions.BaseURL is empty.
	OpenAIBaseURL = "https://api.openai.com/v1"
	// DefaultAzureAPIVersion is the Azure OpenAI API version used when none
	// is set: the first generally available one with structured outputs.
	DefaultAzureAPIVersion = "2024-10-21"
	// SchemaName is the name of the answer's schema in response_format.
	SchemaName = "regscribe_description"
	// MaxOpenAIImageBytes is the largest image the API takes (20 MB).
	MaxOpenAIImageBytes = 20 << 20
)

// OpenAIOptions configure [NewOpenAI].
type OpenAIOptions struct {
	// BaseURL of the API including /v1: https://api.openai.com/v1 if empty;
	// for an OpenAI-compatible server e.g. http://localhost:8000/v1 (vLLM),
	// http://localhost:8080/v1 (llama.cpp), http://localhost:1234/v1 (LM
	// Studio). With Azure, the resource endpoint, e.g.
	// https://NAME.openai.azure.com.
	BaseURL string
	// APIKey is sent as a bearer token (Azure: as the api-key header).
	// Required by the official API and Azure; local servers need none.
	APIKey string
	// Model to use, e.g. "gpt-4o-mini".
	Model string
	// Azure selects the Azure OpenAI API: deployments under BaseURL, an
	// api-version query parameter and the api-key header.
	Azure bool
	// APIVersion of the Azure API. If empty, [DefaultAzureAPIVersion].
	APIVersion string
	// Deployment is the Azure deployment that serves Model. If empty, the
	// model name as go-openai maps it (":" removed; "." too for 3.5 models).
	Deployment string
	// Detail of the image as the model sees it: "low" (a flat 85 tokens,
	// 512×512), "high" (tiles of 512 px) or "auto". If empty, "auto".
	Detail string
	// Accept lists the image media types the server takes. If nil, JPEG,
	// PNG, WebP and GIF (OpenAI's list; Ollama's /v1 takes no GIF).
	Accept []string
	// Prompt sent with each photo.
	Prompt Prompt
	// Timeout of one call. If zero, 2 minutes.
	Timeout time.Duration
	// MaxTokens caps the answer (max_tokens; max_completion_tokens for
	// reasoning models, where it includes their reasoning). Zero leaves the
	// server's default.
	MaxTokens int
	// Temperature of sampling. Zero is not sent (go-openai omits it), so
	// the server's default applies; reasoning models get none.
	Temperature float64
	// HTTPClient carries the requests. If nil, a client without an overall
	// timeout. Its transport is wrapped to read rate-limit headers; the
	// client itself is not modified.
	HTTPClient *http.Client
}

// OpenAI describes photos with a chat-completions model: OpenAI's own API,
// Azure OpenAI, or an OpenAI-compatible server (vLLM, llama.cpp, LM Studio,
// OpenRouter, Ollama's /v1).
//
// The photo goes as a data: URL in the user message next to the prompt.
// The answer is asked for with response_format json_schema ([Schema],
// strict). Many compatible servers reject that: after the first 400 that
// names response_format or json_schema, the call is repeated once without
// it, and this provider sends plain requests from then on (the prompt asks
// for JSON anyway, and prose still yields a description).
//
// Failures are classified with package fault:
//
//   - a server that is not there before the request is sent (the name does
//     not resolve, the connection is refused or cannot be made in time):
//     unavailable;
//   - a connection reset, closed or broken after the request was sent: retry
//     (the server was there and failed on this request);
//   - no answer within Timeout, 408, 429 and 5xx: retry, no sooner than the
//     server's Retry-After or x-ratelimit-reset-* asks;
//   - other 4xx, among them an unknown model (404), a refused key (401),
//     refused content, an exhausted quota (429 insufficient_quota): permanent,
//     with the server's message. Unlike Ollama, where a missing model is a
//     deployment problem that a pull fixes, a model name the API does not
//     know is a configuration error that waiting cannot fix;
//   - a refusal or content-filtered answer: permanent; an answer without
//     usable text: retry.
type OpenAI struct {
	client *openai.Client
	opts   OpenAIOptions
	// plain is set once the server rejected response_format json_schema.
	plain atomic.Bool
	// where is BaseURL as errors name it: without its password.
	where string
}

// NewOpenAI returns an OpenAI provider. It fails when the settings cannot
// work: no model, an unknown detail, no API key for the official API or
// Azure, no endpoint for Azure.
func NewOpenAI(opts OpenAIOptions) (*OpenAI, error) {
	opts.BaseURL = strings.TrimRight(strings.TrimSpace(opts.BaseURL), "/")
	if opts.Model == "" {
		return nil, errors.New("no model set: set REGSCRIBE_MODEL, e.g. gpt-4o-mini")
	}
	switch opts.Detail {
	case "":
		opts.Detail = string(openai.ImageURLDetailAuto)
	case string(openai.ImageURLDetailLow), string(openai.ImageURLDetailHigh), string(openai.ImageURLDetailAuto):
	default:
		return nil, fmt.Errorf("image detail %q: use low, high or auto (REGSCRIBE_OPENAI_DETAIL)", opts.Detail)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.Accept == nil {
		opts.Accept = []string{"image/jpeg", "image/png", "image/webp", "image/gif"}
	}
	var cfg openai.ClientConfig
	switch {
	case opts.Azure:
		if opts.BaseURL == "" {
			return nil, errors.New("the Azure OpenAI endpoint is not set: set OPENAI_BASE_URL to https://NAME.openai.azure.com")
		}
		if opts.APIKey == "" {
			return nil, errors.New("OPENAI_API_KEY is not set: Azure OpenAI needs the resource's key")
		}
		cfg = openai.DefaultAzureConfig(opts.APIKey, opts.BaseURL)
		cfg.APIVersion = DefaultAzureAPIVersion
		if opts.APIVersion != "" {
			cfg.APIVersion = opts.APIVersion
		}
		if opts.Deployment != "" {
			deployment := opts.Deployment
			cfg.AzureModelMapperFunc = func(string) string { return deployment }
		}
	default:
		if opts.BaseURL == "" {
			opts.BaseURL = OpenAIBaseURL
		}
		if opts.APIKey == "" && officialAPI(opts.BaseURL) {
			return nil, errors.New("OPENAI_API_KEY is not set: set it to a key from https://platform.openai.com/api-keys, or set OPENAI_BASE_URL to an OpenAI-compatible server")
		}
		cfg = openai.DefaultConfig(opts.APIKey)
		cfg.BaseURL = opts.BaseURL
	}
	cfg.HTTPClient = recordingClient(opts.HTTPClient)
	return &OpenAI{client: openai.NewClientWithConfig(cfg), opts: opts, where: shownURL(opts.BaseURL)}, nil
}

// shownURL is base as it may be logged and shown: a password in it (a
// proxy's basic credentials) is replaced by xxxxx.
func shownURL(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return "OPENAI_BASE_URL (not a URL)"
	}
	return u.Redacted()
}

// officialAPI tells whether base is OpenAI's own API, which needs a key.
func officialAPI(base string) bool {
	u, err := url.Parse(base)
	return err == nil && strings.EqualFold(u.Hostname(), "api.openai.com")
}

// Model is "openai/<model>", as written into io.regscribe.model.
func (o *OpenAI) Model() string { return "openai/" + o.opts.Model }

// PromptDigest identifies the prompt and schema in use.
func (o *OpenAI) PromptDigest() string { return o.opts.Prompt.Digest() }

// Accepts lists the image media types the server takes as they are.
func (o *OpenAI) Accepts() []string { return slices.Clone(o.opts.Accept) }

// Structured tells whether requests still carry response_format
// json_schema (false once the server rejected it).
func (o *OpenAI) Structured() bool { return !o.plain.Load() }

// Describe asks the model about one image.
func (o *OpenAI) Describe(ctx context.Context, img Image) (Description, error) {
	mediaType := img.MediaType
	if mediaType == "" {
		mediaType = http.DetectContentType(img.Data)
	}
	if !slices.Contains(o.opts.Accept, mediaType) {
		return Description{}, fault.Permanent(fmt.Errorf("openai %s: %s is not an image type the server takes (%s)", o.opts.Model, mediaType, strings.Join(o.opts.Accept, ", ")))
	}
	if len(img.Data) > MaxOpenAIImageBytes {
		return Description{}, fault.Permanent(fmt.Errorf("openai %s: the image is %d bytes; the API takes at most %d", o.opts.Model, len(img.Data), MaxOpenAIImageBytes))
	}
	ctx, cancel := context.WithTimeout(ctx, o.opts.Timeout)
	defer cancel()
	ctx, meta := withResponseMeta(ctx)
	parts := []openai.ChatMessagePart{
		{Type: openai.ChatMessagePartTypeText, Text: o.opts.Prompt.String()},
		{Type: openai.ChatMessagePartTypeImageURL, ImageURL: &openai.ChatMessageImageURL{
			URL:    "data:" + mediaType + ";base64," + base64.StdEncoding.EncodeToString(img.Data),
			Detail: openai.ImageURLDetail(o.opts.Detail),
		}},
	}
	start := time.Now()
	structured := o.Structured()
	resp, err := o.client.CreateChatCompletion(ctx, o.request(parts, o.opts.MaxTokens, structured))
	if err != nil && structured && rejectsSchema(err) {
		o.plain.Store(true)
		resp, err = o.client.CreateChatCompletion(ctx, o.request(parts, o.opts.MaxTokens, false))
	}
	if err != nil {
		return Description{}, o.classify(ctx, err, meta.Header())
	}
	usage := Usage{PromptTokens: resp.Usage.PromptTokens, OutputTokens: resp.Usage.CompletionTokens, Latency: time.Since(start)}
	if len(resp.Choices) == 0 {
		return Description{}, fault.Retry(fmt.Errorf("openai %s: the answer has no choices", o.opts.Model))
	}
	choice := resp.Choices[0]
	content := messageText(choice.Message)
	switch {
	case choice.Message.Refusal != "":
		return Description{}, fault.Permanent(fmt.Errorf("openai %s: the model refused: %s", o.opts.Model, choice.Message.Refusal))
	case choice.FinishReason == openai.FinishReasonContentFilter:
		return Description{}, fault.Permanent(fmt.Errorf("openai %s: the answer was withheld by the content filter", o.opts.Model))
	case strings.TrimSpace(content) == "" && choice.FinishReason == openai.FinishReasonLength:
		return Description{}, fault.Permanent(fmt.Errorf("openai %s: the token limit (%d) ended the answer before any text; raise REGSCRIBE_MAX_TOKENS", o.opts.Model, o.opts.MaxTokens))
	}
	d, err := ParseAnswer(content)
	if err != nil {
		return Description{}, fault.Retry(fmt.Errorf("openai %s: %w", o.opts.Model, err))
	}
	d.Model = o.Model()
	d.Created = time.Now().UTC().Truncate(time.Second)
	d.Usage = usage
	return d, nil
}

// request builds a chat request with one user message of parts.
func (o *OpenAI) request(parts []openai.ChatMessagePart, maxTokens int, structured bool) openai.ChatCompletionRequest {
	req := openai.ChatCompletionRequest{
		Model:       o.opts.Model,
		Messages:    []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, MultiContent: parts}},
		MaxTokens:   maxTokens,
		Temperature: float32(o.opts.Temperature),
	}
	if structured {
		req.ResponseFormat = &openai.ChatCompletionResponseFormat{
			Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{
				Name: SchemaName, Description: "What is visible in a photo.", Schema: Schema, Strict: true,
			},
		}
	}
	// Reasoning models (o1, o3, o4, gpt-5, ...) take max_completion_tokens
	// and no temperature; go-openai knows which they are.
	if openai.NewReasoningValidator().Validate(req) != nil {
		req.MaxTokens, req.MaxCompletionTokens, req.Temperature = 0, maxTokens, 0
	}
	return req
}

// messageText is the text of an answer, whether content is a string or parts.
func messageText(m openai.ChatCompletionMessage) string {
	if m.Content != "" || len(m.MultiContent) == 0 {
		return m.Content
	}
	var b strings.Builder
	for _, p := range m.MultiContent {
		if p.Type == openai.ChatMessagePartTypeText {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// apiFailure is an HTTP error answer of the server, whichever way go-openai
// reported it.
type apiFailure struct {
	status  int
	message string
	code    string
}

func asAPIFailure(err error) (apiFailure, bool) {
	var ae *openai.APIError
	if errors.As(err, &ae) {
		code := ""
		if ae.Code != nil {
			code = fmt.Sprint(ae.Code)
		}
		msg := ae.Message
		if msg == "" {
			msg = ae.Type
		}
		return apiFailure{status: ae.HTTPStatusCode, message: msg, code: code}, true
	}
	var re *openai.RequestError
	if errors.As(err, &re) {
		msg := strings.TrimSpace(string(re.Body))
		if msg == "" {
			msg = re.HTTPStatus
		}
		return apiFailure{status: re.HTTPStatusCode, message: truncate(strings.Join(strings.Fields(msg), " "), 300)}, true
	}
	return apiFailure{}, false
}

// rejectsSchema tells whether err is a server saying it does not take
// response_format json_schema (vLLM, llama.cpp and others answer 400 or 422).
func rejectsSchema(err error) bool {
	f, ok := asAPIFailure(err)
	if !ok || (f.status != http.StatusBadRequest && f.status != http.StatusUnprocessableEntity) {
		return false
	}
	m := strings.ToLower(f.message)
	return strings.Contains(m, "response_format") || strings.Contains(m, "json_schema") || strings.Contains(m, "response format")
}

// classify marks an error of a chat call with its fault kind; h are the
// headers of the last response, if there was one.
func (o *OpenAI) classify(ctx context.Context, err error, h http.Header) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return fault.Retry(fmt.Errorf("openai %s: no answer within %s (REGSCRIBE_MODEL_TIMEOUT)", o.opts.Model, o.opts.Timeout))
	}
	f, ok := asAPIFailure(err)
	if !ok {
		if notThere(err) {
			return fault.Unavailable(fmt.Errorf("no OpenAI-compatible server at %s (%v): start it or set OPENAI_BASE_URL", o.where, rootCause(err)))
		}
		return fault.Retry(fmt.Errorf("openai %s: %w", o.opts.Model, err))
	}
	msg := fmt.Errorf("openai %s: %d %s: %s", o.opts.Model, f.status, http.StatusText(f.status), f.message)
	switch {
	case f.status == http.StatusTooManyRequests && f.code == "insufficient_quota":
		return fault.Permanent(fmt.Errorf("%w (check the plan and billing of the OPENAI_API_KEY account)", msg))
	case f.status == http.StatusUnauthorized || f.status == http.StatusForbidden:
		msg = fmt.Errorf("%w (check OPENAI_API_KEY)", msg)
	case f.status == http.StatusNotFound:
		msg = fmt.Errorf("%w (check REGSCRIBE_MODEL)", msg)
	}
	return fault.FromStatus(f.status, retryAfter(h, time.Now()), msg)
}

// Check tells, in one line a person can act on, whether the key is set, the
// server answers and the model is there: it lists the server's models, and
// when the model is not among them (or the server lists none) sends a tiny
// text-only chat, which proves the model answers.
func (o *OpenAI) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(o.opts.Timeout, 30*time.Second))
	defer cancel()
	if o.opts.APIKey == "" && (o.opts.Azure || officialAPI(o.opts.BaseURL)) {
		return fault.Permanent(errors.New("OPENAI_API_KEY is not set: set it to a key from https://platform.openai.com/api-keys, or set OPENAI_BASE_URL to an OpenAI-compatible server"))
	}
	var (
		listed   []string
		noModels bool // the server has no /models: maybe not an API base URL
	)
	if !o.opts.Azure {
		list, err := o.client.ListModels(ctx)
		if err == nil {
			for _, m := range list.Models {
				if m.ID == o.opts.Model {
					return nil
				}
				listed = append(listed, m.ID)
			}
		} else if f, ok := asAPIFailure(err); ok && f.status == http.StatusNotFound {
			noModels = true
		} else {
			return o.checkFailure(err, nil, false)
		}
	}
	probe := []openai.ChatMessagePart{{Type: openai.ChatMessagePartTypeText, Text: "Reply with the word OK."}}
	_, err := o.client.CreateChatCompletion(ctx, o.request(probe, 16, false))
	if err != nil {
		return o.checkFailure(err, listed, noModels)
	}
	return nil
}

// checkFailure turns an error of Check into one actionable line; listed are
// the models the server offers, if it said; noModels is true when it has
// no /models endpoint either.
func (o *OpenAI) checkFailure(err error, listed []string, noModels bool) error {
	where := o.where
	if errors.Is(err, context.DeadlineExceeded) {
		return fault.Unavailable(fmt.Errorf("the OpenAI-compatible server at %s did not answer in time: check OPENAI_BASE_URL and that the server is up", where))
	}
	f, ok := asAPIFailure(err)
	if !ok {
		if notThere(err) {
			return fault.Unavailable(fmt.Errorf("no OpenAI-compatible server at %s (%v): start it or set OPENAI_BASE_URL", where, rootCause(err)))
		}
		return fault.Unavailable(fmt.Errorf("the OpenAI-compatible server at %s failed: %v", where, oneLine(err.Error())))
	}
	switch {
	case f.status == http.StatusUnauthorized || f.status == http.StatusForbidden:
		return fault.Permanent(fmt.Errorf("the server at %s refused the API key (%s): set OPENAI_API_KEY to a valid key", where, oneLine(f.message)))
	case f.status == http.StatusNotFound:
		hint := "set REGSCRIBE_MODEL to a vision model the server has"
		if len(listed) > 0 {
			shown := listed[:min(len(listed), 8)]
			hint += " (it lists " + strings.Join(shown, ", ")
			if len(listed) > len(shown) {
				hint += ", …"
			}
			hint += ")"
		}
		switch {
		case o.opts.Azure:
			hint = "set REGSCRIBE_OPENAI_DEPLOYMENT to a deployment of the resource"
		case noModels:
			hint = "check that OPENAI_BASE_URL is the API's base (usually ending in /v1) and that REGSCRIBE_MODEL names a model the server has"
		}
		return fault.Permanent(fmt.Errorf("model %s is not available at %s (%s): %s", o.opts.Model, where, oneLine(f.message), hint))
	case f.status == http.StatusTooManyRequests || f.status >= 500:
		return fault.Unavailable(fmt.Errorf("the server at %s is not answering requests for %s now (%d: %s)", where, o.opts.Model, f.status, oneLine(f.message)))
	}
	return fault.Permanent(fmt.Errorf("the server at %s rejected a test request for %s (%d: %s)", where, o.opts.Model, f.status, oneLine(f.message)))
}

// oneLine folds whitespace, so an error message stays on one line.
func oneLine(s string) string { return truncate(strings.Join(strings.Fields(s), " "), 300) }
