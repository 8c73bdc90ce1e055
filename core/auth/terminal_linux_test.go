package auth_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"modelpub/core/auth"
)

// openPTY returns the two ends of a new pseudo-terminal; tty is what a
// user's program sees as its terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	// Through SyscallConn, not Fd, so the master stays non-blocking and
	// read deadlines work on it.
	rc, err := master.SyscallConn()
	require.NoError(t, err)
	var n uint32
	var ioErr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr == nil {
			n, ioErr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
		}
	}))
	require.NoError(t, ioErr)
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("cannot open the pty's terminal end: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

// promptSignal is a prompt writer that says when the prompt appeared, that
// is when echo is already off.
type promptSignal struct {
	mu    sync.Mutex
	text  string
	shown chan struct{}
	once  sync.Once
}

func newPromptSignal() *promptSignal { return &promptSignal{shown: make(chan struct{})} }

func (p *promptSignal) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.text += string(b)
	p.mu.Unlock()
	p.once.Do(func() { close(p.shown) })
	return len(b), nil
}

func (p *promptSignal) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.text
}

func echoOn(t *testing.T, tty *os.File) bool {
	t.Helper()
	st, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	require.NoError(t, err)
	return st.Lflag&unix.ECHO != 0
}

// drain returns what the terminal showed (the master's readable output)
// within a short wait.
func drain(t *testing.T, master *os.File) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 4096)
	for {
		require.NoError(t, master.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
		n, err := master.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, io.EOF) {
				t.Logf("reading the pty: %v", err)
			}
			return string(out)
		}
	}
}

func TestReadTokenTerminalNoEcho(t *testing.T) {
	master, tty := openPTY(t)
	require.True(t, echoOn(t, tty), "a new pty echoes")

	prompt := newPromptSignal()
	type result struct {
		tok string
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := auth.ReadTokenTerminal(tty, prompt)
		done <- result{v, err}
	}()
	select {
	case <-prompt.shown:
	case <-time.After(10 * time.Second):
		t.Fatal("no prompt")
	}
	assert.False(t, echoOn(t, tty), "echo is off while the token is typed")
	_, err := master.WriteString(tokA + "\r")
	require.NoError(t, err)

	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ReadTokenTerminal did not return")
	}
	require.NoError(t, r.err)
	assert.Equal(t, tokA, r.tok, "a CR from the terminal ends the line")
	assert.Equal(t, "Token: \n", prompt.String())
	assert.True(t, echoOn(t, tty), "echo is restored")
	assert.NotContains(t, drain(t, master), tokA[3:], "the terminal never showed the token")

	// The same check sees typing once echo is back, so it can fail.
	_, err = master.WriteString("visible\r")
	require.NoError(t, err)
	assert.Contains(t, drain(t, master), "visible")
}

func TestReadTokenTerminalInterrupt(t *testing.T) {
	master, tty := openPTY(t)
	prompt := newPromptSignal()
	done := make(chan error, 1)
	go func() {
		_, err := auth.ReadTokenTerminal(tty, prompt)
		done <- err
	}()
	select {
	case <-prompt.shown:
	case <-time.After(10 * time.Second):
		t.Fatal("no prompt")
	}
	// The handler is installed before the prompt, so this SIGINT reaches it
	// and not the default action.
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
	select {
	case err := <-done:
		require.ErrorIs(t, err, auth.ErrInterrupted)
	case <-time.After(10 * time.Second):
		t.Fatal("Ctrl-C did not stop ReadTokenTerminal")
	}
	assert.True(t, echoOn(t, tty), "echo is restored after Ctrl-C")
	// Release the abandoned read.
	_, err := master.WriteString("\r")
	require.NoError(t, err)
}
