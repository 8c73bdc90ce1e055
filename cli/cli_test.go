package cli

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderr   string
		noStdout bool
	}{
		{name: "help lists commands", args: []string{"help"}, code: ExitOK, stdout: "version"},
		{name: "help for one command", args: []string{"help", "version"}, code: ExitOK, stdout: "usage: modelpub version"},
		{name: "no command", args: nil, code: ExitUsage, stderr: "commands:", noStdout: true},
		{name: "unknown command", args: []string{"frobnicate"}, code: ExitUsage, stderr: `unknown command "frobnicate"`, noStdout: true},
		{name: "version", args: []string{"version"}, code: ExitOK, stdout: "modelpub " + Version},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(tt.args, &out, &errb)
			require.Equal(t, tt.code, code)
			assert.Contains(t, out.String(), tt.stdout)
			assert.Contains(t, errb.String(), tt.stderr)
			if tt.noStdout {
				assert.Empty(t, out.String())
			}
		})
	}
}
