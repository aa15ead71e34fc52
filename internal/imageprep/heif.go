package imageprep

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"

	"github.com/regscribe/regscribe/internal/imageprep/internal/wasmdec"
)

// HEIF (HEIC) and AVIF are ISO base media files: boxes of a 32-bit size and a
// four-letter type, some nested. The pixels are decoded by libheif/libde265
// and libavif/dav1d compiled to WebAssembly and run by wazero (package
// wasmdec); what Prepare needs before deciding to decode — the size, the
// bit depth, the rotation and mirroring of the primary image and its EXIF
// orientation — is read here from the boxes, so that a bomb is refused
// before the decoder is started and no WebAssembly module is even compiled
// for a file that is refused.
//
// Like the EXIF reader, this reader never panics and bounds every loop: a
// box that runs past its parent or the data ends the walk.

// heifInfo is what the boxes of a HEIF or AVIF file say of its primary image.
type heifInfo struct {
	// width, height are the stored size (ispe), before rotation.
	width, height int
	// depth is the largest bits per channel (pixi), 8 when absent.
	depth int
	// orient is the EXIF orientation code (1-8) equivalent to the primary
	// item's irot and imir properties, applied in order; 1 when it has none.
	orient int
	// transformed is whether the primary item has irot or imir at all.
	transformed bool
	// exifOrient is the orientation in the file's Exif item, 1 if none.
	exifOrient int
}

// errNoISPE is a HEIF file whose primary image has no size (ispe).
var errNoISPE = errors.New("primary image has no size (ispe)")

// box is one ISO box: its type and its payload (after size and type).
type box struct {
	typ  string
	body []byte
}

// boxes splits data into its boxes, at most limit of them. A box that runs
// past data ends the list.
func boxes(data []byte, limit int) []box {
	var out []box
	for len(data) >= 8 && len(out) < limit {
		size := uint64(binary.BigEndian.Uint32(data))
		typ := string(data[4:8])
		hdr := uint64(8)
		switch size {
		case 0: // to the end
			size = uint64(len(data))
		case 1: // 64-bit size follows
			if len(data) < 16 {
				return out
			}
			size, hdr = binary.BigEndian.Uint64(data[8:]), 16
		}
		if size < hdr || size > uint64(len(data)) {
			return out
		}
		out = append(out, box{typ, data[hdr:size]})
		data = data[size:]
	}
	return out
}

// find returns the first box of type typ in bs.
func find(bs []box, typ string) (box, bool) {
	for _, b := range bs {
		if b.typ == typ {
			return b, true
		}
	}
	return box{}, false
}

// reader reads big-endian fields, remembering a short read instead of
// failing on each.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) n(size int) uint64 {
	if size == 0 {
		return 0
	}
	if size < 0 || size > 8 || len(r.b) < size {
		r.bad = true
		r.b = nil
		return 0
	}
	var v uint64
	for _, c := range r.b[:size] {
		v = v<<8 | uint64(c)
	}
	r.b = r.b[size:]
	return v
}

// maxHEIFItems bounds the items and properties read from a file.
const maxHEIFItems = 4096

// parseHEIF reads the primary image's facts from a HEIF or AVIF file.
func parseHEIF(data []byte) (heifInfo, error) {
	info := heifInfo{depth: 8, orient: 1, exifOrient: 1}
	meta, ok := find(boxes(data, 64), "meta")
	if !ok || len(meta.body) < 4 {
		return info, errors.New("no meta box")
	}
	children := boxes(meta.body[4:], 64) // meta is a full box
	pitm, ok := find(children, "pitm")
	if !ok || len(pitm.body) < 6 {
		return info, errors.New("no primary item (pitm)")
	}
	pr := reader{b: pitm.body}
	idSize := 2
	if pr.n(1) != 0 {
		idSize = 4
	}
	pr.n(3)
	primary := pr.n(idSize)

	// Properties: ipco lists them (1-based), ipma associates them to items.
	iprp, _ := find(children, "iprp")
	ip := boxes(iprp.body, 64)
	ipco, _ := find(ip, "ipco")
	props := boxes(ipco.body, maxHEIFItems)
	var ispe, foundISPE = [2]int{}, false
	m := identity
	for _, ipma := range ip {
		if ipma.typ != "ipma" {
			continue
		}
		for _, idx := range associations(ipma.body, primary) {
			if idx < 1 || idx > len(props) {
				continue
			}
			p := props[idx-1]
			switch p.typ {
			case "ispe":
				r := reader{b: p.body}
				r.n(4)
				w, h := r.n(4), r.n(4)
				if !r.bad && w <= 1<<30 && h <= 1<<30 {
					ispe, foundISPE = [2]int{int(w), int(h)}, true
				}
			case "pixi":
				r := reader{b: p.body}
				r.n(4)
				for range min(r.n(1), 16) {
					if d := int(r.n(1)); d > info.depth {
						info.depth = d
					}
				}
			case "irot":
				if len(p.body) >= 1 {
					// Anticlockwise by 90° times the angle: clockwise by
					// (4 - angle) quarter turns.
					for range (4 - int(p.body[0]&3)) % 4 {
						m = mul(orientations[6], m)
					}
					info.transformed = true
				}
			case "imir":
				if len(p.body) >= 1 {
					if p.body[0]&1 == 0 {
						m = mul(orientations[4], m) // top and bottom exchanged
					} else {
						m = mul(orientations[2], m) // left and right exchanged
					}
					info.transformed = true
				}
			}
		}
	}
	if !foundISPE {
		return info, errNoISPE
	}
	info.width, info.height = ispe[0], ispe[1]
	info.orient = orientationOf(m)
	info.exifOrient = heifExif(data, children)
	return info, nil
}

// associations returns the property indexes (1-based) that the ipma box
// body associates with item, in order.
func associations(body []byte, item uint64) []int {
	r := reader{b: body}
	version := r.n(1)
	flags := r.n(3)
	count := r.n(4)
	for i := uint64(0); i < count && i < maxHEIFItems && !r.bad; i++ {
		var id uint64
		if version < 1 {
			id = r.n(2)
		} else {
			id = r.n(4)
		}
		n := int(r.n(1))
		idx := make([]int, 0, n)
		for range n {
			if flags&1 != 0 {
				idx = append(idx, int(r.n(2)&0x7fff))
			} else {
				idx = append(idx, int(r.n(1)&0x7f))
			}
		}
		if r.bad {
			return nil
		}
		if id == item {
			return idx
		}
	}
	return nil
}

// maxExifItem bounds the bytes read of an Exif item.
const maxExifItem = 1 << 20

// heifExif returns the orientation in the first Exif item of the file whose
// data lies in the file itself (iloc construction method 0), or 1.
func heifExif(data []byte, meta []box) int {
	iinf, _ := find(meta, "iinf")
	r := reader{b: iinf.body}
	version := r.n(1)
	r.n(3)
	if version == 0 {
		r.n(2)
	} else {
		r.n(4)
	}
	var exifID uint64
	found := false
	for _, infe := range boxes(r.b, maxHEIFItems) {
		ir := reader{b: infe.body}
		v := ir.n(1)
		ir.n(3)
		if infe.typ != "infe" || v < 2 {
			continue
		}
		var id uint64
		if v == 2 {
			id = ir.n(2)
		} else {
			id = ir.n(4)
		}
		ir.n(2)                                           // protection index
		if typ := ir.n(4); !ir.bad && typ == 0x45786966 { // "Exif"
			exifID, found = id, true
			break
		}
	}
	if !found {
		return 1
	}
	payload := ilocData(data, meta, exifID)
	// The item starts with the offset of the TIFF header after 4 bytes.
	if len(payload) < 4 {
		return 1
	}
	off := uint64(binary.BigEndian.Uint32(payload)) + 4
	if off >= uint64(len(payload)) {
		return 1
	}
	return exifOrientation(payload[off:])
}

// ilocData returns the bytes of item id located by the iloc box in the
// file itself, at most maxExifItem of them, or nil.
func ilocData(data []byte, meta []box, id uint64) []byte {
	iloc, _ := find(meta, "iloc")
	r := reader{b: iloc.body}
	version := r.n(1)
	r.n(3)
	sizes := r.n(2)
	offSize, lenSize, baseSize := int(sizes>>12), int(sizes>>8&15), int(sizes>>4&15)
	idxSize := 0
	if version == 1 || version == 2 {
		idxSize = int(sizes & 15)
	}
	var count uint64
	if version < 2 {
		count = r.n(2)
	} else {
		count = r.n(4)
	}
	for i := uint64(0); i < count && i < maxHEIFItems && !r.bad; i++ {
		var item uint64
		if version < 2 {
			item = r.n(2)
		} else {
			item = r.n(4)
		}
		method := uint64(0)
		if version == 1 || version == 2 {
			method = r.n(2) & 15
		}
		r.n(2) // data reference index
		base := r.n(baseSize)
		extents := r.n(2)
		var out []byte
		for e := uint64(0); e < extents && e < 64 && !r.bad; e++ {
			r.n(idxSize)
			off, n := base+r.n(offSize), r.n(lenSize)
			if item != id || method != 0 {
				continue
			}
			if off > uint64(len(data)) || n > uint64(len(data))-off || uint64(len(out))+n > maxExifItem {
				return nil
			}
			out = append(out, data[off:off+n]...)
		}
		if item == id && !r.bad {
			return out
		}
	}
	return nil
}

// matrix is an orientation as a 2×2 integer matrix acting on (x, y), y down.
type matrix [4]int

var identity = matrix{1, 0, 0, 1}

// orientations maps each EXIF orientation to the matrix that turns the
// stored image into the displayed one.
var orientations = [9]matrix{
	1: identity,
	2: {-1, 0, 0, 1},  // flip horizontally
	3: {-1, 0, 0, -1}, // rotate 180°
	4: {1, 0, 0, -1},  // flip vertically
	5: {0, 1, 1, 0},   // transpose
	6: {0, -1, 1, 0},  // rotate 90° clockwise
	7: {0, -1, -1, 0}, // transverse
	8: {0, 1, -1, 0},  // rotate 270° clockwise
}

// mul returns a·b (b applied first).
func mul(a, b matrix) matrix {
	return matrix{
		a[0]*b[0] + a[1]*b[2], a[0]*b[1] + a[1]*b[3],
		a[2]*b[0] + a[3]*b[2], a[2]*b[1] + a[3]*b[3],
	}
}

// orientationOf returns the EXIF orientation code of m.
func orientationOf(m matrix) int {
	for o := 1; o < len(orientations); o++ {
		if orientations[o] == m {
			return o
		}
	}
	return 1
}

// The decoders of HEIF and AVIF files. Their configs come from the boxes
// (parseHEIF); the WebAssembly decoders only decode pixels.
//
// libheif applies irot and imir itself, so a HEIC's config is its size as
// displayed and its orientation is only that of its EXIF, and only when it
// has neither irot nor imir (which, per HEIF, override EXIF: iPhones write
// both, meaning the same turn). libavif applies neither, so an AVIF's
// config is its stored size and its orientation that of irot and imir (or
// else EXIF).
var (
	formatHEIC = format{"HEIC", "heic", "image/heic", heicConfig, heicDecode, heicOrientation, nil}
	formatAVIF = format{"AVIF", "avif", "image/avif", avifConfig, avifDecode, avifOrientation, nil}
)

func heifConfig(r io.Reader, displayed bool) (image.Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return image.Config{}, err
	}
	info, err := parseHEIF(data)
	if err != nil {
		return image.Config{}, err
	}
	w, h := info.width, info.height
	if displayed && info.orient >= 5 {
		w, h = h, w
	}
	model := color.YCbCrModel
	if info.depth > 8 {
		model = color.RGBA64Model
	}
	return image.Config{ColorModel: model, Width: w, Height: h}, nil
}

func heicConfig(r io.Reader) (image.Config, error) { return heifConfig(r, true) }
func avifConfig(r io.Reader) (image.Config, error) { return heifConfig(r, false) }

// heicDecode decodes the primary image of a HEIC file with libheif in
// WebAssembly, within the memory it is charged, until ctx ends.
func heicDecode(ctx context.Context, data []byte, charge int64) (image.Image, error) {
	cfg, err := heicConfig(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return bounded(ctx, wasmdec.HEIC, data, cfg, charge)
}

// avifDecode decodes the first image of an AVIF file with libavif in
// WebAssembly, within the memory it is charged, until ctx ends.
func avifDecode(ctx context.Context, data []byte, charge int64) (image.Image, error) {
	cfg, err := avifConfig(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return bounded(ctx, wasmdec.AVIF, data, cfg, charge)
}

// wasmDecoder is a decoder of package wasmdec.
type wasmDecoder func(context.Context, []byte, wasmdec.Limits) (image.Image, error)

// bounded runs a WebAssembly decoder on data, whose header says cfg, with
// its memory limited to what the image is charged plus the decoder's own
// overhead, and its pixels to what the header declares: a file whose coded
// image is larger than its header says is refused with the limit, whatever
// it would have grown to.
func bounded(ctx context.Context, decode wasmDecoder, data []byte, cfg image.Config, charge int64) (image.Image, error) {
	overhead := wasmdec.Overhead(len(data))
	img, err := decode(ctx, data, wasmdec.Limits{
		Memory: uint64(max(charge, 0)) + overhead,
		Pixels: uint64(cfg.Width) * uint64(cfg.Height),
	})
	var le *wasmdec.LimitError
	if errors.As(err, &le) {
		return nil, fmt.Errorf("%w (%d MiB for the %dx%d its header declares, %d MiB for the decoder and the file)",
			err, charge>>20, cfg.Width, cfg.Height, overhead>>20)
	}
	return img, err
}

func heicOrientation(data []byte) int {
	info, err := parseHEIF(data)
	if err != nil || info.transformed {
		return 1
	}
	return info.exifOrient
}

func avifOrientation(data []byte) int {
	info, err := parseHEIF(data)
	switch {
	case err != nil:
		return 1
	case info.transformed:
		return info.orient
	}
	return info.exifOrient
}

// heifKinds lists the ftyp brands that name each format, by priority: a
// file that names AVIF anywhere is AVIF; the generic HEIF brands come last.
var heifKinds = []struct {
	f      *format
	brands []string
}{
	{&formatAVIF, []string{"avif", "avis"}},
	{&formatHEIC, []string{"heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs"}},
	{&formatHEIC, []string{"mif1", "msf1"}},
}
