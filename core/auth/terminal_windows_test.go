package auth_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/auth"
)

// A pipe is no console: the token is read as it comes, with no prompt.
// (The console itself, echo off and restored, is checked under Wine by
// internal/crossos TestWindowsCommandLine, which types at modelpub.com's
// prompt on a terminal.)
func TestReadTokenTerminalFromAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	_, err = w.WriteString(tokA + "\r\n")
	require.NoError(t, err)
	require.NoError(t, w.Close())
	var prompt bytes.Buffer
	got, err := auth.ReadTokenTerminal(r, &prompt)
	require.NoError(t, err)
	assert.Equal(t, tokA, got)
	assert.Empty(t, prompt.String(), "no prompt when nobody types")
}
