// Package heifwasm decodes the primary image of a HEIF (HEIC) file with
// libheif 1.18.2 and libde265 1.0.15 compiled to WebAssembly, run by wazero
// (pure Go, no cgo, no system library).
//
// heif.wasm.gz and heif.c.txt (its C source) are those of github.com/gen2brain/heic v0.4.5 (MIT;
// libheif and libde265 are LGPL-3.0, see the LICENSE files here). The Go
// side is written anew because that package's reads the planes with the
// wrong strides (libheif gives a row at least 64 bytes: images narrower than
// that come out garbled, or the module traps), and
// to bound the module's memory.
package heifwasm

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"image"
	"io"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

//go:embed heif.wasm.gz
var wasmGz []byte

// MaxMemory bounds the linear memory of one decode: the input, libde265's
// frames and the output. A file that needs more (a grid or a stream larger
// than its header says) fails to decode instead of growing the process.
const MaxMemory = 1 << 30

// rowStride returns the stride libheif gives a plane row of n bytes: n
// rounded up to 16, and at least 64 (measured on this build: see the tests).
func rowStride(n int) int {
	return max((n+15)&^15, 64)
}

var (
	once     sync.Once
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	initErr  error
)

// setup compiles the module once per process.
func setup() {
	ctx := context.Background()
	rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithMemoryLimitPages(MaxMemory>>16))
	zr, err := gzip.NewReader(bytes.NewReader(wasmGz))
	if err != nil {
		initErr = err
		return
	}
	code, err := io.ReadAll(zr)
	if err != nil {
		initErr = err
		return
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		initErr = err
		return
	}
	compiled, initErr = rt.CompileModule(ctx, code)
}

// ErrDecode is a file libheif cannot read or decode.
var ErrDecode = errors.New("libheif cannot decode the file")

// Decode decodes the primary image of the HEIF file data, with its irot and
// imir (and clap) applied, as an *image.YCbCr (8-bit, 4:2:0, 4:2:2 or
// 4:4:4), *image.Gray or *image.RGBA/*image.NRGBA.
func Decode(data []byte) (image.Image, error) {
	once.Do(setup)
	if initErr != nil {
		return nil, fmt.Errorf("heif decoder: %w", initErr)
	}
	ctx := context.Background()
	mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		return nil, err
	}
	defer mod.Close(ctx)
	malloc, free, decode := mod.ExportedFunction("malloc"), mod.ExportedFunction("free"), mod.ExportedFunction("decode")
	if malloc == nil || free == nil || decode == nil {
		return nil, errors.New("heif decoder: missing exports")
	}
	mem := mod.Memory()
	alloc := func(n int) (uint32, error) {
		if n <= 0 || n > MaxMemory {
			return 0, fmt.Errorf("allocation of %d bytes", n)
		}
		r, err := malloc.Call(ctx, uint64(n))
		if err != nil {
			return 0, err
		}
		if r[0] == 0 {
			return 0, fmt.Errorf("out of memory allocating %d bytes", n)
		}
		return uint32(r[0]), nil
	}
	in, err := alloc(len(data))
	if err != nil {
		return nil, err
	}
	if !mem.Write(in, data) {
		return nil, errors.New("heif decoder: write input")
	}
	fields, err := alloc(4 * 5)
	if err != nil {
		return nil, err
	}
	call := func(configOnly uint64, out uint32) ([5]uint32, error) {
		var f [5]uint32
		r, err := decode.Call(ctx, uint64(in), uint64(len(data)), configOnly,
			uint64(fields), uint64(fields+4), uint64(fields+8), uint64(fields+12), uint64(fields+16), uint64(out))
		if err != nil {
			return f, err
		}
		if r[0] == 0 {
			return f, ErrDecode
		}
		for i := range f {
			v, ok := mem.ReadUint32Le(fields + uint32(4*i))
			if !ok {
				return f, errors.New("heif decoder: read result")
			}
			f[i] = v
		}
		return f, nil
	}
	f, err := call(1, 0)
	if err != nil {
		return nil, err
	}
	w, h, colorspace, chroma, premul := int(f[0]), int(f[1]), f[2], f[3], f[4]
	if w <= 0 || h <= 0 || w > 1<<16 || h > 1<<16 {
		return nil, fmt.Errorf("heif decoder: size %dx%d", w, h)
	}
	rect := image.Rect(0, 0, w, h)
	var size, ys, cs, ch int
	var ratio image.YCbCrSubsampleRatio
	switch colorspace {
	case 0: // YCbCr
		cw := w
		ch = h
		switch chroma {
		case 1:
			ratio, cw, ch = image.YCbCrSubsampleRatio420, (w+1)/2, (h+1)/2
		case 2:
			ratio, cw = image.YCbCrSubsampleRatio422, (w+1)/2
		case 3:
			ratio = image.YCbCrSubsampleRatio444
		default:
			return nil, fmt.Errorf("heif decoder: chroma %d", chroma)
		}
		ys, cs = rowStride(w), rowStride(cw)
		size = ys*h + 2*cs*ch
	case 2: // monochrome
		ys = rowStride(w)
		size = ys * h
	case 1: // RGB, interleaved RGBA
		ys = rowStride(4 * w)
		size = ys * h
	default:
		return nil, fmt.Errorf("heif decoder: colorspace %d", colorspace)
	}
	out, err := alloc(size)
	if err != nil {
		return nil, err
	}
	if f2, err := call(0, out); err != nil {
		return nil, err
	} else if int(f2[0]) != w || int(f2[1]) != h {
		return nil, fmt.Errorf("heif decoder: size changed to %dx%d", f2[0], f2[1])
	}
	view, ok := mem.Read(out, uint32(size))
	if !ok {
		return nil, errors.New("heif decoder: read output")
	}
	pix := bytes.Clone(view) // the module's memory goes when it is closed
	switch colorspace {
	case 0:
		i0, i1 := ys*h, ys*h+cs*ch
		return &image.YCbCr{Y: pix[:i0:i0], Cb: pix[i0:i1:i1], Cr: pix[i1:], YStride: ys, CStride: cs,
			SubsampleRatio: ratio, Rect: rect}, nil
	case 2:
		return &image.Gray{Pix: pix, Stride: ys, Rect: rect}, nil
	}
	if premul == 1 {
		return &image.RGBA{Pix: pix, Stride: ys, Rect: rect}, nil
	}
	return &image.NRGBA{Pix: pix, Stride: ys, Rect: rect}, nil
}
