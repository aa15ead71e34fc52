// Package modeltest holds fake vision model servers for tests: [Ollama]
// (Ollama's native API) and [OpenAI] (the chat-completions API of OpenAI,
// Azure OpenAI and compatible servers). They speak the real wire protocol
// of each provider, so regscribe's real client libraries are exercised, and
// they check what they receive: the model, the prompt, the schema, the
// image bytes and their media type. Each records [Call]s and the protocol
// problems it saw, and answers with a [Reply] chosen by the test: JSON,
// prose, an HTTP error with headers, or nothing at all.
//
// Both also serve embeddings (Ollama's /api/embed, OpenAI's
// /v1/embeddings) with deterministic vectors ([EmbedVector]) in which
// synonyms share dimensions, so semantic search can find a photo by a word
// its description does not contain; SetEmbedDown makes that endpoint fail.
//
// Only tests and the benchmark import it.
package modeltest
