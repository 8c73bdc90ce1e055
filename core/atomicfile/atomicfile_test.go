package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// names lists a folder's entries.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name string
		old  []byte // nil: no file before
		data []byte
		perm fs.FileMode
	}{
		{"new file", nil, []byte("hello"), 0o644},
		{"replaces a file", []byte("a much longer previous content"), []byte("new"), 0o644},
		{"private", []byte("old"), []byte("secret"), 0o600},
		{"empty", []byte("old"), []byte{}, 0o644},
		{"read-only mode kept exactly", nil, []byte("x"), 0o444},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "README.md")
			if tt.old != nil {
				require.NoError(t, os.WriteFile(path, tt.old, 0o666))
			}
			require.NoError(t, WriteFile(path, tt.data, tt.perm))
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tt.data, got)
			st, err := os.Stat(path)
			require.NoError(t, err)
			if runtime.GOOS == "windows" {
				// Windows keeps only the read-only bit of a mode.
				assert.Equal(t, tt.perm&0o200 == 0, st.Mode().Perm()&0o200 == 0)
			} else {
				assert.Equal(t, tt.perm, st.Mode().Perm(), "the mode is perm, whatever the umask")
			}
			assert.Equal(t, []string{"README.md"}, names(t, dir), "no temporary file left")
		})
	}
}

func TestWriteFileFails(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("old"), 0o644))
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))

	tests := []struct {
		name string
		path string
		want error
	}{
		{"the target is a folder", sub, ErrIsDir},
		{"the folder does not exist", filepath.Join(dir, "missing", "f"), fs.ErrNotExist},
		{"the folder is a file", filepath.Join(file, "f"), nil}, // ENOTDIR, or ERROR_PATH_NOT_FOUND on Windows
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteFile(tt.path, []byte("new"), 0o644)
			require.Error(t, err)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
			var pe *fs.PathError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.path, pe.Path)
			assert.Contains(t, err.Error(), tt.path)
			assert.NotContains(t, err.Error(), tempInfix, "the temporary name means nothing to the user")
			assert.ElementsMatch(t, []string{"file", "sub"}, names(t, dir))
			got, err := os.ReadFile(file)
			require.NoError(t, err)
			assert.Equal(t, "old", string(got))
			assert.Empty(t, names(t, sub))
		})
	}
}

func TestWriteFileInAFolderThatCannotBeWritten(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		t.Skip("needs Unix permissions enforced (not root)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
	require.NoError(t, os.Chmod(dir, 0o555))
	t.Cleanup(func() { os.Chmod(dir, 0o755) })

	err := WriteFile(path, []byte("new"), 0o644)
	require.ErrorIs(t, err, fs.ErrPermission)
	assert.Contains(t, err.Error(), path)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "old", string(got))
}

func TestWriteLeavesNothingOnFailure(t *testing.T) {
	boom := errors.New("simulated failure")
	tests := []struct {
		name  string
		write func(f *os.File) error
	}{
		{"fails before writing", func(f *os.File) error { return boom }},
		{"fails half-way", func(f *os.File) error {
			if _, err := f.Write(bytes.Repeat([]byte("x"), 1<<20)); err != nil {
				return err
			}
			return boom
		}},
		{"closes the file itself", func(f *os.File) error {
			f.Write([]byte("partial"))
			f.Close()
			return boom
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.safetensors")
			require.NoError(t, os.WriteFile(path, []byte("previous"), 0o644))
			err := Write(path, 0o644, tt.write)
			require.ErrorIs(t, err, boom)
			assert.Equal(t, boom, err, "write's own error comes back as it is")
			got, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			assert.Equal(t, "previous", string(got))
			assert.Equal(t, []string{"model.safetensors"}, names(t, dir))
		})
	}
}

func TestCreateCommitAbort(t *testing.T) {
	t.Run("abort leaves nothing and the target as it was", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
		f, err := Create(path, 0o644)
		require.NoError(t, err)
		assert.Equal(t, path, f.Target())
		assert.Equal(t, dir, filepath.Dir(f.Name()), "the temporary file is beside the target")
		assert.True(t, IsTemp(filepath.Base(f.Name())))
		_, err = f.Write([]byte("new"))
		require.NoError(t, err)
		f.Abort()
		f.Abort() // twice is harmless
		assert.Equal(t, []string{"f"}, names(t, dir))
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "old", string(got))
		assert.ErrorIs(t, f.Commit(), fs.ErrClosed, "nothing to commit after Abort")
	})
	t.Run("the target appears only at commit", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		f, err := Create(path, 0o644)
		require.NoError(t, err)
		defer f.Abort()
		_, err = f.Write([]byte("complete"))
		require.NoError(t, err)
		_, err = os.Stat(path)
		require.ErrorIs(t, err, fs.ErrNotExist, "no file under its final name before Commit")
		require.NoError(t, f.Commit())
		f.Abort() // after Commit: does nothing
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "complete", string(got))
		assert.Equal(t, []string{"f"}, names(t, dir))
		assert.ErrorIs(t, f.Commit(), fs.ErrClosed, "a second Commit is an error")
	})
	t.Run("commit after close fails and cleans up", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		f, err := Create(path, 0o644)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		require.NoError(t, f.Close())
		err = f.Commit()
		require.Error(t, err)
		assert.Contains(t, err.Error(), path)
		assert.Empty(t, names(t, dir))
	})
	t.Run("several files committed one by one", func(t *testing.T) {
		dir := t.TempDir()
		var files []*File
		for i := range 3 {
			f, err := Create(filepath.Join(dir, fmt.Sprintf("shard-%d", i)), 0o644)
			require.NoError(t, err)
			defer f.Abort()
			_, err = fmt.Fprintf(f, "shard %d", i)
			require.NoError(t, err)
			require.NoError(t, f.Sync())
			files = append(files, f)
		}
		assert.Len(t, names(t, dir), 3)
		for _, f := range files {
			require.NoError(t, f.Commit())
		}
		assert.Equal(t, []string{"shard-0", "shard-1", "shard-2"}, names(t, dir))
	})
}

func TestRename(t *testing.T) {
	dir := t.TempDir()
	tmp, path := filepath.Join(dir, "tmp"), filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(tmp, []byte("first"), 0o644))
	require.NoError(t, Rename(tmp, path), "a new target")
	require.NoError(t, os.WriteFile(tmp, []byte("second"), 0o644))
	require.NoError(t, Rename(tmp, path), "over an existing target")
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "second", string(got))
	assert.Equal(t, []string{"f"}, names(t, dir))

	err = Rename(filepath.Join(dir, "missing"), path)
	var le *os.LinkError
	require.ErrorAs(t, err, &le)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.Equal(t, path, le.New)
}

// TestReadersSeeOldOrNew replaces a file over and over while readers read
// it: each read finds one whole version, never a mix or a missing file.
func TestReadersSeeOldOrNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	version := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 64<<10) }
	require.NoError(t, WriteFile(path, version(0), 0o644))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	bad := make(chan string, 1)
	readers, gap := 2, time.Duration(0)
	if runtime.GOOS == "windows" {
		// A reader holding the file open keeps it from being replaced
		// (replace retries for a while): one reader, with gaps.
		readers, gap = 1, 50*time.Millisecond
	}
	for range readers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				time.Sleep(gap)
				got, err := os.ReadFile(path)
				if err != nil {
					// Windows refuses to open a file while it is being
					// replaced (access denied, sharing violation): no
					// data is seen, so none can be mixed. A missing file
					// is a failure everywhere.
					if runtime.GOOS == "windows" && !errors.Is(err, fs.ErrNotExist) {
						continue
					}
					select {
					case bad <- err.Error():
					default:
					}
					return
				}
				if len(got) != 64<<10 || bytes.Count(got, got[:1]) != len(got) {
					select {
					case bad <- fmt.Sprintf("a mixed or partial read of %d bytes", len(got)):
					default:
					}
					return
				}
			}
		})
	}
	for i := 1; i <= 50; i++ {
		if err := WriteFile(path, version(i), 0o644); err != nil {
			close(stop)
			wg.Wait()
			require.NoError(t, err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case msg := <-bad:
		t.Fatal(msg)
	default:
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, version(50), got)
	assert.Equal(t, []string{"f"}, names(t, dir))
}

func TestIsTemp(t *testing.T) {
	tests := map[string]bool{
		".model.safetensors.tmp-123": true,
		".README.md.tmp-":            true,
		"model.safetensors":          false,
		"model.tmp-123":              false, // not hidden: not ours
		".hidden":                    false,
	}
	for name, want := range tests {
		assert.Equal(t, want, IsTemp(name), name)
	}
}

func TestSyncTree(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "unet", "deep"), 0o755))
	for _, p := range []string{"model_index.json", "unet/config.json", "unet/deep/x"} {
		require.NoError(t, os.WriteFile(filepath.Join(root, filepath.FromSlash(p)), []byte(p), 0o644))
	}
	require.NoError(t, SyncTree(root))
	require.NoError(t, SyncDir(root))

	err := SyncTree(filepath.Join(root, "missing"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), "missing")
}

func TestErrorsNameTheTargetOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing", "f")
	err := WriteFile(path, nil, 0o644)
	require.Error(t, err)
	assert.Equal(t, 1, strings.Count(err.Error(), "missing"), err.Error())
}
