package modeltest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/jpeg"
	"net/http"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	openai "github.com/sashabaranov/go-openai"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/modeltest"
)

var schema = json.RawMessage(`{"type":"object","properties":{"description":{"type":"string"}},"required":["description"],"additionalProperties":false}`)

func photo(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8)), nil))
	return b.Bytes()
}

func openAIClient(f *modeltest.OpenAI, key string) *openai.Client {
	cfg := openai.DefaultConfig(key)
	cfg.BaseURL = f.BaseURL()
	return openai.NewClientWithConfig(cfg)
}

func chatRequest(model, mediaType string, data []byte, detail openai.ImageURLDetail, format *openai.ChatCompletionResponseFormat) openai.ChatCompletionRequest {
	return openai.ChatCompletionRequest{
		Model: model,
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, MultiContent: []openai.ChatMessagePart{
			{Type: openai.ChatMessagePartTypeText, Text: "Describe it."},
			{Type: openai.ChatMessagePartTypeImageURL, ImageURL: &openai.ChatMessageImageURL{
				URL: "data:" + mediaType + ";base64," + base64.StdEncoding.EncodeToString(data), Detail: detail,
			}},
		}}},
		ResponseFormat: format,
	}
}

func jsonSchema(strict bool, s json.RawMessage) *openai.ChatCompletionResponseFormat {
	return &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
		JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{Name: "answer", Schema: s, Strict: strict}}
}

func TestOpenAIFakeRecordsAWellFormedCall(t *testing.T) {
	t.Parallel()
	f := modeltest.NewUnstartedOpenAI("sk-test", "gpt-4o-mini")
	f.Detail = "low"
	f.Start()
	t.Cleanup(f.Close)
	img := photo(t)
	resp, err := openAIClient(f, "sk-test").CreateChatCompletion(context.Background(),
		chatRequest("gpt-4o-mini", "image/jpeg", img, openai.ImageURLDetailLow, jsonSchema(true, schema)))
	require.NoError(t, err)
	require.Empty(t, f.Problems())
	require.Contains(t, resp.Choices[0].Message.Content, modeltest.Digest(img)[:19])
	require.Positive(t, resp.Usage.PromptTokens)
	calls := f.Calls()
	require.Len(t, calls, 1)
	require.Equal(t, modeltest.Call{
		Model: "gpt-4o-mini", Prompt: "Describe it.", Images: [][]byte{img}, MediaType: "image/jpeg", Detail: "low", Format: schema,
	}, calls[0])
}

func TestOpenAIFakeNotesProblems(t *testing.T) {
	t.Parallel()
	img := photo(t)
	cases := []struct {
		name string
		req  openai.ChatCompletionRequest
	}{
		{"bytes do not match the media type", chatRequest("gpt-4o-mini", "image/png", img, "low", jsonSchema(true, schema))},
		{"wrong detail", chatRequest("gpt-4o-mini", "image/jpeg", img, "high", jsonSchema(true, schema))},
		{"no response_format", chatRequest("gpt-4o-mini", "image/jpeg", img, "low", nil)},
		{"not strict", chatRequest("gpt-4o-mini", "image/jpeg", img, "low", jsonSchema(false, schema))},
		{"schema not valid for strict mode", chatRequest("gpt-4o-mini", "image/jpeg", img, "low", jsonSchema(true, json.RawMessage(`{"type":"object","properties":{"a":{"type":"string"}}}`)))},
		{"not base64", func() openai.ChatCompletionRequest {
			r := chatRequest("gpt-4o-mini", "image/jpeg", img, "low", jsonSchema(true, schema))
			r.Messages[0].MultiContent[1].ImageURL.URL = "data:image/jpeg;base64,%%%"
			return r
		}()},
		{"a URL instead of the bytes", func() openai.ChatCompletionRequest {
			r := chatRequest("gpt-4o-mini", "image/jpeg", img, "low", jsonSchema(true, schema))
			r.Messages[0].MultiContent[1].ImageURL.URL = "https://example.com/cat.jpg"
			return r
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := modeltest.NewUnstartedOpenAI("sk-test", "gpt-4o-mini")
			f.Detail = "low"
			f.Start()
			t.Cleanup(f.Close)
			_, _ = openAIClient(f, "sk-test").CreateChatCompletion(context.Background(), tc.req)
			require.NotEmpty(t, f.Problems())
		})
	}
}

func TestOpenAIFakeErrorsSpeakOpenAI(t *testing.T) {
	t.Parallel()
	f := modeltest.NewUnstartedOpenAI("sk-test", "gpt-4o-mini")
	f.Answer = func(modeltest.Call) modeltest.Reply { return modeltest.RateLimited(2 * time.Second) }
	f.Start()
	t.Cleanup(f.Close)
	img := photo(t)
	req := chatRequest("gpt-4o-mini", "image/jpeg", img, "", jsonSchema(true, schema))

	var apiErr *openai.APIError
	_, err := openAIClient(f, "sk-wrong").CreateChatCompletion(context.Background(), req)
	require.True(t, errors.As(err, &apiErr))
	require.Equal(t, http.StatusUnauthorized, apiErr.HTTPStatusCode)
	require.Equal(t, "invalid_api_key", apiErr.Code)

	req.Model = "gpt-9"
	_, err = openAIClient(f, "sk-test").CreateChatCompletion(context.Background(), req)
	require.True(t, errors.As(err, &apiErr))
	require.Equal(t, http.StatusNotFound, apiErr.HTTPStatusCode)
	require.Equal(t, "model_not_found", apiErr.Code)
	require.Equal(t, "The model `gpt-9` does not exist", apiErr.Message)

	httpReq, err := http.NewRequest(http.MethodPost, f.BaseURL()+"/chat/completions", bytes.NewReader(mustJSON(t, chatRequest("gpt-4o-mini", "image/jpeg", img, "", jsonSchema(true, schema)))))
	require.NoError(t, err)
	httpReq.Header.Set("Authorization", "Bearer sk-test")
	resp, err := http.DefaultClient.Do(httpReq)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "2", resp.Header.Get("Retry-After"))
	require.Equal(t, "1s", resp.Header.Get("X-Ratelimit-Reset-Requests"))

	rejecting := modeltest.NewUnstartedOpenAI("", "local")
	rejecting.RejectJSONSchema = true
	rejecting.Start()
	t.Cleanup(rejecting.Close)
	_, err = openAIClient(rejecting, "").CreateChatCompletion(context.Background(), chatRequest("local", "image/jpeg", img, "", jsonSchema(true, schema)))
	require.True(t, errors.As(err, &apiErr))
	require.Equal(t, http.StatusBadRequest, apiErr.HTTPStatusCode)
	require.Equal(t, modeltest.SchemaRejection, apiErr.Message)
	_, err = openAIClient(rejecting, "").CreateChatCompletion(context.Background(), chatRequest("local", "image/jpeg", img, "", nil))
	require.NoError(t, err)
	require.Empty(t, rejecting.Problems(), "a server that rejects json_schema expects none")
}

func TestOllamaFakeNotesProblems(t *testing.T) {
	t.Parallel()
	f := modeltest.NewOllama("qwen2.5vl:3b")
	t.Cleanup(f.Close)
	u, err := url.Parse(f.URL)
	require.NoError(t, err)
	c := api.NewClient(u, http.DefaultClient)
	img := photo(t)
	err = c.Chat(context.Background(), &api.ChatRequest{
		Model:    "qwen2.5vl:3b",
		Messages: []api.Message{{Role: "user", Content: "Describe it.", Images: []api.ImageData{img}}},
	}, func(api.ChatResponse) error { return nil })
	require.NoError(t, err)
	require.ElementsMatch(t, []string{
		"streaming requested; regscribe asks for one answer",
		"no format (JSON schema) in request",
	}, f.Problems())
	require.Equal(t, "image/jpeg", f.Calls()[0].MediaType)
}

func TestOllamaFakePull(t *testing.T) {
	t.Parallel()
	f := modeltest.NewOllama()
	t.Cleanup(f.Close)
	u, err := url.Parse(f.URL)
	require.NoError(t, err)
	c := api.NewClient(u, http.DefaultClient)
	var statuses []string
	require.NoError(t, c.Pull(context.Background(), &api.PullRequest{Model: "moondream"}, func(p api.ProgressResponse) error {
		statuses = append(statuses, p.Status)
		return nil
	}))
	require.Equal(t, "pulling manifest", statuses[0])
	require.Equal(t, "success", statuses[len(statuses)-1])
	list, err := c.List(context.Background())
	require.NoError(t, err)
	require.Equal(t, "moondream:latest", list.Models[0].Name)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestOllamaFakeServesAtMostLimitAtOnce(t *testing.T) {
	t.Parallel()
	const limit, requests, latency = 2, 6, 100 * time.Millisecond
	f := modeltest.NewUnstartedOllama("qwen2.5vl:3b")
	f.Limit, f.Latency = limit, latency
	f.Start()
	t.Cleanup(f.Close)
	u, err := url.Parse(f.URL)
	require.NoError(t, err)
	c := api.NewClient(u, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: requests}})
	img := photo(t)
	stream := false
	start := time.Now()
	errs := make(chan error, requests)
	for range requests {
		go func() {
			errs <- c.Chat(context.Background(), &api.ChatRequest{
				Model:    "qwen2.5vl:3b",
				Messages: []api.Message{{Role: "user", Content: "Describe it.", Images: []api.ImageData{img}}},
				Stream:   &stream,
				Format:   schema,
			}, func(api.ChatResponse) error { return nil })
		}()
	}
	for range requests {
		require.NoError(t, <-errs)
	}
	// Six requests through two slots are three rounds of the latency.
	require.GreaterOrEqual(t, time.Since(start), requests/limit*latency)
	require.Equal(t, limit, f.MaxServed())
	require.Greater(t, f.MaxConcurrent(), limit, "the others waited in line, in flight")
	require.Len(t, f.Calls(), requests)
	require.Empty(t, f.Problems())
}

func TestOllamaFakeResetsTheConnection(t *testing.T) {
	t.Parallel()
	f := modeltest.NewOllama("qwen2.5vl:3b")
	t.Cleanup(f.Close)
	f.Answer = func(modeltest.Call) modeltest.Reply { return modeltest.Reset() }
	u, err := url.Parse(f.URL)
	require.NoError(t, err)
	c := api.NewClient(u, http.DefaultClient)
	stream := false
	err = c.Chat(context.Background(), &api.ChatRequest{
		Model: "qwen2.5vl:3b", Stream: &stream, Format: schema,
		Messages: []api.Message{{Role: "user", Content: "Describe it.", Images: []api.ImageData{photo(t)}}},
	}, func(api.ChatResponse) error { return nil })
	require.ErrorIs(t, err, syscall.ECONNRESET)
	require.Len(t, f.Calls(), 1, "the request was read before the reset")
}

func TestEmbedVectorMapsSynonymsTogether(t *testing.T) {
	dot := func(a, b []float32) (s float32) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	car := modeltest.EmbedVector("A red car on the road.", modeltest.DefaultEmbedDims)
	require.InDelta(t, 1, dot(car, car), 1e-5, "normalised")
	require.Greater(t, dot(car, modeltest.EmbedVector("automobile", modeltest.DefaultEmbedDims)), float32(0.4))
	require.Less(t, dot(car, modeltest.EmbedVector("puppy", modeltest.DefaultEmbedDims)), float32(0.1))
	require.Equal(t, car, modeltest.EmbedVector("A red car on the road.", modeltest.DefaultEmbedDims), "deterministic")
}
