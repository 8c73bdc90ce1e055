package tensors

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/folder"
	"modelpub/internal/ostest"
)

// hostileName is a tensor or file name that would clear the screen and
// forge a line of output if printed raw.
const hostileName = "a\x1b[2Jb\nvalid"

// requirePrintable fails unless s is valid UTF-8 without control characters.
func requirePrintable(t *testing.T, s string) {
	t.Helper()
	require.True(t, utf8.ValidString(s), "invalid UTF-8 in %q", s)
	require.False(t, strings.ContainsFunc(s, folder.IsControl), "control character in %q", s)
}

// Error messages name files and tensors escaped, while the error values
// keep the exact names for the program.
func TestErrorMessagesArePrintable(t *testing.T) {
	t.Run("a file named like its hostile tensor", func(t *testing.T) {
		ostest.SkipUnlessNameFits(t, hostileName)
		dir := filepath.Join(t.TempDir(), "dir\u202e")
		require.NoError(t, os.Mkdir(dir, 0o755))
		path := filepath.Join(dir, hostileName+".safetensors")
		name, err := json.Marshal(hostileName) // "a\u001b[2Jb\nvalid"
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, mkFile(`{`+string(name)+`:{"dtype":"BF16","shape":[1],"data_offsets":[0,3]}}`, 3), 0o644))

		_, err = ReadHeaderFile(path)
		require.ErrorIs(t, err, ErrSizeMismatch)
		var fe *FormatError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, path, fe.Path, "the error value keeps the exact path")
		assert.Equal(t, hostileName, fe.Tensor, "and the exact tensor name")
		msg := err.Error()
		requirePrintable(t, msg)
		assert.True(t, strings.HasPrefix(msg, strconv.Quote(path)+`: tensor "a\x1b[2Jb\nvalid": `), msg)
	})

	tests := []struct {
		name string
		err  error
		want string
	}{
		{"format error with a hostile detail", &FormatError{Path: "x.safetensors", Err: ErrHeaderJSON, Detail: "got \x1b]0;pwned\x07"},
			`x.safetensors: header is not valid JSON: got \x1b]0;pwned\a`},
		{"shard set error with a hostile shard", &ShardSetError{Index: "m.safetensors.index.json", Shard: "s\u202e.safetensors",
			Tensor: hostileName, Err: ErrMissingShard},
			`m.safetensors.index.json: tensor "a\x1b[2Jb\nvalid": shard file named by the index is missing: s\u202e.safetensors`},
		{"path error with a hostile path and cause", &PathError{Path: "unet/" + hostileName, Err: errors.New("open unet/" + hostileName + ": denied")},
			`"unet/a\x1b[2Jb\nvalid": open unet/a\x1b[2Jb\nvalid: denied`},
		{"plain names stay as they are", &PathError{Path: "unet/w.safetensors", Err: errors.New("denied")},
			`unet/w.safetensors: denied`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.err.Error()
			requirePrintable(t, got)
			assert.Equal(t, tt.want, got)
		})
	}
}
