package index

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regscribe/regscribe/internal/feed"
)

// Refusals: a manifest a worker read and found no photo in (a refused
// event) is kept, with the reason, in the bucket [bucketRefused] of the
// history file, never in bleve: it is counted per repository and listed
// ([Index.Refusals]), never searched. A description or a deletion of the
// manifest removes it, and so does a description of a manifest that
// replaces it.
var bucketRefused = []byte("refused")

// Refusal is a manifest that holds no photo regscribe describes, and why.
type Refusal struct {
	Registry   string    `json:"registry"`
	Repository string    `json:"repository"`
	Digest     string    `json:"digest"`
	Tags       []string  `json:"tags,omitempty"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// Ref is registry/repository@digest.
func (r Refusal) Ref() string { return r.Registry + "/" + r.Repository + "@" + r.Digest }

// refuse records (r not nil) or forgets (nil) the refusal of the manifest
// key, in the state and in the batch's history changes.
func (w *writer) refuse(key string, r *Refusal) {
	setRecord(w.ix.state.refused, w.refusals, key, r)
	w.ix.state.changed[tileID{key: key}] = struct{}{}
}

// setRecord records (r not nil) or forgets (nil) the record of key in the
// state's records and in the batch's changes of them.
func setRecord[T any](records map[string]T, changes map[string]*T, key string, r *T) {
	if r == nil {
		if _, ok := records[key]; !ok {
			return
		}
		delete(records, key)
	} else {
		records[key] = *r
	}
	changes[key] = r
}

// refusalOf is the refusal event e says.
func refusalOf(e feed.Event, tags []string) *Refusal {
	return &Refusal{Registry: e.Registry, Repository: e.Repository, Digest: e.Digest, Tags: tags, Reason: e.Reason, At: e.At.UTC()}
}

// saveRecords writes record changes (nil: removed) into bucket name of tx:
// the refusals, and the manifests waiting to be described.
func saveRecords[T any](tx *bolt.Tx, name []byte, changes map[string]*T) error {
	b := tx.Bucket(name)
	for key, r := range changes {
		if r == nil {
			if err := b.Delete([]byte(key)); err != nil {
				return err
			}
			continue
		}
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(key), v); err != nil {
			return err
		}
	}
	return nil
}

// loadRecords reads bucket name of tx into into.
func loadRecords[T any](tx *bolt.Tx, name []byte, into map[string]T) error {
	return tx.Bucket(name).ForEach(func(k, v []byte) error {
		var r T
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("%s record %q is unreadable; delete the index directory to rebuild it from the stream", name, k)
		}
		into[string(k)] = r
		return nil
	})
}

// Refusals lists the refused manifests, newest first, at most limit
// (DefaultLimit when not positive), and how many there are.
func (ix *Index) Refusals(ctx context.Context, limit int) ([]Refusal, int, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	ix.mu.Lock()
	out := make([]Refusal, 0, len(ix.state.refused))
	for _, r := range ix.state.refused {
		out = append(out, r)
	}
	ix.mu.Unlock()
	slices.SortFunc(out, func(a, b Refusal) int {
		return cmp.Or(b.At.Compare(a.At), strings.Compare(a.Ref(), b.Ref()))
	})
	return out[:min(len(out), limit)], len(out), ctx.Err()
}
