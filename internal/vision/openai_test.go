package vision_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/vision"
)

// startOpenAI starts a fake with key "sk-test" and model gpt-4o-mini, lets
// configure adjust it before it starts, and returns a provider for it.
func startOpenAI(t *testing.T, configure func(*modeltest.OpenAI), opts vision.OpenAIOptions) (*vision.OpenAI, *modeltest.OpenAI) {
	t.Helper()
	f := modeltest.NewUnstartedOpenAI("sk-test", "gpt-4o-mini")
	if configure != nil {
		configure(f)
	}
	f.Start()
	t.Cleanup(f.Close)
	if opts.BaseURL == "" {
		opts.BaseURL = f.BaseURL()
	}
	if opts.APIKey == "" {
		opts.APIKey = "sk-test"
	}
	if opts.Model == "" {
		opts.Model = "gpt-4o-mini"
	}
	o, err := vision.NewOpenAI(opts)
	require.NoError(t, err)
	return o, f
}

func TestOpenAIFallsBackToPlainTextOnce(t *testing.T) {
	t.Parallel()
	o, f := startOpenAI(t, func(f *modeltest.OpenAI) {
		f.RejectJSONSchema = true
		f.Answer = func(modeltest.Call) modeltest.Reply {
			return modeltest.Prose("Here is a description of the photo: a lighthouse on a cliff at dawn.")
		}
	}, vision.OpenAIOptions{})
	photo := testJPEG(t)
	require.True(t, o.Structured())

	d, err := o.Describe(context.Background(), vision.Image{Data: photo, MediaType: "image/jpeg"})
	require.NoError(t, err)
	require.Equal(t, "A lighthouse on a cliff at dawn.", d.Text)
	require.False(t, o.Structured(), "the provider remembers that the server takes no json_schema")

	_, err = o.Describe(context.Background(), vision.Image{Data: photo, MediaType: "image/jpeg"})
	require.NoError(t, err)
	calls := f.Calls()
	require.Len(t, calls, 3, "one rejected call, its plain repeat, then plain only")
	require.JSONEq(t, string(vision.Schema), string(calls[0].Format))
	require.Empty(t, calls[1].Format)
	require.Empty(t, calls[2].Format)
	require.Equal(t, photo, calls[2].Images[0])
	require.Empty(t, f.Problems())
}

func TestOpenAIFallbackIsSafeConcurrently(t *testing.T) {
	t.Parallel()
	o, f := startOpenAI(t, func(f *modeltest.OpenAI) { f.RejectJSONSchema = true }, vision.OpenAIOptions{})
	photo := testJPEG(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := o.Describe(context.Background(), vision.Image{Data: photo, MediaType: "image/jpeg"})
			require.NoError(t, err)
		})
	}
	wg.Wait()
	require.False(t, o.Structured())
	require.Empty(t, f.Problems())
}

func TestOpenAISchemaSentWhenTaken(t *testing.T) {
	t.Parallel()
	o, f := startOpenAI(t, nil, vision.OpenAIOptions{})
	for range 2 {
		_, err := o.Describe(context.Background(), vision.Image{Data: testJPEG(t), MediaType: "image/jpeg"})
		require.NoError(t, err)
	}
	for _, c := range f.Calls() {
		require.JSONEq(t, string(vision.Schema), string(c.Format))
		require.Equal(t, "auto", c.Detail, "detail defaults to auto")
	}
	require.True(t, o.Structured())
	require.Empty(t, f.Problems())
}

func TestOpenAIClassification(t *testing.T) {
	t.Parallel()
	resetOnly := http.Header{}
	resetOnly.Set("X-Ratelimit-Remaining-Tokens", "0")
	resetOnly.Set("X-Ratelimit-Reset-Tokens", "6m0s")
	cases := []struct {
		name     string
		reply    modeltest.Reply
		kind     fault.Kind
		minAfter time.Duration
		errHas   string
	}{
		{"429 with only x-ratelimit-reset waits for the reset", modeltest.Reply{Status: 429, Content: "Rate limit reached for tokens", Header: resetOnly}, fault.KindRetry, 6 * time.Minute, "Rate limit reached for tokens"},
		{"exhausted quota is permanent", modeltest.Reply{Status: 429, Content: "You exceeded your current quota", Code: "insufficient_quota"}, fault.KindPermanent, 0, "billing"},
		{"503 retries", modeltest.Reply{Status: 503, Content: "The engine is currently overloaded"}, fault.KindRetry, 0, "overloaded"},
		{"refused content is permanent", modeltest.Reply{Status: 400, Content: "Your request was rejected as a result of our safety system.", Code: "content_policy_violation"}, fault.KindPermanent, 0, "safety system"},
		{"a refusal is permanent", modeltest.Reply{Refusal: "I can't help with that."}, fault.KindPermanent, 0, "I can't help with that."},
		{"a filtered answer is permanent", modeltest.Reply{FinishReason: "content_filter"}, fault.KindPermanent, 0, "content filter"},
		{"no text within the token limit is permanent", modeltest.Reply{FinishReason: "length"}, fault.KindPermanent, 0, "REGSCRIBE_MAX_TOKENS"},
		{"a cut JSON answer retries", modeltest.Reply{Content: `{"description":"A red ki`, FinishReason: "length"}, fault.KindRetry, 0, "incomplete JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, _ := startOpenAI(t, func(f *modeltest.OpenAI) {
				f.Answer = func(modeltest.Call) modeltest.Reply { return tc.reply }
			}, vision.OpenAIOptions{})
			_, err := o.Describe(context.Background(), vision.Image{Data: testJPEG(t), MediaType: "image/jpeg"})
			require.Error(t, err)
			kind, after := fault.Classify(err)
			require.Equal(t, tc.kind, kind, "error: %v", err)
			require.GreaterOrEqual(t, after, tc.minAfter)
			require.ErrorContains(t, err, tc.errHas)
		})
	}
}

func TestOpenAIRejectsWhatTheAPIDoesNotTake(t *testing.T) {
	t.Parallel()
	o, f := startOpenAI(t, nil, vision.OpenAIOptions{})
	_, err := o.Describe(context.Background(), vision.Image{Data: []byte("II*\x00tiff"), MediaType: "image/tiff"})
	require.True(t, fault.Is(err, fault.KindPermanent), "got %v", err)
	require.Empty(t, f.Calls(), "nothing is sent")
	require.ElementsMatch(t, []string{"image/jpeg", "image/png", "image/webp", "image/gif"}, o.Accepts())
}

func TestOpenAIReasoningModels(t *testing.T) {
	t.Parallel()
	// go-openai refuses max_tokens and a temperature for reasoning models
	// before sending: the provider must send max_completion_tokens instead.
	o, f := startOpenAI(t, func(f *modeltest.OpenAI) { f.Models = []string{"gpt-5-mini"} },
		vision.OpenAIOptions{Model: "gpt-5-mini", MaxTokens: 300, Temperature: 0.2})
	_, err := o.Describe(context.Background(), vision.Image{Data: testJPEG(t), MediaType: "image/jpeg"})
	require.NoError(t, err)
	require.Empty(t, f.Problems())
}

func TestOpenAIAzure(t *testing.T) {
	t.Parallel()
	f := modeltest.NewUnstartedOpenAI("azure-key", "vision-prod")
	f.Start()
	t.Cleanup(f.Close)
	o, err := vision.NewOpenAI(vision.OpenAIOptions{
		Azure: true, BaseURL: f.URL, APIKey: "azure-key", Model: "gpt-4o", Deployment: "vision-prod", Detail: "high",
	})
	require.NoError(t, err)
	require.Equal(t, "openai/gpt-4o", o.Model())
	require.NoError(t, o.Check(context.Background()))
	photo := testJPEG(t)
	d, err := o.Describe(context.Background(), vision.Image{Data: photo, MediaType: "image/jpeg"})
	require.NoError(t, err)
	require.Equal(t, "A test photo "+modeltest.Digest(photo)[:19]+".", d.Text)
	calls := f.Calls()
	require.Equal(t, "vision-prod", calls[len(calls)-1].Model, "the deployment serves the call")
	require.Equal(t, "high", calls[len(calls)-1].Detail)
	require.Empty(t, f.Problems())

	missing, err := vision.NewOpenAI(vision.OpenAIOptions{Azure: true, BaseURL: f.URL, APIKey: "azure-key", Model: "gpt-4o", Deployment: "nope"})
	require.NoError(t, err)
	err = missing.Check(context.Background())
	require.ErrorContains(t, err, "REGSCRIBE_OPENAI_DEPLOYMENT")
	requireOneLine(t, err)
}

func TestNewOpenAISettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		opts   vision.OpenAIOptions
		errHas string
	}{
		{"official API needs a key", vision.OpenAIOptions{Model: "gpt-4o-mini"}, "OPENAI_API_KEY is not set"},
		{"official API named explicitly needs a key", vision.OpenAIOptions{BaseURL: "https://api.openai.com/v1/", Model: "gpt-4o-mini"}, "OPENAI_API_KEY is not set"},
		{"local servers need none", vision.OpenAIOptions{BaseURL: "http://127.0.0.1:8000/v1", Model: "Qwen/Qwen2.5-VL-7B-Instruct"}, ""},
		{"a model is needed", vision.OpenAIOptions{APIKey: "k"}, "REGSCRIBE_MODEL"},
		{"detail is low, high or auto", vision.OpenAIOptions{APIKey: "k", Model: "m", Detail: "medium"}, "REGSCRIBE_OPENAI_DETAIL"},
		{"Azure needs an endpoint", vision.OpenAIOptions{Azure: true, APIKey: "k", Model: "m"}, "OPENAI_BASE_URL"},
		{"Azure needs a key", vision.OpenAIOptions{Azure: true, BaseURL: "https://x.openai.azure.com", Model: "m"}, "OPENAI_API_KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, err := vision.NewOpenAI(tc.opts)
			if tc.errHas == "" {
				require.NoError(t, err)
				require.Equal(t, "openai/"+tc.opts.Model, o.Model())
				return
			}
			require.ErrorContains(t, err, tc.errHas)
			requireOneLine(t, err)
		})
	}
}

func TestOpenAICheck(t *testing.T) {
	t.Parallel()
	t.Run("a wrong key names OPENAI_API_KEY", func(t *testing.T) {
		t.Parallel()
		f := modeltest.NewOpenAI("sk-right", "gpt-4o-mini")
		t.Cleanup(f.Close)
		o, err := vision.NewOpenAI(vision.OpenAIOptions{BaseURL: f.BaseURL(), APIKey: "sk-wrong", Model: "gpt-4o-mini"})
		require.NoError(t, err)
		err = o.Check(context.Background())
		require.ErrorContains(t, err, "refused the API key")
		require.ErrorContains(t, err, "OPENAI_API_KEY")
		requireOneLine(t, err)
	})
	t.Run("a missing key names OPENAI_API_KEY", func(t *testing.T) {
		t.Parallel()
		f := modeltest.NewOpenAI("sk-right", "gpt-4o-mini")
		t.Cleanup(f.Close)
		o, err := vision.NewOpenAI(vision.OpenAIOptions{BaseURL: f.BaseURL(), Model: "gpt-4o-mini"})
		require.NoError(t, err, "a compatible server may need no key")
		err = o.Check(context.Background())
		require.ErrorContains(t, err, "OPENAI_API_KEY")
		requireOneLine(t, err)
	})
	t.Run("a base URL without /v1 says so", func(t *testing.T) {
		t.Parallel()
		f := modeltest.NewOpenAI("sk-test", "gpt-4o-mini")
		t.Cleanup(f.Close)
		o, err := vision.NewOpenAI(vision.OpenAIOptions{BaseURL: f.URL, APIKey: "sk-test", Model: "gpt-4o-mini"})
		require.NoError(t, err)
		err = o.Check(context.Background())
		require.ErrorContains(t, err, "OPENAI_BASE_URL")
		require.ErrorContains(t, err, "/v1")
		requireOneLine(t, err)
	})
	t.Run("an unknown model lists what the server has", func(t *testing.T) {
		t.Parallel()
		o, f := startOpenAI(t, nil, vision.OpenAIOptions{Model: "gpt-4o-mimi"})
		err := o.Check(context.Background())
		require.ErrorContains(t, err, "gpt-4o-mimi")
		require.ErrorContains(t, err, "REGSCRIBE_MODEL")
		require.ErrorContains(t, err, "gpt-4o-mini")
		requireOneLine(t, err)
		require.Empty(t, f.Problems())
	})
}
