// Package memo remembers descriptions per image blob, model and prompt in a
// JetStream key-value bucket, so that the same photo pushed again, tagged
// again or pushed to another repository is described without a model call.
//
// It stores and returns vision.Description values and nothing else.
package memo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/vision"
)

// Key identifies one remembered description.
type Key struct {
	// Blob is the image blob digest ("sha256:…").
	Blob string
	// Model is provider/model.
	Model string
	// Prompt is the prompt digest.
	Prompt string
}

// String is the bucket key: a hash, since KV keys allow few characters.
func (k Key) String() string {
	sum := sha256.Sum256([]byte(k.Blob + "\x00" + k.Model + "\x00" + k.Prompt))
	return hex.EncodeToString(sum[:])
}

// Store is a description memory backed by a key-value bucket.
type Store struct {
	kv jetstream.KeyValue
}

// Open creates (or opens) the bucket.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Store, error) {
	if replicas == 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "regscribe: descriptions by image blob, model and prompt",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("open description bucket %s: %w", bucket, err)
	}
	return &Store{kv: kv}, nil
}

// Get returns the remembered description and true, or false when there is none.
func (s *Store) Get(ctx context.Context, k Key) (vision.Description, bool, error) {
	e, err := s.kv.Get(ctx, k.String())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return vision.Description{}, false, nil
	}
	if err != nil {
		return vision.Description{}, false, fmt.Errorf("recall description of %s: %w", k.Blob, err)
	}
	var d vision.Description
	if err := json.Unmarshal(e.Value(), &d); err != nil {
		// A record that does not decode is as good as none: describe again.
		return vision.Description{}, false, nil
	}
	return d, true, nil
}

// Remember stores d under k unless a description is stored there already,
// and returns the one stored: the first description of a photo wins, so
// workers that described it at the same time all write the same bytes.
//
// It never overwrites another writer's description: when the key exists but
// the stored description cannot be read (a timeout, a leader election, the
// key deleted in between), it returns an error of kind [fault.KindRetry],
// and the job's next attempt reads the winner. A stored record that does not
// decode is replaced only if it is still the record read (compare and swap
// on its revision).
func (s *Store) Remember(ctx context.Context, k Key, d vision.Description) (vision.Description, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return d, err
	}
	_, err = s.kv.Create(ctx, k.String(), b)
	if err == nil {
		return d, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return d, fmt.Errorf("remember description of %s: %w", k.Blob, err)
	}
	e, err := s.kv.Get(ctx, k.String())
	if err != nil {
		return d, fault.Retry(fmt.Errorf("another description of %s is stored but cannot be read yet: %w", k.Blob, err))
	}
	var stored vision.Description
	if json.Unmarshal(e.Value(), &stored) == nil {
		return stored, nil
	}
	if _, err := s.kv.Update(ctx, k.String(), b, e.Revision()); err != nil {
		return d, fault.Retry(fmt.Errorf("replace an unreadable description of %s: %w", k.Blob, err))
	}
	return d, nil
}

// Replace stores d under k whatever was there (a forced description).
func (s *Store) Replace(ctx context.Context, k Key, d vision.Description) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, k.String(), b); err != nil {
		return fmt.Errorf("remember description of %s: %w", k.Blob, err)
	}
	return nil
}
