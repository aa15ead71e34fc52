package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Kind is a kind of test photo.
type Kind string

// The kinds of photos the benchmark pushes.
const (
	// OneMP is a 1152×864 JPEG (about 0.35 MB): passed to the model as is.
	OneMP Kind = "1mp"
	// TwelveMP is a 4000×3000 JPEG (about 4 MB), as a phone or camera takes
	// it: decoded and downscaled to 1536 px before the model sees it.
	TwelveMP Kind = "12mp"
	// PNG is a 1152×864 PNG (about 2.2 MB): passed to the model as is.
	PNG Kind = "png"
	// Mixed is every tenth photo 12 MP, every tenth a PNG, the rest 1 MP.
	Mixed Kind = "mixed"
)

// ParseKind parses 1mp, 12mp, png or mixed.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(s)); k {
	case OneMP, TwelveMP, PNG, Mixed:
		return k, nil
	}
	return "", fmt.Errorf("photos %q: want 1mp, 12mp, png or mixed", s)
}

// Describe says what the photos of kind k are, for the report.
func (k Kind) Describe() string {
	switch k {
	case OneMP:
		return "1 MP JPEG (pass-through)"
	case TwelveMP:
		return "12 MP JPEG (downscaled)"
	case PNG:
		return "1 MP PNG (pass-through)"
	}
	return "mixed: 80% 1 MP JPEG, 10% PNG, 10% 12 MP JPEG"
}

// album makes test photos: one expensive original per kind, generated once,
// and any number of distinct variants of it that differ only in a comment
// (a JPEG COM segment, a PNG tEXt chunk). Each variant is a different blob,
// so the description memory does not recognise it, while decoding it costs
// exactly what decoding the original costs. Variants are streamed from the
// original, so pushing N photos holds one copy in memory, not N.
type album struct {
	originals map[Kind][]byte
}

// newAlbum generates the originals the kinds need.
func newAlbum(kinds ...Kind) (*album, error) {
	a := &album{originals: map[Kind][]byte{}}
	for _, k := range kinds {
		for _, base := range k.bases() {
			if a.originals[base] != nil {
				continue
			}
			b, err := generate(base)
			if err != nil {
				return nil, err
			}
			a.originals[base] = b
		}
	}
	return a, nil
}

// bases are the kinds of original a kind needs.
func (k Kind) bases() []Kind {
	if k == Mixed {
		return []Kind{OneMP, PNG, TwelveMP}
	}
	return []Kind{k}
}

// kindOf is the kind of the i-th photo of kind k.
func (k Kind) kindOf(i int) Kind {
	if k != Mixed {
		return k
	}
	switch i % 10 {
	case 4:
		return PNG
	case 9:
		return TwelveMP
	}
	return OneMP
}

func generate(k Kind) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch k {
	case OneMP:
		err = jpeg.Encode(&buf, noisy(1152, 864, 1), &jpeg.Options{Quality: 90})
	case TwelveMP:
		err = jpeg.Encode(&buf, noisy(4000, 3000, 12), &jpeg.Options{Quality: 90})
	case PNG:
		err = png.Encode(&buf, noisy(1152, 864, 2))
	default:
		err = fmt.Errorf("no original for %q", k)
	}
	return buf.Bytes(), err
}

// noisy is a gradient with per-pixel noise: to a JPEG encoder it looks like
// a photo (a 12 MP one encodes to about 4 MB at quality 90), unlike a flat
// image that compresses to nothing.
func noisy(w, h int, seed uint64) *image.RGBA {
	const amp = 20
	r := rand.New(rand.NewPCG(seed, seed))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	n := func(base int) uint8 { return uint8(min(max(base+r.IntN(2*amp+1)-amp, 0), 255)) }
	for y := range h {
		row := m.Pix[y*m.Stride:]
		for x := range w {
			row[4*x] = n(x * 200 / w)
			row[4*x+1] = n(y * 200 / h)
			row[4*x+2] = n((x + y) * 150 / (w + h))
			row[4*x+3] = 0xff
		}
	}
	return m
}

// photo is one variant to push.
type photo struct {
	kind  Kind
	desc  ocispec.Descriptor
	parts [3][]byte // original head, comment, original tail
}

// Open streams the photo's bytes.
func (p photo) Open() io.Reader {
	return io.MultiReader(bytes.NewReader(p.parts[0]), bytes.NewReader(p.parts[1]), bytes.NewReader(p.parts[2]))
}

// photos returns n variants of kind k, numbered from first; their digests
// are computed here, before anything is timed.
func (a *album) photos(k Kind, first, n int) []photo {
	out := make([]photo, n)
	for i := range out {
		seq := first + i
		kind := k.kindOf(seq)
		orig := a.originals[kind]
		note := fmt.Sprintf("regscribe bench photo %07d", seq)
		var p photo
		switch kind {
		case PNG:
			// After the signature (8 bytes) and IHDR (25 bytes).
			p = photo{kind: kind, parts: [3][]byte{orig[:33], pngText("Comment", note), orig[33:]}}
		default:
			// After SOI.
			p = photo{kind: kind, parts: [3][]byte{orig[:2], jpegComment(note), orig[2:]}}
		}
		d := digest.SHA256.Digester()
		_, _ = io.Copy(d.Hash(), p.Open())
		p.desc = ocispec.Descriptor{
			MediaType: mediaType(kind),
			Digest:    d.Digest(),
			Size:      int64(len(p.parts[0]) + len(p.parts[1]) + len(p.parts[2])),
			Annotations: map[string]string{
				ocispec.AnnotationTitle: fmt.Sprintf("photo-%07d.%s", seq, extension(kind)),
			},
		}
		out[i] = p
	}
	return out
}

func mediaType(k Kind) string {
	if k == PNG {
		return "image/png"
	}
	return "image/jpeg"
}

func extension(k Kind) string {
	if k == PNG {
		return "png"
	}
	return "jpg"
}

// jpegComment is a COM segment holding text.
func jpegComment(text string) []byte {
	b := []byte{0xff, 0xfe, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(2+len(text)))
	return append(b, text...)
}

// pngText is a tEXt chunk holding keyword and text.
func pngText(keyword, text string) []byte {
	data := append([]byte(keyword+"\x00"), text...)
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, "tEXt"...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[4:]))
}
