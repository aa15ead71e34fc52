// Package wasmdec decodes HEIC and AVIF images with C decoders compiled to
// WebAssembly and run by wazero (pure Go: no cgo, no system library), each
// decode in a module instance of its own whose linear memory may not grow
// past a limit the caller sets, and which ends when the caller's context
// ends or the decode outlasts its time budget.
//
// The modules under modules/ are generated: build/build.sh builds them from
// Debian's source packages of libheif and libde265 (heic.wasm) and of
// libavif and dav1d (avif.wasm), with the C glue under build/glue, which
// gives each module one entry point of this package's own ABI (see
// heic.go, avif.go). modules/README.md lists the versions, the sha256 of
// each module and the licences; TestModulesReproducible rebuilds them where
// the toolchain is installed. [UseModules] runs modules built by that script
// instead of the embedded ones, as the LGPL lets a user replace libheif and
// libde265 (regscribe's REGSCRIBE_HEIC_WASM and REGSCRIBE_AVIF_WASM).
//
// Every instance gets a memory allocator (experimental.WithMemoryAllocator)
// that refuses to grow past the limit: the decoder's allocation fails, the
// decode fails with a [*LimitError], and nothing beyond the limit was ever
// allocated. The decoders ask the host, as they go, whether to stop
// (stopRequested): a decode of a job that is cancelled, or that runs past
// [Budget] for its pixels, stops there. The modules are compiled once per
// process, on first use.
package wasmdec

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

var (
	//go:embed modules/heic.wasm.gz
	heicWasm []byte
	//go:embed modules/avif.wasm.gz
	avifWasm []byte
)

// replacements are the paths of modules to run instead of the embedded
// ones ("": the embedded one), set by UseModules.
var replacements struct {
	sync.Mutex
	heic, avif string
}

// UseModules makes the decodes run the modules in the files heic and avif
// (built by build/build.sh, gzipped or not) instead of the embedded ones;
// "" keeps the embedded one. It takes effect only before the first decode
// of each format, which compiles the module for the process.
func UseModules(heic, avif string) {
	replacements.Lock()
	defer replacements.Unlock()
	replacements.heic, replacements.avif = heic, avif
}

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

// Budget returns the time a decode of an image of pixels pixels may take:
// 5 s, and 2 µs a pixel (29 s for 12 MP). It is wall-clock time, the
// decode's CPU time included: about ten times what the decoders take on a
// core of their own, room for a machine busy with other work. A decode
// past it is stopped with a [*BudgetError]: a file built to make the
// decoder loop costs no more.
func Budget(pixels uint64) time.Duration {
	return 5*time.Second + time.Duration(min(pixels, 1<<40))*2*time.Microsecond
}

// budget is Budget, but in tests.
var budget = Budget

// Limits bounds one decode.
type Limits struct {
	// Memory is the most bytes the decoder's memory may grow to.
	Memory uint64
	// Pixels is the most pixels the image may have, as its header
	// declares them: a larger image is refused before it is decoded. It
	// also sets the decode's time, [Budget](Pixels).
	Pixels uint64
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

// BudgetError is a decode stopped because it ran past its time budget.
type BudgetError struct {
	// Budget is the time the decode had.
	Budget time.Duration
	// Pixels is the image's pixel count the budget was reckoned from.
	Pixels uint64
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("the decode ran past its budget of %s for %d pixels", e.Budget, e.Pixels)
}

// ErrDecode is a file the decoder could not decode.
var ErrDecode = errors.New("the decoder could not decode the image")

// ErrPixels is an image with more pixels than its decode's Limits.Pixels.
var ErrPixels = errors.New("the image has more pixels than allowed")

// compiled is a module compiled once, in the process's one runtime.
type compiled struct {
	rt  wazero.Runtime
	mod wazero.CompiledModule
}

var (
	wasmRuntime = sync.OnceValues(func() (wazero.Runtime, error) {
		ctx := context.Background()
		// Not WithCloseOnContextDone: it makes every loop of the module
		// call into the runtime, which took the decodes three times as
		// long; the decoders ask stop_requested instead (see stopRequested).
		rt := wazero.NewRuntime(ctx)
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
			return nil, fmt.Errorf("wasi: %w", err)
		}
		_, err := rt.NewHostModuleBuilder("host").NewFunctionBuilder().WithFunc(stopRequested).
			Export("stop_requested").Instantiate(ctx)
		if err != nil {
			return nil, fmt.Errorf("host module: %w", err)
		}
		return rt, nil
	})
	heicModule = sync.OnceValues(func() (compiled, error) { return compile(&replacements.heic, heicWasm) })
	avifModule = sync.OnceValues(func() (compiled, error) { return compile(&replacements.avif, avifWasm) })
)

// stopRequested is the modules' host.stop_requested: 1 when the decode's
// context has ended (its caller's, or its budget), else 0. libde265 asks it
// once a coding tree block (64×64 px at most), dav1d once a superblock row
// (64 or 128 rows of pixels); each traps when told to stop (the patches
// libde265-wasi-stop and dav1d-wasi-stop of build/). Neither decoder works
// long without asking; the rest of a decode (parsing the file, converting
// the pixels) takes time in proportion to the file and the image.
func stopRequested(ctx context.Context) uint32 {
	if ctx.Err() != nil {
		return 1
	}
	return 0
}

// compile compiles a module in the process's runtime: the one in the file
// *replacement names if any, else the embedded gzipped one.
func compile(replacement *string, embedded []byte) (compiled, error) {
	rt, err := wasmRuntime()
	if err != nil {
		return compiled{}, err
	}
	replacements.Lock()
	path := *replacement
	replacements.Unlock()
	bin := embedded
	if path != "" {
		if bin, err = os.ReadFile(path); err != nil {
			return compiled{}, fmt.Errorf("replacement module: %w", err)
		}
	}
	if bin, err = gunzip(bin); err != nil {
		return compiled{}, fmt.Errorf("decompress module: %w", err)
	}
	mod, err := rt.CompileModule(context.Background(), bin)
	if err != nil {
		return compiled{}, fmt.Errorf("compile module: %w", err)
	}
	return compiled{rt, mod}, nil
}

// gunzip returns b decompressed if it is gzipped, else b.
func gunzip(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		return b, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// instance is one module instance, for one decode, with its memory.
type instance struct {
	ctx    context.Context
	cancel context.CancelFunc
	// parent is the caller's context, whose end is not the budget's.
	parent context.Context
	mod    api.Module
	mem    *limitedMemory
	limits Limits
}

// instantiate makes an instance of the module for one decode under limits,
// whose calls end with ctx or the decode's budget. Close it.
func instantiate(ctx context.Context, module func() (compiled, error), limits Limits) (*instance, error) {
	c, err := module()
	if err != nil {
		return nil, err
	}
	callCtx, cancel := context.WithTimeout(ctx, budget(limits.Pixels))
	// A decode whose memory was refused growth fails with a LimitError
	// whatever it does next: it is stopped there.
	mem := &limitedMemory{limit: limits.Memory, refusedGrowth: cancel}
	in := &instance{ctx: callCtx, cancel: cancel, parent: ctx, mem: mem, limits: limits}
	cfg := wazero.NewModuleConfig().WithName("").WithStdout(io.Discard).WithStderr(io.Discard).
		WithStartFunctions("_initialize")
	mod, err := c.rt.InstantiateModule(experimental.WithMemoryAllocator(callCtx, mem), c.mod, cfg)
	if err != nil {
		cancel()
		mem.Free()
		return nil, in.failed(fmt.Errorf("instantiate module: %w", err))
	}
	in.mod = mod
	return in, nil
}

// close releases the instance and its memory.
func (in *instance) close() {
	_ = in.mod.Close(context.Background())
	in.cancel()
	in.mem.Free() // again, in case closing did not
}

// failed returns the error for a call that failed with err: the caller's
// context's error if it ended, a [*LimitError] if the memory was refused
// growth, a [*BudgetError] if the budget ended, else err.
func (in *instance) failed(err error) error {
	switch {
	case in.parent.Err() != nil:
		return fmt.Errorf("decode stopped: %w", context.Cause(in.parent))
	case in.mem.refused > 0:
		return &LimitError{Wanted: in.mem.refused, Limit: in.mem.limit}
	case in.ctx.Err() != nil:
		return &BudgetError{Budget: budget(in.limits.Pixels), Pixels: in.limits.Pixels}
	}
	return err
}

// call calls the exported function name, which returns an i32.
func (in *instance) call(name string, args ...uint64) (int32, error) {
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
	return int32(uint32(res[0])), nil
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
	return uint32(p), err
}

// decode copies data into the module's memory and calls the module's entry
// point fn(data, size, max_pixels, out), with out words 32-bit words for its
// result, which it returns. fn returns 0 or a negative error code, which
// errs maps to an error.
func (in *instance) decode(fn string, data []byte, words int, errs func(int32) error) ([]uint32, error) {
	src, err := in.malloc(uint64(len(data)))
	if err != nil {
		return nil, err
	}
	if !in.mod.Memory().Write(src, data) {
		return nil, errors.New("write input: out of the module's memory")
	}
	res, err := in.malloc(4 * uint64(words))
	if err != nil {
		return nil, err
	}
	rc, err := in.call(fn, uint64(src), uint64(len(data)), uint64(min(in.limits.Pixels, 1<<32-1)), uint64(res))
	if err != nil {
		return nil, err
	}
	if rc != 0 {
		return nil, in.failed(errs(rc))
	}
	out := make([]uint32, words)
	for i := range out {
		v, ok := in.mod.Memory().ReadUint32Le(res + uint32(4*i))
		if !ok {
			return nil, errors.New("read result: out of the module's memory")
		}
		out[i] = v
	}
	return out, nil
}

// plane copies rows rows of n bytes, stride bytes apart from p in the
// module's memory, into dst, dstStride bytes apart.
func (in *instance) plane(dst []byte, dstStride int, p, stride uint32, n, rows int) error {
	if rows == 0 {
		return nil
	}
	if uint64(stride) < uint64(n) {
		return fmt.Errorf("plane stride %d under its width %d", stride, n)
	}
	size := uint64(stride)*uint64(rows-1) + uint64(n)
	if size > 1<<32 {
		return errors.New("read output: out of the module's memory")
	}
	src, ok := in.mod.Memory().Read(p, uint32(size))
	if !ok {
		return errors.New("read output: out of the module's memory")
	}
	for y := range rows {
		copy(dst[y*dstStride:y*dstStride+n], src[y*int(stride):])
	}
	return nil
}
