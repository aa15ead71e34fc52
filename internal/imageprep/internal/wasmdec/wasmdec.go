// Package wasmdec decodes HEIC and AVIF images with C decoders compiled to
// WebAssembly and run by wazero (pure Go: no cgo, no system library), each
// decode in a module instance of its own whose linear memory may not grow
// past a limit the caller sets.
//
// The WebAssembly modules and their C glue are those of
// github.com/gen2brain/heic v0.4.5 (libheif 1.18.2 and libde265 1.0.15) and
// github.com/gen2brain/avif v0.4.4 (libavif 1.1.1 with libaom 3.10.0 and
// libyuv), copied under lib/ with their licences and build files. Those
// packages create their wazero runtime themselves and give no way to bound
// a module's memory: a file whose coded stream is larger than its header
// declares could grow one decode's memory to the 4 GiB of 32-bit
// WebAssembly. Here every instance gets a memory allocator
// (experimental.WithMemoryAllocator) that refuses to grow past the limit:
// the decoder's allocation fails, the decode fails with a [*LimitError],
// and nothing beyond the limit was ever allocated. The modules are compiled
// once per process, on first use.
//
// The Go side differs from those packages' in what it hands back: the
// decoded pixels are copied out of the module's memory before anything in
// the module is freed (their HEIC decoder returns an image that still points
// into a freed buffer whose first bytes the allocator overwrites).
package wasmdec

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

var (
	//go:embed lib/heic/heif.wasm.gz
	heicWasm []byte
	//go:embed lib/avif/decode.wasm.gz
	avifWasm []byte
)

// BaseOverhead is the memory a decoder module takes whatever the image: its
// static data and stack, the decoders' tables and contexts, the allocator's
// slack. A decode may use [Overhead] besides the memory its caller allows
// for the image itself.
const BaseOverhead = 16 << 20

// Overhead returns the memory a decode of a file of fileSize bytes may take
// besides its image: [BaseOverhead], and the file twice (the copy handed to
// the module, and the coded stream the decoder copies out of it).
func Overhead(fileSize int) uint64 {
	return BaseOverhead + 2*uint64(fileSize)
}

// LimitError is a decode refused because the decoder asked for more memory
// than its limit: the image's coded stream is larger than its header said.
type LimitError struct {
	// Wanted is the size in bytes the decoder asked its memory to grow
	// to, or the size of the output it would have needed.
	Wanted uint64
	// Limit is the most the decoder's memory could grow to.
	Limit uint64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("the decoder's memory would grow to %d MiB, over its limit of %d MiB",
		(e.Wanted+(1<<20)-1)>>20, e.Limit>>20)
}

// ErrDecode is a file the decoder could not decode.
var ErrDecode = errors.New("the decoder could not decode the image")

// compiled is a module compiled once, in the process's one runtime.
type compiled struct {
	rt  wazero.Runtime
	mod wazero.CompiledModule
}

var (
	wasmRuntime = sync.OnceValues(func() (wazero.Runtime, error) {
		ctx := context.Background()
		rt := wazero.NewRuntime(ctx)
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
			return nil, fmt.Errorf("wasi: %w", err)
		}
		return rt, nil
	})
	heicModule = sync.OnceValues(func() (compiled, error) { return compile(heicWasm) })
	avifModule = sync.OnceValues(func() (compiled, error) { return compile(avifWasm) })
)

// compile compiles a gzipped WebAssembly module in the process's runtime.
func compile(gz []byte) (compiled, error) {
	rt, err := wasmRuntime()
	if err != nil {
		return compiled{}, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return compiled{}, fmt.Errorf("decompress module: %w", err)
	}
	bin, err := io.ReadAll(zr)
	if err != nil {
		return compiled{}, fmt.Errorf("decompress module: %w", err)
	}
	mod, err := rt.CompileModule(context.Background(), bin)
	if err != nil {
		return compiled{}, fmt.Errorf("compile module: %w", err)
	}
	return compiled{rt, mod}, nil
}

// instance is one module instance, for one decode, with its memory.
type instance struct {
	ctx context.Context
	mod api.Module
	mem *limitedMemory
}

// instantiate makes an instance of the module whose memory may grow to at
// most limit bytes. Close it.
func instantiate(module func() (compiled, error), limit uint64) (*instance, error) {
	c, err := module()
	if err != nil {
		return nil, err
	}
	mem := &limitedMemory{limit: limit}
	ctx := experimental.WithMemoryAllocator(context.Background(), mem)
	cfg := wazero.NewModuleConfig().WithName("").WithStdout(io.Discard).WithStderr(io.Discard)
	mod, err := c.rt.InstantiateModule(ctx, c.mod, cfg)
	if err != nil {
		mem.Free()
		return nil, fmt.Errorf("instantiate module: %w", err)
	}
	return &instance{ctx, mod, mem}, nil
}

// start makes an instance of the module for one decode (see instantiate),
// copies data into its memory at src and allocates words 32-bit words for
// the decode's results at res. Close the instance.
func start(module func() (compiled, error), limit uint64, data []byte, words int) (in *instance, src, res uint32, err error) {
	in, err = instantiate(module, limit)
	if err != nil {
		return nil, 0, 0, err
	}
	if src, err = in.write(data); err == nil {
		res, err = in.malloc(4 * uint64(words))
	}
	if err != nil {
		in.close()
		return nil, 0, 0, err
	}
	return in, src, res, nil
}

// close releases the instance and its memory.
func (in *instance) close() {
	_ = in.mod.Close(in.ctx)
	in.mem.Free() // again, in case closing did not
}

// failed returns the error for a call that failed with err: a
// [*LimitError] if the memory was refused growth, else err.
func (in *instance) failed(err error) error {
	if in.mem.refused > 0 {
		return &LimitError{Wanted: in.mem.refused, Limit: in.mem.limit}
	}
	return err
}

// call calls the exported function name, which returns an i32.
func (in *instance) call(name string, args ...uint64) (uint32, error) {
	f := in.mod.ExportedFunction(name)
	if f == nil {
		return 0, fmt.Errorf("module exports no %s", name)
	}
	res, err := f.Call(in.ctx, args...)
	if err != nil {
		return 0, in.failed(fmt.Errorf("%s: %w", name, err))
	}
	if len(res) != 1 {
		return 0, fmt.Errorf("%s returned %d values", name, len(res))
	}
	return uint32(res[0]), nil
}

// malloc allocates n bytes in the module's memory.
func (in *instance) malloc(n uint64) (uint32, error) {
	if n > in.mem.limit {
		return 0, &LimitError{Wanted: n, Limit: in.mem.limit}
	}
	p, err := in.call("malloc", n)
	if err == nil && p == 0 {
		err = in.failed(fmt.Errorf("malloc(%d) failed", n))
	}
	return p, err
}

// write copies data into a new allocation in the module's memory.
func (in *instance) write(data []byte) (uint32, error) {
	p, err := in.malloc(uint64(len(data)))
	if err != nil {
		return 0, err
	}
	if !in.mod.Memory().Write(p, data) {
		return 0, errors.New("write input: out of the module's memory")
	}
	return p, nil
}

// u32s reads n little-endian 32-bit words at p.
func (in *instance) u32s(p uint32, n int) ([]uint32, error) {
	out := make([]uint32, n)
	for i := range out {
		v, ok := in.mod.Memory().ReadUint32Le(p + uint32(4*i))
		if !ok {
			return nil, errors.New("read result: out of the module's memory")
		}
		out[i] = v
	}
	return out, nil
}

// view returns the n bytes at p in the module's memory, valid until the
// instance is closed or its memory grows.
func (in *instance) view(p uint32, n uint64) ([]byte, error) {
	if n > 1<<32 {
		return nil, errors.New("read output: out of the module's memory")
	}
	b, ok := in.mod.Memory().Read(p, uint32(n))
	if !ok {
		return nil, errors.New("read output: out of the module's memory")
	}
	return b, nil
}
