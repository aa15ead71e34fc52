package memo

import "github.com/nats-io/nats.go/jetstream"

// NewStoreOn returns a Store on kv, for tests that wrap the bucket.
func NewStoreOn(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }
