package wasmdec

import (
	"encoding/binary"
	"image"
)

// AVIF decodes the first image of an AVIF file with libavif and libaom, in
// a module instance whose memory may grow to at most limit bytes. libavif
// applies none of irot, imir and clap. The image is an *image.RGBA, or an
// *image.RGBA64 above 8 bits per channel, with premultiplied alpha, in Go
// memory.
func AVIF(data []byte, limit uint64) (image.Image, error) {
	// decode(in, size, config_only, decode_all, *width, *height, *depth,
	// *count, delay, out): 1 on success.
	in, src, res, err := start(avifModule, limit, data, 4)
	if err != nil {
		return nil, err
	}
	defer in.close()
	args := func(configOnly, delay, out uint32) []uint64 {
		return []uint64{uint64(src), uint64(len(data)), uint64(configOnly), 0,
			uint64(res), uint64(res + 4), uint64(res + 8), uint64(res + 12), uint64(delay), uint64(out)}
	}
	if ok, err := in.call("decode", args(1, 0, 0)...); err != nil || ok == 0 {
		return nil, in.failed(orDecode(err))
	}
	v, err := in.u32s(res, 3)
	if err != nil {
		return nil, err
	}
	width, height, depth := uint64(v[0]), uint64(v[1]), v[2]
	bpp := uint64(4)
	if depth > 8 {
		bpp = 8
	}
	size := width * height * bpp
	out, err := in.malloc(size)
	if err != nil {
		return nil, err
	}
	delay, err := in.malloc(8) // the frame's duration, unused
	if err != nil {
		return nil, err
	}
	if ok, err := in.call("decode", args(0, delay, out)...); err != nil || ok == 0 {
		return nil, in.failed(orDecode(err))
	}
	view, err := in.view(out, size)
	if err != nil {
		return nil, err
	}
	rect := image.Rect(0, 0, int(width), int(height))
	if depth <= 8 {
		m := image.NewRGBA(rect)
		copy(m.Pix, view)
		return m, nil
	}
	// 16-bit samples in the module's (little-endian) order; Go's are
	// big-endian.
	m := image.NewRGBA64(rect)
	for i := 0; i+1 < len(view); i += 2 {
		binary.BigEndian.PutUint16(m.Pix[i:], binary.LittleEndian.Uint16(view[i:]))
	}
	return m, nil
}
