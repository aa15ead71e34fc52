#!/bin/sh
# Builds the HEIC and AVIF decoder modules of package wasmdec from Debian's
# source packages, with Debian's clang, lld, wasi-libc and wasm32 libc++:
#
#   heic.wasm  libheif (with only its libde265 decoder) + libde265 + glue/heic.c
#   avif.wasm  libavif (with only its dav1d decoder) + dav1d + glue/avif.c
#
# and writes them gzipped to ../modules/, where the Go code embeds them.
#
#   build.sh [OUTDIR]   (default: ../modules next to this script)
#   build.sh toolchain  prints the installed toolchain's versions
#
# The work tree is $WASMDEC_WORK (default: a new temporary directory,
# removed at the end; keep one to edit the sources and build again). apt-get
# runs with a sources list (deb-src of bookworm, bookworm-backports,
# bookworm-security and sid) and state of its own in the work tree: the
# machine's are left alone. Needs: apt-get, dpkg-dev, patch, clang, lld,
# wasi-libc, libc++-dev-wasm32, libclang-rt-dev-wasm32, cmake, meson,
# ninja-build, pkg-config, gzip (Debian bookworm's; about 4 minutes on two
# idle cores, JOBS=2 parallel compiles). TOOLCHAIN (below) lists the package
# versions the committed modules were built with: another version of the
# compiler builds working modules, but not byte for byte the same ones.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

# The source packages, pinned: package=version, then the sha256 of each
# tarball of the source package (upstream's, Debian's), as the archive's
# signed Sources index lists them. bookworm's libavif 0.11.1 cannot be
# fetched (its upstream tarball is missing from the archive), so libavif
# comes from sid; libheif comes from bookworm-backports (bookworm's 1.15.1
# turns every image into RGB before handing it back), whose .dsc is missing
# from the archive, hence the tarballs are checked here, not by dpkg-source.
SOURCES="
libheif=1.19.7-1~bpo12+1 161c042d2102665fcee3ded851c78a0eb5f2d4bfe39fba48ba6e588fd6e964f3 f64d633d5ee4bce915c259f264a7280b40bf9e121f8b6277b143fad661693101
libde265=1.0.11-1+deb12u2 2f8f12cabbdb15e53532b7c1eb964d4e15d444db1be802505e6ac97a25035bab 81de2919da09690f2fb80383fcc68cda397bfed878a010061627f7794e278f4b
dav1d=1.0.0-2+deb12u1 51737db7e4897e599684f873a4725176dd3c779e639411d7c4fce134bb5ebb82 ae53e2bda2a18275cc66570194fced9b9681df2b3b8e041586a26a59d69a727e
libavif=1.4.2-1 2b645287340ba5a631d268b551dc2d72bd73ac33335962dd36dcdb6d8366921d 4df6f7e7007c2d030721fca22e6ce26fe5faec3af40e22e78900cb2663ef7e01
"
# The toolchain the committed modules were built with (dpkg names and
# versions; `toolchain` prints the installed ones).
TOOLCHAIN="clang-14=1:14.0.6-12 lld-14=1:14.0.6-12 wasi-libc=0.0~git20220510.9886d3d-2 libc++-14-dev-wasm32=1:14.0.6-12 libc++abi-14-dev-wasm32=1:14.0.6-12 libclang-rt-14-dev-wasm32=1:14.0.6-12 cmake=3.25.1-1 meson=1.0.1-5"

toolchain() {
	for p in clang-14 lld-14 wasi-libc libc++-14-dev-wasm32 libc++abi-14-dev-wasm32 libclang-rt-14-dev-wasm32 cmake meson; do
		printf '%s=%s ' "$p" "$(dpkg-query -W -f '${Version}' "$p" 2>/dev/null || echo none)"
	done | sed 's/ $//'
}
if [ "${1:-}" = toolchain ]; then
	toolchain
	echo
	exit 0
fi
out=${1:-$here/../modules}
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ "$(toolchain)" != "$TOOLCHAIN" ]; then
	echo "build.sh: toolchain differs from the one pinned; the modules will differ:" >&2
	echo "  pinned:    $TOOLCHAIN" >&2
	echo "  installed: $(toolchain)" >&2
fi

if [ -n "${WASMDEC_WORK:-}" ]; then
	work=$WASMDEC_WORK
	mkdir -p "$work"
else
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi
work=$(cd "$work" && pwd)
jobs=${JOBS:-2}

# --- sources ---------------------------------------------------------------
apt="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$work/apt/sources
 -o Dir::State::Lists=$work/apt/lists -o Dir::Cache=$work/apt/cache
 -o Dir::State::Status=/var/lib/dpkg/status -o Debug::NoLocking=1"
mkdir -p "$work/apt/sources" "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
src() { # base suites...
	base=$1
	shift
	printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
		"$base" "$*" /usr/share/keyrings/debian-archive-keyring.gpg
}
src http://deb.debian.org/debian bookworm bookworm-backports sid >"$work/apt/sources/debian.sources"
src http://deb.debian.org/debian-security bookworm-security >"$work/apt/sources/security.sources"
# fetched PACKAGE VERSION SHA256...: whether the tarballs are in src/ and
# match.
fetched() {
	name=$1 version=$2
	shift 2
	upstream=${version%-*}
	set -- "$1  ${name}_${upstream#*:}.orig.tar.*" "$2  ${name}_${version#*:}.debian.tar.*"
	for line; do
		f=$(cd "$work/src" && ls ${line#*  } 2>/dev/null | grep -v '\.asc$' | head -1)
		[ -n "$f" ] && (cd "$work/src" && echo "${line%%  *}  $f" | sha256sum -c --status) || return 1
	done
}
echo "$SOURCES" | while read -r pkg orig deb; do
	[ -n "$pkg" ] || continue
	name=${pkg%%=*} version=${pkg#*=}
	if ! fetched "$name" "$version" "$orig" "$deb"; then
		[ -f "$work/apt/updated" ] || { apt-get $apt -q update >&2 && touch "$work/apt/updated"; }
		# apt checks each file against the signed index; a missing .dsc
		# fails the command but not the tarballs, which are checked next.
		(cd "$work/src" && apt-get $apt -q source --download-only "$pkg" >&2) || true
		fetched "$name" "$version" "$orig" "$deb" || {
			echo "build.sh: cannot fetch the source of $pkg" >&2
			exit 3
		}
	fi
	dir=$work/src/$name
	if [ ! -f "$dir/.unpacked" ]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		upstream=${version%-*}
		tar -xf "$work/src/$(cd "$work/src" && ls "${name}_${upstream}".orig.tar.* | grep -v '\.asc$')" -C "$dir" --strip-components=1
		tar -xf "$work/src/$(cd "$work/src" && ls "${name}_${version}".debian.tar.*)" -C "$dir"
		# Debian's patches (security fixes among them), then ours.
		if [ -f "$dir/debian/patches/series" ]; then
			grep -v '^[[:space:]]*\(#\|$\)' "$dir/debian/patches/series" | while read -r p _; do
				patch -d "$dir" -p1 -s <"$dir/debian/patches/$p" >&2
			done
		fi
		for p in "$here"/patches/"$name"-*.patch; do
			[ -f "$p" ] && patch -d "$dir" -p1 -s <"$p" >&2
		done
		touch "$dir/.unpacked"
	fi
done

# Newest changelog date of the sources: the build's timestamp.
SOURCE_DATE_EPOCH=$(for d in "$work"/src/*/debian/changelog; do dpkg-parsechangelog -l "$d" -S Timestamp; done | sort -n | tail -1)
export SOURCE_DATE_EPOCH
export LC_ALL=C TZ=UTC

# --- toolchain -------------------------------------------------------------
prefix=$work/prefix
mkdir -p "$prefix" "$work/bin"
# Flags for every object: the WebAssembly features wazero compiles (SIMD,
# bulk memory, sign extension, non-trapping float-to-int), no debug info,
# no build paths.
FLAGS="--target=wasm32-wasi -O3 -DNDEBUG -msimd128 -mbulk-memory -msign-ext -mnontrapping-fptoint -mmutable-globals
 -ffile-prefix-map=$work=. -g0 -isystem $here/glue/include"
# <signal.h> is included (for nothing) by libde265: its emulation needs
# only this define, as long as nothing calls it.
FLAGS="$FLAGS -D_WASI_EMULATED_SIGNAL"
# clang 14 fails on wasi-libc's thread-local errno in some of libheif's
# files unless told the one TLS model wasm32 has.
FLAGS="$FLAGS -ftls-model=local-exec"
# clang and clang++ as the build systems call them: without -pthread
# (wasi-libc here has no threads; glue/pthread.c stands in), without -fPIC
# (set by libde265, libheif and libavif; position-independent code would
# be slower, and the module is linked statically) and with FLAGS.
for cc in clang clang++; do
	cat >"$work/bin/wasi-$cc" <<CC
#!/bin/sh
for a; do shift; case "\$a" in -pthread|-fPIC|-fpic) ;; *) set -- "\$@" "\$a" ;; esac; done
exec $cc $(echo $FLAGS) "\$@"
CC
	chmod +x "$work/bin/wasi-$cc"
done
cat >"$work/toolchain.cmake" <<TC
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
set(CMAKE_C_COMPILER $work/bin/wasi-clang)
set(CMAKE_CXX_COMPILER $work/bin/wasi-clang++)
set(CMAKE_AR /usr/bin/llvm-ar-14)
set(CMAKE_RANLIB /usr/bin/llvm-ranlib-14)
set(CMAKE_C_FLAGS_RELEASE "")
set(CMAKE_CXX_FLAGS_RELEASE "")
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH $prefix)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
TC
cat >"$work/meson-cross.txt" <<MC
[binaries]
c = '$work/bin/wasi-clang'
cpp = '$work/bin/wasi-clang++'
ar = '/usr/bin/llvm-ar-14'
strip = '/usr/bin/llvm-strip-14'
pkg-config = '/usr/bin/pkg-config'

[host_machine]
system = 'wasi'
cpu_family = 'wasm32'
cpu = 'wasm32'
endian = 'little'
MC
export PKG_CONFIG_LIBDIR="$prefix/lib/pkgconfig"
export PKG_CONFIG_PATH=
cmake_lib() { # source dir, build dir, options...
	src=$1 bld=$2
	shift 2
	cmake -S "$src" -B "$bld" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$work/toolchain.cmake" \
		-DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" -DBUILD_SHARED_LIBS=OFF "$@" >&2
	ninja -C "$bld" -j "$jobs" install >&2
}
# -O0 at link time: clang would otherwise run binaryen's wasm-opt on the
# module whenever one is on PATH, making the output depend on it. Link-time
# optimisation (-flto, at -O3) of libde265, whose objects are bitcode: the
# HEIC decode takes 8% less time.
LINK="-O0 -flto -Wl,--lto-O3 -mexec-model=reactor -Wl,--strip-all -Wl,-z,stack-size=1048576 -Wl,--export=malloc -Wl,--export=free"

# --- HEIC: libde265, libheif -------------------------------------------------
cmake_lib "$work/src/libde265" "$work/build/libde265" \
	-DDISABLE_SSE=ON -DENABLE_SDL=OFF -DENABLE_DECODER=OFF -DENABLE_ENCODER=OFF -DCMAKE_CXX_FLAGS="-fno-exceptions -flto"
# libheif with only its libde265 decoder, built in: no plugin loading, no
# encoder, no libsharpyuv; patches/ make it build without exceptions and
# threads.
cmake_lib "$work/src/libheif" "$work/build/libheif" \
	-DWITH_LIBDE265=ON -DWITH_LIBDE265_PLUGIN=OFF -DWITH_X265=OFF -DWITH_OpenH264_DECODER=OFF \
	-DWITH_AOM_DECODER=OFF -DWITH_AOM_ENCODER=OFF -DWITH_DAV1D=OFF -DWITH_SvtEnc=OFF -DWITH_RAV1E=OFF \
	-DWITH_OpenJPEG_ENCODER=OFF -DWITH_OpenJPEG_DECODER=OFF -DWITH_OPENJPH_ENCODER=OFF -DWITH_LIBSHARPYUV=OFF \
	-DWITH_EXAMPLES=OFF -DWITH_GDK_PIXBUF=OFF -DWITH_FUZZERS=OFF -DENABLE_PLUGIN_LOADING=OFF \
	-DENABLE_MULTITHREADING_SUPPORT=OFF -DENABLE_PARALLEL_TILE_DECODING=OFF -DWITH_HEADER_COMPRESSION=OFF \
	-DBUILD_TESTING=OFF \
	-DLIBDE265_INCLUDE_DIR="$prefix/include" -DLIBDE265_LIBRARY="$prefix/lib/libde265.a" \
	-DCMAKE_CXX_FLAGS="-fno-exceptions"
"$work/bin/wasi-clang" -std=c11 -Wall -Werror -I"$prefix/include" -c -o "$work/heic.o" "$here/glue/heic.c"
"$work/bin/wasi-clang" -std=c11 -Wall -Werror -c -o "$work/pthread.o" "$here/glue/pthread.c"
"$work/bin/wasi-clang++" $LINK -Wl,--export=heic_decode -o "$work/heic.wasm" \
	"$work/heic.o" "$work/pthread.o" "$prefix/lib/libheif.a" "$prefix/lib/libde265.a"

# --- AVIF: dav1d, libavif ----------------------------------------------------
if [ ! -f "$work/build/dav1d/build.ninja" ]; then
	meson setup "$work/build/dav1d" "$work/src/dav1d" --cross-file "$work/meson-cross.txt" \
		--prefix "$prefix" --libdir lib --buildtype release --default-library static -Db_ndebug=true \
		-Denable_asm=false -Denable_tools=false -Denable_examples=false -Denable_tests=false \
		-Dlogging=false >&2
fi
ninja -C "$work/build/dav1d" -j "$jobs" install >&2
cmake_lib "$work/src/libavif" "$work/build/libavif" \
	-DAVIF_CODEC_DAV1D=SYSTEM -DAVIF_CODEC_AOM=OFF -DAVIF_CODEC_LIBGAV1=OFF -DAVIF_CODEC_RAV1E=OFF \
	-DAVIF_CODEC_SVT=OFF -DAVIF_LIBYUV=OFF -DAVIF_LIBSHARPYUV=OFF -DAVIF_LIBXML2=OFF -DAVIF_JPEG=OFF \
	-DAVIF_ZLIBPNG=OFF -DAVIF_BUILD_APPS=OFF -DAVIF_BUILD_TESTS=OFF
"$work/bin/wasi-clang" -std=c11 -Wall -Werror -I"$prefix/include" -c -o "$work/avif.o" "$here/glue/avif.c"
"$work/bin/wasi-clang" $LINK -Wl,--export=avif_decode -o "$work/avif.wasm" \
	"$work/avif.o" "$work/pthread.o" "$prefix/lib/libavif.a" "$prefix/lib/libdav1d.a"

for m in heic avif; do
	gzip -n -9 <"$work/$m.wasm" >"$out/$m.wasm.gz"
done
sums=$(cd "$work" && sha256sum heic.wasm avif.wasm)
echo "$sums"
# What the directory holds, and from what.
{
	cat <<README
# Generated: do not edit

Every file here is written by \`../build/build.sh\` (run it to rebuild them);
the Go code embeds the two modules.

| module | carries | licences |
| --- | --- | --- |
| \`heic.wasm.gz\` | libheif (only its libde265 decoder, built in), libde265, \`../build/glue/heic.c\` | LGPL-3.0 (\`LICENSE.libheif\`, \`LICENSE.libde265\`) |
| \`avif.wasm.gz\` | libavif (only its dav1d decoder), dav1d, \`../build/glue/avif.c\` | BSD-2-Clause (\`LICENSE.libavif\`, \`LICENSE.dav1d\`) |

Both also carry \`../build/glue/pthread.c\`, and wasi-libc, libc++ and
compiler-rt as Debian builds them. The NOTICE file at the repository's root
says how to run a replacement module.

Debian source packages (package=version, sha256 of the upstream and Debian
tarballs):

README
	echo "$SOURCES" | sed '/^$/d; s/^/    /'
	cat <<README

Toolchain (Debian packages):

    $TOOLCHAIN

sha256 of the modules, uncompressed (\`gunzip -c heic.wasm.gz | sha256sum\`):

README
	echo "$sums" | sed 's/^/    /'
} >"$out/README.md"
# The licences of the code the modules carry.
cp "$work/src/libheif/COPYING" "$out/LICENSE.libheif"
cp "$work/src/libde265/COPYING" "$out/LICENSE.libde265"
cp "$work/src/libavif/LICENSE" "$out/LICENSE.libavif"
cp "$work/src/dav1d/COPYING" "$out/LICENSE.dav1d"
