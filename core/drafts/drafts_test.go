package drafts

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const cardText = "---\nlicense: mit\n---\n\n# Cats\n"

func TestSaveLoadDelete(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "modelpub", "cards")) // created on the first Save
	src := t.TempDir()

	_, err := s.Load(src)
	require.ErrorIs(t, err, ErrNoDraft)
	require.ErrorIs(t, err, fs.ErrNotExist)

	at := time.Date(2025, 3, 1, 12, 30, 0, 0, time.UTC)
	require.NoError(t, s.Save(&Draft{Folder: src, Card: []byte(cardText), BodyEdited: true, Saved: at}))
	d, err := s.Load(src)
	require.NoError(t, err)
	assert.Equal(t, cardText, string(d.Card))
	assert.True(t, d.BodyEdited)
	assert.True(t, at.Equal(d.Saved))
	assert.Equal(t, filepath.Join(s.Dir(), Key(src)+".md"), s.Path(src))
	data, err := os.ReadFile(s.Path(src))
	require.NoError(t, err)
	assert.Equal(t, cardText, string(data), "the .md is the card as it is, to read or copy by hand")
	if runtime.GOOS != "windows" { // Windows keeps no Unix mode: the user's profile is private
		info, err := os.Stat(s.Path(src))
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), info.Mode().Perm(), "private to the user")
		info, err = os.Stat(s.Dir())
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o700), info.Mode().Perm())
	}

	require.NoError(t, s.Save(&Draft{Folder: src, Card: []byte("second"), BodyEdited: false}))
	d, err = s.Load(src)
	require.NoError(t, err)
	assert.Equal(t, "second", string(d.Card), "the last save wins")
	assert.False(t, d.BodyEdited)
	assert.WithinDuration(t, time.Now(), d.Saved, time.Minute, "a zero Saved is now")

	entries, err := os.ReadDir(s.Dir())
	require.NoError(t, err)
	assert.Len(t, entries, 2, "the card and its description, no temporary file left")

	require.NoError(t, s.Delete(src))
	_, err = s.Load(src)
	assert.ErrorIs(t, err, ErrNoDraft)
	require.NoError(t, s.Delete(src), "deleting nothing is no error")
	entries, err = os.ReadDir(s.Dir())
	require.NoError(t, err)
	assert.Empty(t, entries)
	entries, err = os.ReadDir(src)
	require.NoError(t, err)
	assert.Empty(t, entries, "the source folder is never written")
}

func TestKey(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "sd15")
	require.NoError(t, os.Mkdir(src, 0o755))
	link := filepath.Join(root, "link")
	require.NoError(t, os.Symlink(src, link))
	t.Chdir(root)

	k := Key(src)
	assert.Len(t, k, 64)
	assert.Equal(t, k, Key("sd15"), "a relative path is made absolute")
	assert.Equal(t, k, Key(src+"/"), "cleaned")
	if runtime.GOOS == "windows" {
		// Under Wine 8.0, EvalSymlinks of a link made by os.Symlink does
		// not give the folder's own path (seen in make test-windows).
		t.Log("the link case is not checked on Windows (Wine resolves links to another path)")
	} else {
		assert.Equal(t, k, Key(link), "one folder through a link has one draft")
	}
	assert.NotEqual(t, k, Key(filepath.Join(root, "other")))
	assert.NotEqual(t, Key(filepath.Join(root, "missing")), Key(filepath.Join(root, "missing2")),
		"a folder that does not exist (any more) still has its key")
}

// A .json that does not describe the .md (missing, damaged, written for
// other bytes) makes the draft count as edited: the user's text is kept.
func TestLoadWithoutItsDescription(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, s *Store, src string)
	}{
		{"missing", func(t *testing.T, s *Store, src string) {
			require.NoError(t, os.Remove(strings.TrimSuffix(s.Path(src), ".md")+".json"))
		}},
		{"not JSON", func(t *testing.T, s *Store, src string) {
			require.NoError(t, os.WriteFile(strings.TrimSuffix(s.Path(src), ".md")+".json", []byte("{"), 0o600))
		}},
		{"other bytes", func(t *testing.T, s *Store, src string) {
			require.NoError(t, os.WriteFile(s.Path(src), []byte("edited by hand"), 0o600))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStore(t.TempDir())
			src := t.TempDir()
			require.NoError(t, s.Save(&Draft{Folder: src, Card: []byte(cardText), BodyEdited: false}))
			tt.spoil(t, s, src)
			d, err := s.Load(src)
			require.NoError(t, err)
			assert.True(t, d.BodyEdited)
			assert.False(t, d.Saved.IsZero(), "the file's time")
		})
	}
}

func TestLoadRefuses(t *testing.T) {
	s := NewStore(t.TempDir())
	src := t.TempDir()

	require.NoError(t, os.Mkdir(s.Path(src), 0o700))
	_, err := s.Load(src)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrNoDraft)
	assert.Contains(t, err.Error(), s.Path(src))
	assert.Contains(t, err.Error(), "not a regular file")
	require.NoError(t, os.Remove(s.Path(src)))

	f, err := os.Create(s.Path(src))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(MaxSize+1)) // sparse: no disk used
	require.NoError(t, f.Close())
	_, err = s.Load(src)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), s.Path(src))
}

func TestSaveFails(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	s := NewStore(filepath.Join(blocker, "cards")) // under a file: cannot be made

	err := s.Save(&Draft{Folder: dir, Card: []byte(cardText)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), blocker)
	assert.Error(t, s.Save(&Draft{Card: []byte(cardText)}), "a draft needs its folder")
	assert.Error(t, s.Save(nil))
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))

	require.NoError(t, WriteFile(path, []byte("new"), 0o644))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "new", string(data))
	if runtime.GOOS != "windows" { // Windows keeps no Unix mode
		info, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o644), info.Mode().Perm())
	}

	// A folder in the way: an error naming it, nothing changed, nothing
	// left behind.
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	err = WriteFile(sub, []byte("x"), 0o644)
	require.Error(t, err)
	assert.Contains(t, err.Error(), sub)

	// A folder that cannot be written: path is left as it was.
	if runtime.GOOS != "windows" && os.Geteuid() != 0 { // Unix permissions, enforced (not root)
		require.NoError(t, os.Chmod(dir, 0o555))
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		err = WriteFile(path, []byte("newer"), 0o644)
		require.Error(t, err)
		assert.True(t, errors.Is(err, fs.ErrPermission), err)
		require.NoError(t, os.Chmod(dir, 0o755))
		data, err = os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "new", string(data))
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "README.md and sub: no temporary file")
}

func TestDefaultDir(t *testing.T) {
	// The user config dir: $XDG_CONFIG_HOME (else ~/.config) on Linux,
	// %AppData% on Windows, ~/Library/Application Support on macOS.
	env, dir, want := "XDG_CONFIG_HOME", "/x/config", "/x/config/modelpub/cards"
	clear := []string{"XDG_CONFIG_HOME", "HOME"}
	switch runtime.GOOS {
	case "windows":
		env, dir, want = "AppData", `C:\Users\u\AppData\Roaming`, `C:\Users\u\AppData\Roaming\modelpub\cards`
		clear = []string{"AppData"}
	case "darwin":
		env, dir, want = "HOME", "/Users/u", "/Users/u/Library/Application Support/modelpub/cards"
		clear = []string{"HOME"}
	}
	t.Setenv(env, dir)
	got, err := DefaultDir()
	require.NoError(t, err)
	assert.Equal(t, want, got)

	for _, e := range clear {
		t.Setenv(e, "")
	}
	_, err = DefaultDir()
	assert.Error(t, err, "no config dir to be found")
}
