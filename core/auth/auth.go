// Package auth finds, keeps and forgets the Hugging Face Hub token.
//
// # Where a token comes from
//
// Resolve looks in this order and takes the first it finds:
//
//  1. standard input, when the caller asked for it (--token-stdin);
//  2. the HF_TOKEN environment variable;
//  3. the OS keyring: service "modelpub", account the endpoint's host
//     ("huggingface.co", "127.0.0.1:8765"), as `modelpub login` stores it;
//  4. the token file that `hf auth login` writes: HF_TOKEN_PATH, else
//     $HF_HOME/token, else $XDG_CACHE_HOME/huggingface/token, else
//     ~/.cache/huggingface/token, as huggingface_hub computes it.
//
// The token file is read, never written, and only for the default endpoint
// https://huggingface.co: hf keeps one token for every endpoint, and a
// huggingface.co token must not go to a local or third-party Hub because
// HF_ENDPOINT happens to point there. HF_TOKEN and --token-stdin are the
// user's explicit choice and go to whatever endpoint is set; keyring
// entries are per host by construction.
//
// # The token never leaks
//
// A Token keeps its value unexported. String, GoString, every fmt verb,
// MarshalJSON, MarshalText and slog print it masked ("hf_…wxyz (from
// keyring)"); only Value returns the secret, for hub.Options.Token. No error
// of this package contains a token. Modelpub never writes a token to a plain
// file: without a usable keyring, Store fails with a *KeyringError that says
// what is missing and names the alternatives.
package auth

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Service is the keyring service under which tokens are kept.
const Service = "modelpub"

// DefaultEndpoint is the Hub used when neither Options.Endpoint nor
// HF_ENDPOINT is set (the same as hub.DefaultEndpoint).
const DefaultEndpoint = "https://huggingface.co"

// defaultAccount is Account(DefaultEndpoint): the only endpoint for which the
// token file of `hf auth login` is read.
const defaultAccount = "huggingface.co"

// MaxTokenLen bounds a token; Hub tokens are about 37 bytes.
const MaxTokenLen = 1 << 10

// Source says where a token came from.
type Source string

// The sources, in Resolve's order of precedence.
const (
	SourceStdin   Source = "--token-stdin"
	SourceEnv     Source = "HF_TOKEN"
	SourceKeyring Source = "keyring"
	SourceFile    Source = "token file"
)

var (
	// ErrNoToken: no source holds a token. The *NoTokenError says how to give one.
	ErrNoToken = errors.New("auth: no Hub token")
	// ErrNoKeyring: the OS keyring cannot be used. The *KeyringError says why.
	ErrNoKeyring = errors.New("auth: no usable OS keyring")
	// ErrNotLoggedIn: the keyring holds no token for the endpoint (Forget).
	ErrNotLoggedIn = errors.New("auth: not logged in")
	// ErrBadToken: the input is not a plausible token: empty, whitespace or
	// control characters inside, or longer than MaxTokenLen.
	ErrBadToken = errors.New("auth: not a valid Hub token")
	// ErrInterrupted: Ctrl-C (or SIGTERM, SIGHUP) arrived while
	// ReadTokenTerminal waited for the token.
	ErrInterrupted = errors.New("auth: interrupted")
)

// Token is a Hub token and where it came from. Its value prints masked
// everywhere; only Value returns it.
type Token struct {
	value  string
	Source Source // where Resolve found it
	Path   string // the token file, for SourceFile
}

// NewToken wraps a token the caller obtained itself (a GUI field), so it
// prints masked like a resolved one.
func NewToken(value string, source Source) Token {
	return Token{value: value, Source: source}
}

// Value returns the secret, to pass as hub.Options.Token and nowhere else.
func (t Token) Value() string { return t.value }

// IsZero reports whether t holds no token.
func (t Token) IsZero() bool { return t.value == "" }

// String returns the masked token and its source: "hf_…wxyz (from keyring)".
func (t Token) String() string {
	if t.IsZero() {
		return "no token"
	}
	s := Mask(t.value)
	switch {
	case t.Source == SourceFile && t.Path != "":
		s += " (from token file " + t.Path + ")"
	case t.Source != "":
		s += " (from " + string(t.Source) + ")"
	}
	return s
}

// GoString is the masked form of %#v.
func (t Token) GoString() string {
	return fmt.Sprintf("auth.Token{Source:%q, Path:%q, value:%q}", t.Source, t.Path, Mask(t.value))
}

// Format prints t masked for every verb: %v %+v %s as String, %#v as
// GoString, %q quoted; the secret has no verb.
func (t Token) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		io.WriteString(f, t.GoString())
	case verb == 'q':
		io.WriteString(f, strconv.Quote(t.String()))
	default:
		io.WriteString(f, t.String())
	}
}

// MarshalJSON writes {"source", "path", "masked"}; never the value.
func (t Token) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Source Source `json:"source"`
		Path   string `json:"path,omitempty"`
		Masked string `json:"masked"`
	}{t.Source, t.Path, Mask(t.value)})
}

// MarshalText returns String, for encoders that use text (XML, map keys).
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// LogValue makes slog print String.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// Mask returns token with all but its "hf_" prefix and, for a token of
// Hub length, its last 4 characters hidden: "hf_…wxyz". Short tokens
// (test tokens) keep only the prefix, so the mask never reveals most of one.
func Mask(token string) string {
	if token == "" {
		return ""
	}
	prefix := ""
	if i := strings.IndexByte(token, '_'); i >= 0 && i < 4 {
		prefix = token[:i+1]
	}
	if len(token) >= 16 {
		return prefix + "…" + token[len(token)-4:]
	}
	return prefix + "…"
}

// Options says which endpoint a token is for and where to look for it.
type Options struct {
	Endpoint string              // "" → $HF_ENDPOINT → https://huggingface.co; the keyring account is its host
	Stdin    io.Reader           // set for --token-stdin: the token is its first line (read with echo off when a terminal)
	Prompt   io.Writer           // where "Token: " goes when Stdin is a terminal; nil → os.Stderr
	Getenv   func(string) string // nil → os.Getenv
	Keyring  Keyring             // nil → SystemKeyring()
	Home     string              // home folder for ~/.cache/huggingface/token; "" → os.UserHomeDir()
}

func (o Options) getenv(k string) string {
	if o.Getenv == nil {
		return os.Getenv(k)
	}
	return o.Getenv(k)
}

func (o Options) keyring() Keyring {
	if o.Keyring == nil {
		return SystemKeyring()
	}
	return o.Keyring
}

// EndpointURL returns the endpoint the options designate: Endpoint, else
// $HF_ENDPOINT, else DefaultEndpoint, without a trailing slash. Pass it to
// hub.Options.Endpoint so the client and the keyring agree on the Hub.
func (o Options) EndpointURL() string {
	ep := o.Endpoint
	if ep == "" {
		ep = o.getenv("HF_ENDPOINT")
	}
	if ep == "" {
		ep = DefaultEndpoint
	}
	return strings.TrimRight(ep, "/")
}

// Account returns the keyring account for endpoint: its host, lowercased,
// with the port unless it is the scheme's default ("https://huggingface.co"
// → "huggingface.co", "http://127.0.0.1:8765" → "127.0.0.1:8765"). An
// empty endpoint is DefaultEndpoint; one without a scheme is taken as https.
func Account(endpoint string) string {
	ep := strings.TrimSpace(endpoint)
	if ep == "" {
		ep = DefaultEndpoint
	}
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return strings.ToLower(strings.TrimRight(strings.TrimSpace(endpoint), "/"))
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" || (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + port
}

// NoTokenError is Resolve's answer when no source holds a token. It wraps
// ErrNoToken and, when the keyring could not be read, that *KeyringError.
type NoTokenError struct {
	Endpoint  string        // the endpoint a token was wanted for
	TokenFile string        // the token file of `hf auth login`; "" when no home folder is known
	FileUsed  bool          // whether the token file applies to Endpoint (only huggingface.co)
	Keyring   *KeyringError // why the keyring could not be used; nil when it was searched
}

func (e *NoTokenError) Error() string {
	var b strings.Builder
	if e.Keyring != nil {
		// `modelpub login` would fail too: the alternatives come first.
		fmt.Fprintf(&b, "%s for %s: set HF_TOKEN, or pass one with --token-stdin (the OS keyring, where `modelpub login` keeps one, is %s)",
			ErrNoToken.Error(), Account(e.Endpoint), keyringState(e.Keyring.Reason))
	} else {
		fmt.Fprintf(&b, "%s for %s: run `modelpub login` to keep one in the OS keyring, set HF_TOKEN, or pass one with --token-stdin",
			ErrNoToken.Error(), Account(e.Endpoint))
	}
	switch {
	case e.FileUsed && e.TokenFile != "":
		fmt.Fprintf(&b, "; `hf auth login` writes the token file %s, which modelpub also reads", e.TokenFile)
	case !e.FileUsed:
		b.WriteString("; the token file of `hf auth login`")
		if e.TokenFile != "" {
			fmt.Fprintf(&b, " (%s)", e.TokenFile)
		}
		fmt.Fprintf(&b, " is read only for %s", DefaultEndpoint)
	}
	return b.String()
}

// keyringState words a keyring's failure reason after "the OS keyring is".
func keyringState(reason string) string {
	if strings.HasPrefix(reason, "not available") {
		return reason
	}
	return "not usable: " + reason
}

// Unwrap returns ErrNoToken and the keyring's failure, if any, so
// errors.Is(err, ErrNoKeyring) tells a GUI to offer a session-only token.
func (e *NoTokenError) Unwrap() []error {
	if e.Keyring != nil {
		return []error{ErrNoToken, e.Keyring}
	}
	return []error{ErrNoToken}
}

// Resolve returns the token for opts' endpoint from the first source that
// has one (see the package documentation). A source that holds a malformed
// token is an ErrBadToken error naming the source, not skipped; a keyring
// that cannot be used is skipped, and its reason is part of the
// *NoTokenError when nothing else has a token. On a desktop whose keyring
// is locked, the keyring may show its unlock prompt and Resolve waits.
func Resolve(opts Options) (Token, error) {
	if opts.Stdin != nil {
		v, err := readStdin(opts)
		if err != nil {
			return Token{}, err
		}
		return Token{value: v, Source: SourceStdin}, nil
	}

	if raw := opts.getenv("HF_TOKEN"); strings.TrimSpace(raw) != "" {
		v, why := clean(raw)
		if why != "" {
			return Token{}, badToken("HF_TOKEN", why)
		}
		return Token{value: v, Source: SourceEnv}, nil
	}

	endpoint := opts.EndpointURL()
	account := Account(endpoint)
	var kerr *KeyringError
	raw, err := opts.keyring().Get(Service, account)
	switch {
	case err == nil:
		v, why := clean(raw)
		if why != "" {
			return Token{}, badToken("the OS keyring", why+"; run `modelpub login` again")
		}
		return Token{value: v, Source: SourceKeyring}, nil
	case !errors.Is(err, ErrItemNotFound):
		kerr = newKeyringError("read the token from", err)
	}

	nt := &NoTokenError{Endpoint: endpoint, Keyring: kerr, FileUsed: account == defaultAccount}
	nt.TokenFile = TokenFilePath(opts)
	if nt.FileUsed && nt.TokenFile != "" {
		v, err := readTokenFile(nt.TokenFile)
		if err != nil {
			return Token{}, err
		}
		if v != "" {
			return Token{value: v, Source: SourceFile, Path: nt.TokenFile}, nil
		}
	}
	return Token{}, nt
}

// readStdin reads the --token-stdin token, with echo off on a terminal.
func readStdin(opts Options) (string, error) {
	var (
		v   string
		err error
	)
	if f, ok := opts.Stdin.(*os.File); ok {
		prompt := opts.Prompt
		if prompt == nil {
			prompt = os.Stderr
		}
		v, err = ReadTokenTerminal(f, prompt)
	} else {
		v, err = ReadToken(opts.Stdin)
	}
	if err != nil {
		if errors.Is(err, ErrBadToken) {
			return "", badToken(string(SourceStdin), strings.TrimPrefix(err.Error(), ErrBadToken.Error()+": "))
		}
		return "", err
	}
	return v, nil
}

// Store checks token's form and keeps it in the OS keyring under Service
// and Account(endpoint), replacing any previous one. It does not ask the
// Hub whether the token works; `modelpub login` does that first. Without a
// usable keyring it returns a *KeyringError (errors.Is(err, ErrNoKeyring))
// naming what is missing and the alternatives; it never falls back to a file.
func Store(opts Options, token string) error {
	v, why := clean(token)
	if why != "" {
		return badToken("", why)
	}
	if err := opts.keyring().Set(Service, Account(opts.EndpointURL()), v); err != nil {
		ke := newKeyringError("store the token in", err)
		ke.Hint = alternatives(opts)
		return ke
	}
	return nil
}

// Forget removes the endpoint's token from the OS keyring. A missing entry
// is ErrNotLoggedIn; an unusable keyring a *KeyringError. HF_TOKEN and the
// token file are not touched.
func Forget(opts Options) error {
	account := Account(opts.EndpointURL())
	err := opts.keyring().Delete(Service, account)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrItemNotFound):
		return fmt.Errorf("%w to %s: the OS keyring holds no modelpub token for it", ErrNotLoggedIn, account)
	default:
		return newKeyringError("remove the token from", err)
	}
}

// alternatives is what to do when the keyring cannot keep the token.
func alternatives(opts Options) string {
	file := TokenFilePath(opts)
	if file == "" {
		file = "~/.cache/huggingface/token"
	}
	s := "Instead, set HF_TOKEN in the environment, or pass the token on standard input with --token-stdin"
	if Account(opts.EndpointURL()) == defaultAccount {
		s += ", or run `hf auth login`, which writes the token file " + file + " that modelpub reads"
	}
	return s + ". Modelpub never writes the token to a plain file itself."
}

// ReadToken reads a token from the first line of r. Surrounding whitespace
// is trimmed; an empty line, whitespace, control or non-ASCII characters
// inside, or more than MaxTokenLen bytes are ErrBadToken. Errors never
// contain the input.
func ReadToken(r io.Reader) (string, error) {
	line, tooLong, err := readLine(r)
	if err != nil {
		return "", fmt.Errorf("auth: reading the token: %w", err)
	}
	if tooLong {
		return "", badToken("", fmt.Sprintf("longer than %d bytes", MaxTokenLen))
	}
	v, why := clean(line)
	if why != "" {
		return "", badToken("", why)
	}
	return v, nil
}

// maxLine bounds how much of a first line ReadToken reads: a token plus
// generous surrounding whitespace.
const maxLine = 4 * MaxTokenLen

// readLine reads up to the first newline, at most maxLine bytes.
func readLine(r io.Reader) (line string, tooLong bool, err error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxLine+1), 512)
	line, err = br.ReadString('\n')
	if err != nil && err != io.EOF {
		return "", false, err
	}
	if len(line) > maxLine {
		return "", true, nil
	}
	return line, false, nil
}

// clean trims s and checks it looks like a token; why is "" when it does.
func clean(s string) (token, why string) {
	s = strings.TrimPrefix(s, "\ufeff") // a BOM from a Windows editor
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", "the input is empty"
	case len(s) > MaxTokenLen:
		return "", fmt.Sprintf("longer than %d bytes", MaxTokenLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return "", "it has whitespace, control or non-ASCII characters inside; copy it again from the Hub's token page"
		}
	}
	return s, ""
}

// badToken is an ErrBadToken error naming the source, never the token.
func badToken(from, why string) error {
	if from == "" {
		return fmt.Errorf("%w: %s", ErrBadToken, why)
	}
	return fmt.Errorf("%w from %s: %s", ErrBadToken, from, why)
}
