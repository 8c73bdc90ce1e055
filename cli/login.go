package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"modelpub/core/advice"
	"modelpub/core/auth"
	"modelpub/core/folder"
	"modelpub/core/hub"
	"modelpub/core/publish"
)

func init() {
	register(command{
		name:    "login",
		args:    "[--endpoint URL]",
		summary: "check a Hub token and keep it in the OS keyring",
		help:    loginHelp,
		run:     runLogin,
	})
	register(command{
		name:    "logout",
		args:    "[--endpoint URL]",
		summary: "remove the Hub token from the OS keyring",
		help:    logoutHelp,
		run:     runLogout,
	})
	register(command{
		name:    "whoami",
		args:    "[--endpoint URL] [--token-stdin] [--json]",
		summary: "show the Hub account of the token modelpub would use",
		help:    whoamiHelp,
		run:     runWhoami,
	})
}

const loginHelp = `Reads a Hub token from standard input, checks it with the Hub (whoami),
and keeps it in the OS keyring (service "modelpub", account the endpoint's
host), replacing any token kept for that host. On a terminal (or a
Windows console) it asks for the token and does not echo it; a pipe works
too:

  modelpub login
  echo "$TOKEN" | modelpub login

Create a token with write access at https://huggingface.co/settings/tokens
(for another Hub, on that Hub; modelpub localhub takes the tokens given
with its --token). A token the Hub refuses is not kept. Without a usable
keyring (no D-Bus session bus, no Secret Service, a locked keyring)
nothing is kept, and the message says why; use HF_TOKEN or --token-stdin
instead, or "hf auth login", whose token file modelpub reads. Modelpub
never writes the token to a file, and never starts a D-Bus session bus.

  --endpoint URL   the Hub (default: $HF_ENDPOINT, else https://huggingface.co)

Exit status: 0 logged in, 1 the token was refused or could not be kept,
2 bad arguments.
`

const logoutHelp = `Removes the endpoint's token from the OS keyring. HF_TOKEN and the token
file of "hf auth login" are left alone; logout says when one of them still
gives modelpub a token.

  --endpoint URL   the Hub (default: $HF_ENDPOINT, else https://huggingface.co)

Exit status: 0 logged out, 1 not logged in or no usable keyring, 2 bad
arguments.
`

const whoamiHelp = `Shows whom the Hub takes the token for: the user, the organizations with
the user's role in each, the token's name and role, and where modelpub
found the token (masked). Modelpub takes the first token of:

  1. standard input, with --token-stdin
  2. the HF_TOKEN environment variable
  3. the OS keyring (modelpub login)
  4. the token file of "hf auth login" (HF_TOKEN_PATH, else $HF_HOME/token,
     else ~/.cache/huggingface/token), for https://huggingface.co only

  --endpoint URL   the Hub (default: $HF_ENDPOINT, else https://huggingface.co)
  --token-stdin    read the token from standard input (no echo on a terminal)
  --json           print a JSON object instead; it never holds the token

Exit status: 0 success, 1 no token or the Hub refused it, 2 bad arguments.
`

// stdin is where login and --token-stdin read a token; tests replace it.
var stdin io.Reader = os.Stdin

// userKeyring is the keyring login, logout and whoami use: nil is auth's
// default (SystemKeyring); tests put go-keyring's mock here.
var userKeyring auth.Keyring

// refusal says what the Hub answered to a refused token, without the hint
// (advice.For says what to do) and the request id of a plain 401.
func refusal(err error) string {
	var he *hub.Error
	if !errors.As(err, &he) {
		return errText(err)
	}
	s := "HTTP " + strconv.Itoa(he.StatusCode)
	if he.Message != "" {
		s += ": " + strconv.Quote(he.Message)
	}
	return safeText(s)
}

// readTokenStdin reads a token from stdin: with a prompt on stderr and echo
// off when stdin is a terminal.
func readTokenStdin(stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok {
		return auth.ReadTokenTerminal(f, stderr)
	}
	return auth.ReadToken(stdin)
}

// hubEndpoint resolves --endpoint as auth does and checks it is a Hub URL
// before anything is read or sent; on failure it has printed why.
func hubEndpoint(cmd, flag string, stderr io.Writer) (string, bool) {
	ep := auth.Options{Endpoint: flag}.EndpointURL()
	if _, err := hub.NewClient(hub.Options{Endpoint: ep}); err != nil {
		fmt.Fprintf(stderr, "modelpub %s: --endpoint: %s\n", cmd, errText(err))
		return "", false
	}
	return ep, true
}

// otherTokenNotes names what still gives modelpub a token for ep besides
// the keyring.
func otherTokenNotes(ep string) []string {
	var notes []string
	if strings.TrimSpace(os.Getenv("HF_TOKEN")) != "" {
		notes = append(notes, "HF_TOKEN is set in this environment; modelpub uses it before the keyring")
	}
	if auth.Account(ep) == auth.Account(auth.DefaultEndpoint) {
		if p := auth.TokenFilePath(auth.Options{}); p != "" {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
				notes = append(notes, "the token file "+p+" of `hf auth login` is still there and modelpub reads it; `hf auth logout` removes it")
			}
		}
	}
	return notes
}

func runLogin(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("login", stderr)
	endpoint := fs.String("endpoint", "", "")
	if _, ok := parseArgs(fs, args, 0); !ok {
		return ExitUsage
	}
	ep, ok := hubEndpoint("login", *endpoint, stderr)
	if !ok {
		return ExitUsage
	}
	host := auth.Account(ep)

	token, err := readTokenStdin(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "modelpub login: %s\n", errText(err))
		return ExitProblems
	}
	client, err := hub.NewClient(hub.Options{Endpoint: ep, Token: token, Version: Version})
	if err != nil {
		fmt.Fprintf(stderr, "modelpub login: %s\n", errText(err))
		return ExitProblems
	}
	ctx, stop := interruptible()
	defer stop()
	user, err := client.WhoAmI(ctx)
	switch {
	case errors.Is(err, hub.ErrUnauthorized):
		fmt.Fprintf(stderr, "modelpub login: %s refused this token (%s). Nothing was stored. %s\n", host, refusal(err), advice.For(err, ep))
		return ExitProblems
	case err != nil:
		fmt.Fprintf(stderr, "modelpub login: cannot check the token with %s: %s\nNothing was stored.\n", hub.RedactURL(ep), errText(err))
		return ExitProblems
	}

	if err := auth.Store(auth.Options{Endpoint: ep, Keyring: userKeyring}, token); err != nil {
		fmt.Fprintf(stderr, "modelpub login: the Hub accepted the token for %s, but it was not kept: %s\n", folder.Printable(user.Name), errText(err))
		return ExitProblems
	}
	role := user.Auth.AccessToken.Role
	if role == "" {
		role = "not given"
	}
	fmt.Fprintf(stdout, "Logged in to %s as %s (token role: %s). The token is kept in the OS keyring.\n", host, folder.Printable(user.Name), folder.Printable(role))
	if user.Auth.AccessToken.Role == "read" {
		fmt.Fprintf(stderr, "modelpub login: note: this token can only read. %s\n", advice.For(publish.ErrReadOnlyToken, ep))
	}
	if strings.TrimSpace(os.Getenv("HF_TOKEN")) != "" {
		fmt.Fprintln(stderr, "modelpub login: note: HF_TOKEN is set in this environment; modelpub uses it before the keyring")
	}
	return ExitOK
}

func runLogout(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("logout", stderr)
	endpoint := fs.String("endpoint", "", "")
	if _, ok := parseArgs(fs, args, 0); !ok {
		return ExitUsage
	}
	ep, ok := hubEndpoint("logout", *endpoint, stderr)
	if !ok {
		return ExitUsage
	}
	code := ExitOK
	if err := auth.Forget(auth.Options{Endpoint: ep, Keyring: userKeyring}); err != nil {
		fmt.Fprintf(stderr, "modelpub logout: %s\n", errText(err))
		code = ExitProblems
	} else {
		fmt.Fprintf(stdout, "Logged out of %s: the token was removed from the OS keyring.\n", auth.Account(ep))
	}
	for _, n := range otherTokenNotes(ep) {
		fmt.Fprintf(stderr, "modelpub logout: note: %s\n", n)
	}
	return code
}

// whoamiJSON is whoami's --json output. It holds the masked token only.
type whoamiJSON struct {
	Endpoint string    `json:"endpoint"`
	User     string    `json:"user"`
	Fullname string    `json:"fullname,omitempty"`
	Orgs     []orgJSON `json:"orgs"`
	Token    tokenJSON `json:"token"`
}

type orgJSON struct {
	Name string `json:"name"`
	Role string `json:"role,omitempty"` // the user's role in the org; "" when the Hub did not say
}

type tokenJSON struct {
	Name   string      `json:"name,omitempty"` // the token's name on the Hub
	Role   string      `json:"role,omitempty"` // "read", "write", …
	Source auth.Source `json:"source"`         // where modelpub found it
	Path   string      `json:"path,omitempty"` // the token file, for source "token file"
	Masked string      `json:"masked"`         // "hf_…wxyz"
}

func runWhoami(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("whoami", stderr)
	endpoint := fs.String("endpoint", "", "")
	tokenStdin := fs.Bool("token-stdin", false, "")
	asJSON := fs.Bool("json", false, "")
	if _, ok := parseArgs(fs, args, 0); !ok {
		return ExitUsage
	}
	ep, ok := hubEndpoint("whoami", *endpoint, stderr)
	if !ok {
		return ExitUsage
	}
	opts := auth.Options{Endpoint: ep, Prompt: stderr, Keyring: userKeyring}
	if *tokenStdin {
		opts.Stdin = stdin
	}
	tok, err := auth.Resolve(opts)
	if err != nil {
		fmt.Fprintf(stderr, "modelpub whoami: %s\n", errText(err))
		return ExitProblems
	}
	client, err := hub.NewClient(hub.Options{Endpoint: ep, Token: tok.Value(), Version: Version})
	if err != nil {
		fmt.Fprintf(stderr, "modelpub whoami: %s\n", errText(err))
		return ExitProblems
	}
	ctx, stop := interruptible()
	defer stop()
	user, err := client.WhoAmI(ctx)
	switch {
	case errors.Is(err, hub.ErrUnauthorized):
		fmt.Fprintf(stderr, "modelpub whoami: %s refused the token %v: %s. %s\n", auth.Account(ep), tok, refusal(err), advice.For(err, ep))
		return ExitProblems
	case err != nil:
		fmt.Fprintf(stderr, "modelpub whoami: %s\n", errText(err))
		return ExitProblems
	}

	out := whoamiJSON{Endpoint: hub.RedactURL(ep), User: user.Name, Fullname: user.Fullname, Orgs: []orgJSON{},
		Token: tokenJSON{Name: user.Auth.AccessToken.DisplayName, Role: user.Auth.AccessToken.Role,
			Source: tok.Source, Path: tok.Path, Masked: auth.Mask(tok.Value())}}
	for _, o := range user.Orgs {
		out.Orgs = append(out.Orgs, orgJSON{Name: o.Name, Role: o.RoleInOrg})
	}
	if *asJSON {
		if err := printJSON(stdout, out); err != nil {
			fmt.Fprintf(stderr, "modelpub whoami: %s\n", errText(err))
			return ExitProblems
		}
		return ExitOK
	}
	printWhoami(stdout, out)
	return ExitOK
}

// printWhoami prints what the Hub said about the token; names the Hub sends
// are printed through folder.Printable, as a server may send anything.
func printWhoami(w io.Writer, o whoamiJSON) {
	p := folder.Printable
	orgs := "none"
	if len(o.Orgs) > 0 {
		parts := make([]string, len(o.Orgs))
		for i, org := range o.Orgs {
			role := org.Role
			if role == "" {
				role = "role not given"
			}
			parts[i] = fmt.Sprintf("%s (%s)", p(org.Name), p(role))
		}
		orgs = strings.Join(parts, ", ")
	}
	token := "role " + p(o.Token.Role)
	if o.Token.Role == "" {
		token = "role not given"
	}
	if o.Token.Name != "" {
		token = fmt.Sprintf("%q, %s", o.Token.Name, token)
	}
	from := string(o.Token.Source)
	if o.Token.Path != "" {
		from += " " + o.Token.Path
	}
	fmt.Fprintf(w, "user:       %s\n", p(o.User))
	if o.Fullname != "" {
		fmt.Fprintf(w, "full name:  %s\n", p(o.Fullname))
	}
	fmt.Fprintf(w, "orgs:       %s\n", orgs)
	fmt.Fprintf(w, "token:      %s\n", token)
	fmt.Fprintf(w, "token from: %s (%s)\n", from, o.Token.Masked)
	fmt.Fprintf(w, "endpoint:   %s\n", o.Endpoint)
}
