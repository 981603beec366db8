package sealed

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

func testKey(t testing.TB, seed byte) *Key {
	t.Helper()
	b := make([]byte, KeySize)
	for i := range b {
		b[i] = seed + byte(i)
	}
	k, err := NewKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var bind = Binding{JobID: "5d1f2a", CheckpointID: 17, Path: "chk-17/2-0-keyed"}

func seal(t testing.TB, k *Key, b Binding, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, k, b)
	if err != nil {
		t.Fatal(err)
	}
	// Odd-sized writes cross chunk boundaries at every position.
	for p := plain; len(p) > 0; {
		n := min(len(p), 7777)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(buf.Len()) || SealedSize(b, int64(len(plain))) != int64(buf.Len()) {
		t.Fatalf("Size %d, SealedSize %d, wrote %d", w.Size(), SealedSize(b, int64(len(plain))), buf.Len())
	}
	return buf.Bytes()
}

func openAll(k *Key, b Binding, file []byte) ([]byte, error) {
	r, err := Open(bytes.NewReader(file), int64(len(file)), k, b)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

var sizes = []int{0, 1, 100, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2 * ChunkSize, 3*ChunkSize + 12345}

func TestRoundTrip(t *testing.T) {
	k := testKey(t, 1)
	for _, n := range sizes {
		plain := pattern(n)
		file := seal(t, k, bind, plain)
		got, err := openAll(k, bind, file)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: round trip differs", n)
		}
	}
}

func TestReadAtRandomAccess(t *testing.T) {
	k := testKey(t, 1)
	plain := pattern(5*ChunkSize + 999)
	file := seal(t, k, bind, plain)
	r, err := Open(bytes.NewReader(file), int64(len(file)), k, bind)
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != int64(len(plain)) {
		t.Fatalf("Size %d", r.Size())
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		off := rnd.IntN(len(plain))
		n := rnd.IntN(3 * ChunkSize)
		p := make([]byte, n)
		m, err := r.ReadAt(p, int64(off))
		want := plain[off:min(off+n, len(plain))]
		if m != len(want) || !bytes.Equal(p[:m], want) {
			t.Fatalf("ReadAt(%d, %d) = %d bytes, want %d", n, off, m, len(want))
		}
		if off+n > len(plain) && !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt past the end: %v", err)
		}
		if off+n <= len(plain) && err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Seek(int64(len(plain)-10), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(tail, plain[len(plain)-10:]) {
		t.Fatalf("after Seek: %v", err)
	}
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestTamperEveryByte flips each byte of small files, and bytes at every
// structural position of a multi-chunk one: every change is refused,
// naming the file, at Open or at the latest when the chunk is read.
func TestTamperEveryByte(t *testing.T) {
	k := testKey(t, 1)
	check := func(t *testing.T, file []byte, i int) {
		bad := bytes.Clone(file)
		bad[i] ^= 0x01
		got, err := openAll(k, bind, bad)
		if err == nil {
			t.Fatalf("byte %d of %d flipped: read %d bytes without error", i, len(file), len(got))
		}
		if !strings.Contains(err.Error(), "checkpoint file "+bind.Path+":") {
			t.Fatalf("byte %d: error does not name the file: %v", i, err)
		}
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Fatalf("byte %d: %T", i, err)
		}
	}
	for _, n := range []int{0, 1, 100} {
		file := seal(t, k, bind, pattern(n))
		for i := range file {
			check(t, file, i)
		}
	}
	file := seal(t, k, bind, pattern(3*ChunkSize+5))
	hdr := int(HeaderSize(bind))
	rnd := rand.New(rand.NewPCG(5, 6))
	positions := []int{}
	for i := range hdr + 40 {
		positions = append(positions, i)
	}
	for c := range 4 {
		base := hdr + c*chunkCT
		for _, d := range []int{-16, -1, 0, 1, 1000} {
			if p := base + d; p >= 0 && p < len(file) {
				positions = append(positions, p)
			}
		}
	}
	for range 200 {
		positions = append(positions, rnd.IntN(len(file)))
	}
	positions = append(positions, len(file)-1)
	for _, i := range positions {
		check(t, file, i)
	}
}

func TestTruncateAndAppendRefusedAtOpen(t *testing.T) {
	k := testKey(t, 1)
	for _, n := range []int{0, 10, ChunkSize, 2*ChunkSize + 7} {
		file := seal(t, k, bind, pattern(n))
		hdr := int(HeaderSize(bind))
		cuts := []int{0, 5, hdr - 1, hdr, hdr + 1, len(file) - 1, len(file) - tagSize}
		for c := 1; hdr+c*chunkCT < len(file); c++ {
			cuts = append(cuts, hdr+c*chunkCT) // a whole number of chunks
		}
		for _, cut := range cuts {
			if cut < 0 || cut >= len(file) {
				continue
			}
			if _, err := Open(bytes.NewReader(file[:cut]), int64(cut), k, bind); err == nil {
				t.Errorf("%d bytes cut to %d of %d: opened", n, cut, len(file))
			}
		}
		for _, extra := range [][]byte{{0}, make([]byte, tagSize), make([]byte, chunkCT), file[hdr:]} {
			long := append(bytes.Clone(file), extra...)
			if _, err := Open(bytes.NewReader(long), int64(len(long)), k, bind); !errors.Is(err, ErrAuth) {
				t.Errorf("%d bytes + %d appended: %v", n, len(extra), err)
			}
		}
	}
}

func TestReorderedChunks(t *testing.T) {
	k := testKey(t, 1)
	file := seal(t, k, bind, pattern(3*ChunkSize+100))
	hdr := int(HeaderSize(bind))
	chunk := func(i int) []byte { return file[hdr+i*chunkCT : hdr+(i+1)*chunkCT] }
	swapped := append(append(append(bytes.Clone(file[:hdr]), chunk(1)...), chunk(0)...), file[hdr+2*chunkCT:]...)
	if _, err := openAll(k, bind, swapped); !errors.Is(err, ErrAuth) {
		t.Fatalf("chunks 0 and 1 swapped: %v", err)
	}
	dropped := append(bytes.Clone(file[:hdr+chunkCT]), file[hdr+2*chunkCT:]...)
	if _, err := openAll(k, bind, dropped); !errors.Is(err, ErrAuth) {
		t.Fatalf("chunk 1 dropped: %v", err)
	}
	dup := append(append(bytes.Clone(file[:hdr+2*chunkCT]), chunk(1)...), file[hdr+2*chunkCT:]...)
	if _, err := openAll(k, bind, dup); !errors.Is(err, ErrAuth) {
		t.Fatalf("chunk 1 duplicated: %v", err)
	}
}

// TestSwappedFiles: a file sealed for one binding is refused under every
// other, whether the header is left alone (the binding differs) or edited
// to claim the expected binding (authentication fails).
func TestSwappedFiles(t *testing.T) {
	k := testKey(t, 1)
	plain := pattern(1000)
	others := map[string]Binding{
		"other name":       {JobID: bind.JobID, CheckpointID: bind.CheckpointID, Path: "chk-17/3-0-keyed"},
		"other checkpoint": {JobID: bind.JobID, CheckpointID: 16, Path: bind.Path},
		"other job":        {JobID: "77aa01", CheckpointID: bind.CheckpointID, Path: bind.Path},
	}
	for name, other := range others {
		t.Run(name, func(t *testing.T) {
			file := seal(t, k, other, plain)
			_, err := openAll(k, bind, file)
			if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), bind.Path) {
				t.Fatalf("moved file: %v", err)
			}
			// The header rewritten to the expected binding, chunks kept.
			forged := append(header(k, file[len(magic)+idSize:len(magic)+idSize+saltSize], bind), file[HeaderSize(other):]...)
			_, err = openAll(k, bind, forged)
			if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "the file was altered, or belongs to another checkpoint or job") {
				t.Fatalf("forged header: %v", err)
			}
		})
	}
}

func TestWrongKey(t *testing.T) {
	file := seal(t, testKey(t, 1), bind, pattern(10))
	other := testKey(t, 2)
	_, err := openAll(other, bind, file)
	if !errors.Is(err, ErrWrongKey) || errors.Is(err, ErrAuth) {
		t.Fatalf("wrong key: %v", err)
	}
	for _, want := range []string{bind.Path, testKey(t, 1).ID(), other.ID(), KeyFileKey} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// A key id forged to match the other key: authentication fails.
	forged := bytes.Clone(file)
	copy(forged[len(magic):], other.id[:])
	if _, err := openAll(other, bind, forged); !errors.Is(err, ErrAuth) {
		t.Fatalf("forged key id: %v", err)
	}
}

func TestNotSealed(t *testing.T) {
	k := testKey(t, 1)
	for _, f := range [][]byte{nil, []byte("{\"format\": \"sluice-checkpoint/1\"}\n"), bytes.Repeat([]byte{0}, 200)} {
		_, err := openAll(k, bind, f)
		if err == nil || !strings.Contains(err.Error(), "not a sealed file") {
			t.Errorf("%q: %v", f, err)
		}
	}
}

func TestOpenUnbound(t *testing.T) {
	k := testKey(t, 1)
	b := Binding{JobID: "5d1f2a", CheckpointID: 9, Path: "_metadata"}
	file := seal(t, k, b, []byte("{}"))
	r, err := OpenUnbound(bytes.NewReader(file), int64(len(file)), k, "_metadata")
	if err != nil {
		t.Fatal(err)
	}
	if r.Binding() != b {
		t.Fatalf("Binding %+v", r.Binding())
	}
	if _, err := OpenUnbound(bytes.NewReader(file), int64(len(file)), k, "chk-9/_metadata"); !errors.Is(err, ErrAuth) {
		t.Fatalf("other path: %v", err)
	}
}

func TestBadBindingRefused(t *testing.T) {
	k := testKey(t, 1)
	for _, b := range []Binding{
		{JobID: "", CheckpointID: 1, Path: "x"},
		{JobID: "j", CheckpointID: 0, Path: "x"},
		{JobID: "j", CheckpointID: -3, Path: "x"},
		{JobID: "j", CheckpointID: 1, Path: ""},
		{JobID: strings.Repeat("j", MaxJobIDLen+1), CheckpointID: 1, Path: "x"},
		{JobID: "j", CheckpointID: 1, Path: strings.Repeat("p", MaxPathLen+1)},
	} {
		if _, err := NewWriter(io.Discard, k, b); err == nil {
			t.Errorf("NewWriter accepted %+v", b)
		}
	}
}

func TestWriterNotClosedDoesNotOpen(t *testing.T) {
	k := testKey(t, 1)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, k, bind)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(pattern(3 * ChunkSize))
	// Crash before Close: full chunks are out, none marked last.
	if _, err := openAll(k, bind, buf.Bytes()); !errors.Is(err, ErrAuth) {
		t.Fatalf("unclosed file: %v", err)
	}
}

// TestKnownAnswer pins the format: the vectors were computed by an
// independent implementation of the layout in the package comment (Python's
// cryptography package: HKDF-SHA256 and AES-GCM), with key 00..1f, salt
// 64..83 and the binding (5d1f2a, 17, chk-17/2-0-keyed). A change here
// makes every sealed checkpoint unreadable.
func TestKnownAnswer(t *testing.T) {
	k := testKey(t, 0)
	if k.ID() != "d42809434b91fe48" {
		t.Fatalf("key id %s", k.ID())
	}
	salt := make([]byte, saltSize)
	for i := range salt {
		salt[i] = byte(100 + i)
	}
	sealWith := func(plain []byte) []byte {
		var buf bytes.Buffer
		w, err := newWriter(&buf, k, bind, salt)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(plain)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	const hdr = "534c5345414c0001d42809434b91fe486465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182830635643166326100000000000000111063686b2d31372f322d302d6b65796564"
	tests := []struct {
		name  string
		plain []byte
		hex   string // whole file, or
		sum   string // its SHA-256 and size
		size  int
	}{
		{name: "empty", plain: nil, hex: hdr + "fed4dbb514ec9e715045e3283cc8301f"},
		{name: "hello", plain: []byte("hello, sealed world"), hex: hdr + "58907a41dc634532e52e0946862d3c4552796416a4336de1b4c1665a9d70ad4beba4c2"},
		{name: "3 chunks", plain: pattern(150000), sum: "fb40aa7d263fb124623a0ecaeb8ea5b5e7b9fe81f661c6288ac46704ec64e2fd", size: 150128},
		{name: "exactly one chunk", plain: make([]byte, ChunkSize), sum: "302cac9d8434c0429fb904e262a431a26fd96142490906424753a3760f94c6fb", size: 65632},
	}
	for _, tt := range tests {
		got := sealWith(tt.plain)
		if tt.hex != "" {
			if hex.EncodeToString(got) != tt.hex {
				t.Errorf("%s:\n got %x\nwant %s", tt.name, got, tt.hex)
			}
		} else {
			sum := sha256.Sum256(got)
			if hex.EncodeToString(sum[:]) != tt.sum || len(got) != tt.size {
				t.Errorf("%s: %d bytes sha256 %x, want %d bytes %s", tt.name, len(got), sum, tt.size, tt.sum)
			}
		}
		back, err := openAll(k, bind, got)
		if err != nil || !bytes.Equal(back, tt.plain) {
			t.Errorf("%s: open: %v", tt.name, err)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	k := testKey(b, 1)
	buf := pattern(1 << 20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		w, err := NewWriter(io.Discard, k, bind)
		if err != nil {
			b.Fatal(err)
		}
		w.Write(buf)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	k := testKey(b, 1)
	plain := pattern(1 << 20)
	file := seal(b, k, bind, plain)
	out := make([]byte, 32<<10)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		r, err := Open(bytes.NewReader(file), int64(len(file)), k, bind)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashWriter(b *testing.B) {
	buf := pattern(1 << 20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		w := NewHashWriter(io.Discard)
		w.Write(buf)
		_ = w.Sum()
	}
}
