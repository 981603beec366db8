package sealed

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzOpen feeds arbitrary files to Open and to reads at arbitrary offsets:
// it must never panic, and anything it returns without error must be what
// was sealed (only the seeds, written with the key, can authenticate).
func FuzzOpen(f *testing.F) {
	k := testKey(f, 1)
	plains := map[string][]byte{}
	// A fixed salt: the fuzzing workers rebuild this map in their own
	// processes and must find the same seed files.
	salt := make([]byte, saltSize)
	for _, n := range []int{0, 1, 300, ChunkSize + 10} {
		p := pattern(n)
		var buf bytes.Buffer
		w, err := newWriter(&buf, k, bind, salt)
		if err != nil {
			f.Fatal(err)
		}
		w.Write(p)
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		file := buf.Bytes()
		plains[string(file)] = p
		f.Add(file, int64(0))
		f.Add(file[:len(file)-1], int64(5))
		f.Add(file[:HeaderSize(bind)], int64(0))
	}
	f.Add([]byte("SLSEAL\x00\x01"), int64(0))
	f.Add([]byte{}, int64(-1))
	f.Fuzz(func(t *testing.T, file []byte, off int64) {
		for _, size := range []int64{int64(len(file)), int64(len(file)) + 100, int64(len(file)) / 2} {
			r, err := Open(bytes.NewReader(file), size, k, bind)
			if err != nil {
				var fe *FileError
				if !errors.As(err, &fe) || fe.Path != bind.Path {
					t.Fatalf("error without the file: %v", err)
				}
				continue
			}
			got, err := io.ReadAll(r)
			if err == nil {
				want, ok := plains[string(file)]
				if !ok || !bytes.Equal(got, want) || size != int64(len(file)) {
					t.Fatalf("forged file of %d bytes (size %d) read without error: %q ok %v", len(file), size, got, ok)
				}
			}
			p := make([]byte, 100)
			r.ReadAt(p, off)
		}
		OpenUnbound(bytes.NewReader(file), int64(len(file)), k, bind.Path)
		SplitDigestLine(file, "m")
		VerifyHash(bytes.NewReader(file), "m", off, "00")
	})
}
