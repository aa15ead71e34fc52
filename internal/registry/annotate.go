package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Annotations set on a manifest (and, for several photos, on each layer).
const (
	AnnotationDescription = "io.regscribe.description"
	AnnotationAlt         = "io.regscribe.alt"
	AnnotationKeywords    = "io.regscribe.keywords"
	AnnotationModel       = "io.regscribe.model"
	AnnotationCreated     = "io.regscribe.created"
	// AnnotationText is the text visible in the photo (signs, labels,
	// slides), set only when there is some.
	AnnotationText = "io.regscribe.text"
)

// Edit says how to change a manifest's annotations.
type Edit struct {
	// Manifest annotations to set.
	Manifest map[string]string
	// Layers maps a layer index to the annotations to set on that layer.
	Layers map[int]map[string]string
	// LayerRemove maps a layer index of Layers to the annotations to
	// delete from that layer.
	LayerRemove map[int][]string
	// Remove lists manifest annotations to delete.
	Remove []string
	// Manifests (for an index) maps an entry of "manifests" to the
	// descriptor that replaces its digest, size and media type; its platform
	// and annotations are kept.
	Manifests map[int]ocispec.Descriptor
}

// Annotate applies e to an image manifest and returns the new bytes. Every
// field and annotation it does not touch is kept as it was, in its order;
// new annotation keys are added in sorted order (encoding/json's map order),
// so the same edit of the same manifest always gives the same bytes and the
// same digest.
func Annotate(raw []byte, e Edit) ([]byte, error) {
	top, err := decodeObject(raw)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if len(e.Manifest) > 0 || len(e.Remove) > 0 {
		ann, err := mergeAnnotations(top.get("annotations"), e.Manifest, e.Remove)
		if err != nil {
			return nil, fmt.Errorf("manifest annotations: %w", err)
		}
		top.set("annotations", ann)
	}
	if len(e.Layers) > 0 {
		var layers []json.RawMessage
		if err := json.Unmarshal(top.get("layers"), &layers); err != nil {
			return nil, fmt.Errorf("manifest layers: %w", err)
		}
		for i, set := range e.Layers {
			if i < 0 || i >= len(layers) {
				return nil, fmt.Errorf("layer %d of %d", i, len(layers))
			}
			layer, err := decodeObject(layers[i])
			if err != nil {
				return nil, fmt.Errorf("layer %d: %w", i, err)
			}
			ann, err := mergeAnnotations(layer.get("annotations"), set, e.LayerRemove[i])
			if err != nil {
				return nil, fmt.Errorf("layer %d annotations: %w", i, err)
			}
			layer.set("annotations", ann)
			if layers[i], err = layer.encode(); err != nil {
				return nil, err
			}
		}
		b, err := json.Marshal(layers)
		if err != nil {
			return nil, err
		}
		top.set("layers", b)
	}
	if len(e.Manifests) > 0 {
		var entries []json.RawMessage
		if err := json.Unmarshal(top.get("manifests"), &entries); err != nil {
			return nil, fmt.Errorf("index manifests: %w", err)
		}
		for i, d := range e.Manifests {
			if i < 0 || i >= len(entries) {
				return nil, fmt.Errorf("index entry %d of %d", i, len(entries))
			}
			entry, err := decodeObject(entries[i])
			if err != nil {
				return nil, fmt.Errorf("index entry %d: %w", i, err)
			}
			for k, v := range map[string]any{"mediaType": d.MediaType, "digest": d.Digest, "size": d.Size} {
				b, err := json.Marshal(v)
				if err != nil {
					return nil, err
				}
				entry.set(k, b)
			}
			if entries[i], err = entry.encode(); err != nil {
				return nil, err
			}
		}
		b, err := json.Marshal(entries)
		if err != nil {
			return nil, err
		}
		top.set("manifests", b)
	}
	return top.encode()
}

func mergeAnnotations(raw json.RawMessage, set map[string]string, remove []string) (json.RawMessage, error) {
	ann := object{vals: map[string]json.RawMessage{}}
	if len(raw) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		var err error
		if ann, err = decodeObject(raw); err != nil {
			return nil, err
		}
	}
	for _, k := range remove {
		ann.del(k)
	}
	for _, k := range sortedKeys(set) {
		v, err := json.Marshal(set[k])
		if err != nil {
			return nil, err
		}
		ann.set(k, v)
	}
	return ann.encode()
}

// object is a JSON object that keeps its keys in order.
type object struct {
	keys []string
	vals map[string]json.RawMessage
}

func decodeObject(raw []byte) (object, error) {
	o := object{vals: map[string]json.RawMessage{}}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return o, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return o, errors.New("not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return o, err
		}
		k, ok := tok.(string)
		if !ok {
			return o, errors.New("object key is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return o, err
		}
		if _, dup := o.vals[k]; !dup {
			o.keys = append(o.keys, k)
		}
		o.vals[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return o, err
	}
	if dec.More() {
		return o, errors.New("trailing data after JSON object")
	}
	return o, nil
}

func (o *object) get(k string) json.RawMessage { return o.vals[k] }

func (o *object) set(k string, v json.RawMessage) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) del(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
}

func (o object) encode() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		buf.Write(kb)
		buf.WriteByte(':')
		if err := json.Compact(&buf, o.vals[k]); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// ParseImageManifest decodes an OCI image manifest. Other media types
// (indexes, Docker schema 2) are reported as errors of kind skip by the caller.
func ParseImageManifest(m Manifest) (ocispec.Manifest, error) {
	var im ocispec.Manifest
	if err := json.Unmarshal(m.Raw, &im); err != nil {
		return im, fmt.Errorf("decode manifest %s: %w", m.Descriptor.Digest, err)
	}
	return im, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
